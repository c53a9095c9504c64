using Grpc.Core;

namespace CsiScst.Core.Exec;

public enum ToolFailure
{
    /// <summary>The tool ran and exited with a code not listed as success.</summary>
    ExitCode,
    TimedOut,
    /// <summary>The program does not exist or cannot be executed.</summary>
    NotFound,
}

/// <summary>
/// An external tool failed. Carries the exit code and the tail of stderr so callers can tell
/// failures apart (e.g. tgtadm's messages, iscsiadm's exit codes) and the operator can read why.
/// </summary>
public sealed class ToolException : Exception
{
    public ToolException(ToolCommand command, ToolFailure failure, int? exitCode, string standardOutput, string standardError, Exception? inner = null)
        : base(BuildMessage(command, failure, exitCode, standardError), inner)
    {
        Tool = command.ToolName;
        CommandLine = command.Display();
        Failure = failure;
        ExitCode = exitCode;
        StandardOutput = command.Redact(standardOutput);
        StandardError = command.Redact(standardError);
    }

    public string Tool { get; }
    public string CommandLine { get; }
    public ToolFailure Failure { get; }
    public int? ExitCode { get; }
    public string StandardOutput { get; }
    public string StandardError { get; }

    /// <summary>The status a caller gets when nothing more specific was decided.</summary>
    public StatusCode SuggestedStatus => Failure switch
    {
        ToolFailure.TimedOut => StatusCode.DeadlineExceeded,
        ToolFailure.NotFound => StatusCode.FailedPrecondition,
        _ => StatusCode.Internal,
    };

    private static string BuildMessage(ToolCommand command, ToolFailure failure, int? exitCode, string stderr)
    {
        var what = failure switch
        {
            ToolFailure.TimedOut => $"timed out after {command.Timeout.TotalSeconds:0.#} s",
            ToolFailure.NotFound => "could not be started (is it installed?)",
            _ => $"exited with code {exitCode}",
        };
        var tail = Tail(command.Redact(stderr));
        return tail.Length == 0
            ? $"{command.Display()} {what}"
            : $"{command.Display()} {what}: {tail}";
    }

    private static string Tail(string text)
    {
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var tail = string.Join(" | ", lines.TakeLast(4));
        return tail.Length > 600 ? tail[^600..] : tail;
    }
}
