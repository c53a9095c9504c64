namespace CsiScst.Core.Exec;

/// <summary>
/// One run of an external tool: a program and an argument list (never a shell string).
/// </summary>
public sealed record ToolCommand(string FileName, IReadOnlyList<string> Arguments)
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(60);

    public ToolCommand(string fileName, params string[] arguments)
        : this(fileName, (IReadOnlyList<string>)arguments)
    {
    }

    /// <summary>The run is killed (with its process tree) after this long.</summary>
    public TimeSpan Timeout { get; init; } = DefaultTimeout;

    /// <summary>Written to the tool's standard input, which is then closed.</summary>
    public string? StandardInput { get; init; }

    /// <summary>Extra environment variables for the tool.</summary>
    public IReadOnlyDictionary<string, string>? Environment { get; init; }

    /// <summary>Exit codes that count as success (the result is returned, not thrown).</summary>
    public IReadOnlyCollection<int> SuccessExitCodes { get; init; } = [0];

    /// <summary>Values replaced by *** wherever the command or its output is logged or put in an error.</summary>
    public IReadOnlyCollection<string> Secrets { get; init; } = [];

    public string? WorkingDirectory { get; init; }

    /// <summary>
    /// Overrides the metric label when FileName is a wrapper (e.g. <c>nsenter … -- iscsiadm</c> runs
    /// iscsiadm in the host's mount namespace and should be counted as iscsiadm).
    /// </summary>
    public string? Label { get; init; }

    /// <summary>The tool's short name, used as a bounded metric label.</summary>
    public string ToolName => Label ?? Path.GetFileName(FileName);

    public string Redact(string text)
    {
        foreach (var secret in Secrets)
        {
            if (!string.IsNullOrEmpty(secret))
            {
                text = text.Replace(secret, "***", StringComparison.Ordinal);
            }
        }
        return text;
    }

    /// <summary>The command line as text for logs and errors, secrets redacted. Never executed.</summary>
    public string Display() =>
        Redact(string.Join(' ', Arguments.Prepend(FileName).Select(Quote)));

    private static string Quote(string arg) =>
        arg.Length > 0 && arg.All(c => char.IsAsciiLetterOrDigit(c) || "-_./:=,@%+".Contains(c))
            ? arg
            : "'" + arg.Replace("'", "'\\''", StringComparison.Ordinal) + "'";
}

public sealed record ToolResult(int ExitCode, string StandardOutput, string StandardError, TimeSpan Duration);
