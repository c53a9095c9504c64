using System.Globalization;
using CsiScst.Core.Exec;

namespace CsiScst.Tests.NodePlugin;

/// <summary>One real tool run recorded by tests/fixtures/capture-node.sh (or the VM's capture script).</summary>
internal sealed record Capture(string Name, int ExitCode, string Command, string Stdout, string Stderr);

/// <summary>Reads captures from tests/fixtures: never typed by hand, always recorded by a committed script.</summary>
internal static class Captures
{
    public static string Fixtures { get; } = FindFixtures();

    public static Capture Host(string name) => Load(Path.Join(Fixtures, "captures-node", "host"), name);

    public static Capture Vm(string name) => Load(Path.Join(Fixtures, "captures-node", "vm"), name);

    public static bool HasVm => File.Exists(Path.Join(Fixtures, "captures-node", "vm", "index.tsv"));

    public static byte[] VmBytes(string file) => File.ReadAllBytes(Path.Join(Fixtures, "captures-node", "vm", file));

    private static Capture Load(string directory, string name)
    {
        var line = File.ReadLines(Path.Join(directory, "index.tsv"))
            .Select(l => l.Split('\t'))
            .LastOrDefault(f => f[0] == name)
            ?? throw new InvalidOperationException($"no capture named {name} in {directory}; rerun tests/fixtures/capture-node.sh");
        string Read(string suffix)
        {
            var path = Path.Join(directory, name + suffix);
            return File.Exists(path) ? File.ReadAllText(path) : "";
        }
        return new Capture(name, int.Parse(line[1], CultureInfo.InvariantCulture), line[2], Read(".stdout"), Read(".stderr"));
    }

    private static string FindFixtures()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Join(dir.FullName, "tests", "fixtures");
            if (Directory.Exists(Path.Join(candidate, "captures-node")))
            {
                return candidate;
            }
        }
        throw new DirectoryNotFoundException("tests/fixtures/captures-node not found above " + AppContext.BaseDirectory);
    }
}

/// <summary>
/// Answers tool runs with recorded real runs, and checks that the command the code builds is exactly
/// the command that was recorded (so the replay is only used for the very command it came from).
/// </summary>
internal sealed class ReplayToolRunner : IToolRunner
{
    private readonly Queue<Capture> _script;

    public ReplayToolRunner(params Capture[] script)
    {
        _script = new Queue<Capture>(script);
    }

    public List<ToolCommand> Commands { get; } = [];

    public int Remaining => _script.Count;

    public Task<ToolResult> RunAsync(ToolCommand command, CancellationToken cancellationToken)
    {
        Commands.Add(command);
        if (_script.Count == 0)
        {
            throw new InvalidOperationException($"unexpected command: {Line(command)}");
        }
        var capture = _script.Dequeue();
        Assert.Equal(capture.Command, Line(command));
        if (!command.SuccessExitCodes.Contains(capture.ExitCode))
        {
            throw new ToolException(command, ToolFailure.ExitCode, capture.ExitCode, capture.Stdout, capture.Stderr);
        }
        return Task.FromResult(new ToolResult(capture.ExitCode, capture.Stdout, capture.Stderr, TimeSpan.Zero));
    }

    public static string Line(ToolCommand command) => string.Join(' ', command.Arguments.Prepend(command.FileName));
}

/// <summary>Records commands and answers each with a fixed result (for command construction checks).</summary>
internal sealed class RecordingToolRunner : IToolRunner
{
    public RecordingToolRunner(Func<ToolCommand, (int ExitCode, string Stdout)>? answer = null)
    {
        Answer = answer ?? (_ => (0, ""));
    }

    public Func<ToolCommand, (int ExitCode, string Stdout)> Answer { get; set; }

    public List<ToolCommand> Commands { get; } = [];

    public Task<ToolResult> RunAsync(ToolCommand command, CancellationToken cancellationToken)
    {
        Commands.Add(command);
        var (exit, stdout) = Answer(command);
        if (!command.SuccessExitCodes.Contains(exit))
        {
            throw new ToolException(command, ToolFailure.ExitCode, exit, stdout, "");
        }
        return Task.FromResult(new ToolResult(exit, stdout, "", TimeSpan.Zero));
    }
}
