using System.Text.Json;
using CsiScst.Core.Exec;

namespace CsiScst.Tests.Backends;

/// <summary>
/// Answers tool runs with output recorded from the real tools by a committed capture script
/// (tests/fixtures/capture-*.sh; index.json names each capture's exact command line and exit code).
/// A run is answered only by a capture of exactly that command line, so the tests also prove the
/// command lines the code builds. Several captures of one command (lvs at different moments) are told
/// apart by <see cref="Use"/>: the test says which state of the world is current.
/// </summary>
internal sealed class CapturedToolRunner : IToolRunner
{
    private readonly Dictionary<string, Capture> _byName = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _current = new(StringComparer.Ordinal);

    public CapturedToolRunner(string directoryName)
    {
        Directory = FindDirectory(directoryName);
        using var index = JsonDocument.Parse(File.ReadAllText(Path.Combine(Directory, "index.json")));
        foreach (var entry in index.RootElement.EnumerateArray())
        {
            var name = entry.GetProperty("name").GetString()!;
            var stderr = entry.GetProperty("stderr");
            _byName[name] = new Capture(
                name,
                entry.GetProperty("command").GetString()!,
                entry.GetProperty("exit_code").GetInt32(),
                File.ReadAllText(Path.Combine(Directory, name + ".stdout")),
                stderr.ValueKind == JsonValueKind.Null ? "" : File.ReadAllText(Path.Combine(Directory, name + ".stderr")));
        }
    }

    public string Directory { get; }

    /// <summary>Every command run, in order (display form).</summary>
    public List<string> Calls { get; } = [];

    public sealed record Capture(string Name, string Command, int ExitCode, string StandardOutput, string StandardError);

    public Capture this[string name] => _byName.TryGetValue(name, out var capture)
        ? capture
        : throw new InvalidOperationException($"no capture named {name} in {Directory}");

    /// <summary>Makes these captures the answers to their command lines from now on.</summary>
    public CapturedToolRunner Use(params string[] names)
    {
        foreach (var name in names)
        {
            var capture = this[name];
            _current[capture.Command] = name;
        }
        return this;
    }

    public Task<ToolResult> RunAsync(ToolCommand command, CancellationToken cancellationToken)
    {
        var line = string.Join(' ', command.Arguments.Prepend(command.FileName));
        Calls.Add(line);
        if (!_current.TryGetValue(line, out var name))
        {
            throw new InvalidOperationException($"no capture in use for: {line}");
        }
        var capture = _byName[name];
        if (!command.SuccessExitCodes.Contains(capture.ExitCode))
        {
            throw new ToolException(command, ToolFailure.ExitCode, capture.ExitCode, capture.StandardOutput, capture.StandardError);
        }
        return Task.FromResult(new ToolResult(capture.ExitCode, capture.StandardOutput, capture.StandardError, TimeSpan.Zero));
    }

    private static string FindDirectory(string name)
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            var candidate = Path.Combine(directory.FullName, "tests", "fixtures", name);
            if (System.IO.Directory.Exists(candidate))
            {
                return candidate;
            }
        }
        throw new DirectoryNotFoundException($"tests/fixtures/{name} not found above {AppContext.BaseDirectory}");
    }
}
