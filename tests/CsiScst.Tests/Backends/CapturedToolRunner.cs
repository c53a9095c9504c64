using System.Text.Json;
using CsiScst.Core.Exec;

namespace CsiScst.Tests.Backends;

/// <summary>
/// Answers tool runs with output recorded from the real tools by a committed capture script
/// (tests/fixtures/capture-*.sh; index.json names each capture's exact command line and exit code).
/// A run is answered only by a capture of exactly that command line, so the tests also prove the
/// command lines the code builds. Several captures of one command (lvs at different moments) are told
/// apart by <see cref="Use"/>: the test says which state of the world is current, and when one call of the
/// code under test sees the world change (lvs before and after lvcreate), lists them in that order.
/// </summary>
internal sealed class CapturedToolRunner : IToolRunner
{
    private readonly Dictionary<string, Capture> _byName = new(StringComparer.Ordinal);
    // Per command line: the captures still to answer, in order; the last one keeps answering.
    private readonly Dictionary<string, Queue<string>> _current = new(StringComparer.Ordinal);

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

    /// <summary>
    /// Makes these captures the answers to their command lines from now on. Captures of one command line
    /// given together answer its successive runs in the order given (the last one then keeps answering).
    /// </summary>
    public CapturedToolRunner Use(params string[] names)
    {
        foreach (var group in names.GroupBy(name => this[name].Command))
        {
            _current[group.Key] = new Queue<string>(group);
        }
        return this;
    }

    public Task<ToolResult> RunAsync(ToolCommand command, CancellationToken cancellationToken)
    {
        var line = string.Join(' ', command.Arguments.Prepend(command.FileName));
        Calls.Add(line);
        if (!_current.TryGetValue(line, out var queue))
        {
            throw new InvalidOperationException($"no capture in use for: {line}");
        }
        var capture = _byName[queue.Count > 1 ? queue.Dequeue() : queue.Peek()];
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
