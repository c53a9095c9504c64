using System.ComponentModel;
using System.Diagnostics;
using System.Text;
using CsiScst.Core.Metrics;
using Microsoft.Extensions.Logging;

namespace CsiScst.Core.Exec;

/// <summary>
/// Runs tools as child processes with an argument list (no shell), a timeout that kills the whole
/// process tree, captured and size-capped stdout/stderr, metrics and structured logs.
/// </summary>
public sealed class ToolRunner : IToolRunner
{
    // Enough for any report we parse (lvs/rbd JSON of thousands of objects); bounds a runaway tool.
    private const int MaxCapturedChars = 32 * 1024 * 1024;

    private readonly DriverMetrics _metrics;
    private readonly ExternalTime _externalTime;
    private readonly ILogger<ToolRunner> _logger;

    public ToolRunner(DriverMetrics metrics, ExternalTime externalTime, ILogger<ToolRunner> logger)
    {
        _metrics = metrics;
        _externalTime = externalTime;
        _logger = logger;
    }

    public async Task<ToolResult> RunAsync(ToolCommand command, CancellationToken cancellationToken)
    {
        var startInfo = new ProcessStartInfo(command.FileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        foreach (var argument in command.Arguments)
        {
            startInfo.ArgumentList.Add(argument);
        }
        if (command.WorkingDirectory is not null)
        {
            startInfo.WorkingDirectory = command.WorkingDirectory;
        }
        // Tools must answer in a stable language: we parse their output and messages.
        startInfo.Environment["LC_ALL"] = "C";
        if (command.Environment is not null)
        {
            foreach (var (name, value) in command.Environment)
            {
                startInfo.Environment[name] = value;
            }
        }

        var started = Stopwatch.GetTimestamp();
        using var process = new Process { StartInfo = startInfo };
        try
        {
            if (!process.Start())
            {
                throw new Win32Exception("process did not start");
            }
        }
        catch (Win32Exception e)
        {
            Record(command, "not_found", Stopwatch.GetElapsedTime(started));
            throw new ToolException(command, ToolFailure.NotFound, null, "", e.Message, e);
        }

        var stdout = ReadCappedAsync(process.StandardOutput);
        var stderr = ReadCappedAsync(process.StandardError);
        try
        {
            if (command.StandardInput is not null)
            {
                await process.StandardInput.WriteAsync(command.StandardInput.AsMemory(), cancellationToken).ConfigureAwait(false);
            }
            process.StandardInput.Close();
        }
        catch (IOException)
        {
            // The tool exited without reading its input; its exit code tells the story.
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(command.Timeout);
        try
        {
            await process.WaitForExitAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            Kill(process);
            var elapsed = Stopwatch.GetElapsedTime(started);
            _externalTime.Add(elapsed);
            Record(command, "timeout", elapsed);
            cancellationToken.ThrowIfCancellationRequested();
            var (outText, errText) = await CollectAfterKillAsync(stdout, stderr).ConfigureAwait(false);
            _logger.LogWarning("{Tool} timed out after {Seconds:0.###} s: {Command}", command.ToolName, elapsed.TotalSeconds, command.Display());
            throw new ToolException(command, ToolFailure.TimedOut, null, outText, errText);
        }

        var output = await stdout.ConfigureAwait(false);
        var error = await stderr.ConfigureAwait(false);
        var duration = Stopwatch.GetElapsedTime(started);
        _externalTime.Add(duration);
        var result = new ToolResult(process.ExitCode, output, error, duration);

        if (!command.SuccessExitCodes.Contains(result.ExitCode))
        {
            Record(command, "failure", duration);
            _logger.LogDebug("{Tool} exited with {ExitCode} in {Seconds:0.###} s: {Command}: {Stderr}",
                command.ToolName, result.ExitCode, duration.TotalSeconds, command.Display(), command.Redact(error.Trim()));
            throw new ToolException(command, ToolFailure.ExitCode, result.ExitCode, output, error);
        }

        Record(command, "success", duration);
        _logger.LogDebug("{Tool} exited with {ExitCode} in {Seconds:0.###} s: {Command}",
            command.ToolName, result.ExitCode, duration.TotalSeconds, command.Display());
        return result;
    }

    private void Record(ToolCommand command, string outcome, TimeSpan duration)
    {
        _metrics.ToolRuns.WithLabels(command.ToolName, outcome).Inc();
        _metrics.ToolDuration.WithLabels(command.ToolName).Observe(duration.TotalSeconds);
    }

    private static void Kill(Process process)
    {
        try
        {
            process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }
    }

    private static async Task<(string, string)> CollectAfterKillAsync(Task<string> stdout, Task<string> stderr)
    {
        // The pipes close once the tree is dead; do not wait for ever if a grandchild holds them.
        var both = Task.WhenAll(stdout, stderr);
        if (await Task.WhenAny(both, Task.Delay(TimeSpan.FromSeconds(2))).ConfigureAwait(false) == both)
        {
            return (stdout.Result, stderr.Result);
        }
        return ("", "");
    }

    private static async Task<string> ReadCappedAsync(StreamReader reader)
    {
        var builder = new StringBuilder();
        var buffer = new char[8192];
        int read;
        while ((read = await reader.ReadAsync(buffer).ConfigureAwait(false)) > 0)
        {
            if (builder.Length < MaxCapturedChars)
            {
                builder.Append(buffer, 0, Math.Min(read, MaxCapturedChars - builder.Length));
            }
        }
        return builder.ToString();
    }
}
