using CsiScst.Core.Errors;
using CsiScst.Core.Exec;
using CsiScst.Core.Files;
using CsiScst.Core.Ids;

namespace CsiScst.Initiator.Iscsi;

/// <summary>
/// The node's iSCSI initiator name, from open-iscsi's <c>/etc/iscsi/initiatorname.iscsi</c> (the file
/// iscsid itself uses, so the name we report is the name the target sees), generated with
/// <c>iscsi-iname</c> when the file is absent.
/// </summary>
public sealed class InitiatorNameFileReader
{
    public const string DefaultPath = "/etc/iscsi/initiatorname.iscsi";

    private readonly IToolRunner _tools;
    private readonly string _path;

    public InitiatorNameFileReader(IToolRunner tools, string path = DefaultPath)
    {
        _tools = tools;
        _path = path;
    }

    /// <summary>Parses the file's <c>InitiatorName=</c> line; null when there is none.</summary>
    public static string? Parse(string content)
    {
        foreach (var raw in content.Split('\n'))
        {
            var line = raw.Trim();
            if (line.StartsWith('#'))
            {
                continue;
            }
            const string Prefix = "InitiatorName=";
            if (line.StartsWith(Prefix, StringComparison.Ordinal))
            {
                var name = line[Prefix.Length..].Trim();
                return name.Length > 0 ? name : null;
            }
        }
        return null;
    }

    /// <summary>Reads the name, creating the file with a generated name when it does not exist yet.</summary>
    public async Task<string> ReadOrCreateAsync(bool createIfMissing, CancellationToken cancellationToken)
    {
        if (File.Exists(_path))
        {
            var name = Parse(await File.ReadAllTextAsync(_path, cancellationToken).ConfigureAwait(false))
                ?? throw StatusException.FailedPrecondition($"{_path} has no InitiatorName= line");
            return Validate(name);
        }
        if (!createIfMissing)
        {
            throw StatusException.FailedPrecondition($"{_path} does not exist; install open-iscsi or pass --initiator-name");
        }
        var generated = (await _tools.RunAsync(new ToolCommand("iscsi-iname"), cancellationToken).ConfigureAwait(false)).StandardOutput.Trim();
        Validate(generated);
        await AtomicFile.WriteAsync(_path, System.Text.Encoding.UTF8.GetBytes($"InitiatorName={generated}\n"),
            UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead, cancellationToken).ConfigureAwait(false);
        return generated;
    }

    private string Validate(string name) =>
        Names.IsValidInitiatorName(name)
            ? name
            : throw StatusException.FailedPrecondition($"initiator name '{name}' in {_path} is not a valid iSCSI name");
}
