using CsiScst.Core.Exec;
using CsiScst.Core.Metrics;
using Microsoft.Extensions.Logging.Abstractions;

namespace CsiScst.Tests.Foundation;

/// <summary>The one tool runner, with real child processes.</summary>
public sealed class ToolRunnerTests
{
    private readonly DriverMetrics _metrics = new();
    private readonly ExternalTime _external = new();
    private ToolRunner Runner => new(_metrics, _external, NullLogger<ToolRunner>.Instance);

    [Fact]
    public async Task Arguments_are_passed_as_a_list_without_a_shell()
    {
        // A shell would expand $HOME and split on spaces; an argument list must not.
        var result = await Runner.RunAsync(new ToolCommand("printf", "%s|", "a b", "$HOME", "*"), CancellationToken.None);
        Assert.Equal("a b|$HOME|*|", result.StandardOutput);
        Assert.Equal(0, result.ExitCode);
    }

    [Fact]
    public async Task A_failing_exit_code_throws_with_code_and_stderr()
    {
        var e = await Assert.ThrowsAsync<ToolException>(() =>
            Runner.RunAsync(new ToolCommand("ls", "/definitely/not/here"), CancellationToken.None));
        Assert.Equal(ToolFailure.ExitCode, e.Failure);
        Assert.Equal(2, e.ExitCode);
        Assert.Contains("No such file", e.StandardError);
        Assert.Contains("ls /definitely/not/here exited with code 2", e.Message);
    }

    [Fact]
    public async Task Listed_exit_codes_count_as_success()
    {
        var result = await Runner.RunAsync(new ToolCommand("sh", "-c", "exit 15") { SuccessExitCodes = [0, 15] }, CancellationToken.None);
        Assert.Equal(15, result.ExitCode);
    }

    [Fact]
    public async Task A_timeout_kills_the_tool_and_says_so()
    {
        var e = await Assert.ThrowsAsync<ToolException>(() =>
            Runner.RunAsync(new ToolCommand("sleep", "30") { Timeout = TimeSpan.FromMilliseconds(200) }, CancellationToken.None));
        Assert.Equal(ToolFailure.TimedOut, e.Failure);
        Assert.Contains("timed out", e.Message);
    }

    [Fact]
    public async Task A_missing_program_is_reported_as_not_found()
    {
        var e = await Assert.ThrowsAsync<ToolException>(() =>
            Runner.RunAsync(new ToolCommand("csi-scst-no-such-tool"), CancellationToken.None));
        Assert.Equal(ToolFailure.NotFound, e.Failure);
        Assert.Contains("is it installed", e.Message);
    }

    [Fact]
    public async Task Secrets_are_redacted_from_errors()
    {
        var e = await Assert.ThrowsAsync<ToolException>(() => Runner.RunAsync(
            new ToolCommand("sh", "-c", "echo \"bad password $1\" >&2; exit 3", "sh", "hunter2secret") { Secrets = ["hunter2secret"] },
            CancellationToken.None));
        Assert.DoesNotContain("hunter2secret", e.Message);
        Assert.DoesNotContain("hunter2secret", e.StandardError);
        Assert.DoesNotContain("hunter2secret", e.CommandLine);
        Assert.Contains("***", e.Message);
    }

    [Fact]
    public async Task Standard_input_is_written_and_closed()
    {
        var result = await Runner.RunAsync(new ToolCommand("cat") { StandardInput = "hello\n" }, CancellationToken.None);
        Assert.Equal("hello\n", result.StandardOutput);
    }

    [Fact]
    public async Task Runs_are_counted_and_timed_in_metrics_and_external_time()
    {
        var accumulator = _external.Begin();
        await Runner.RunAsync(new ToolCommand("true"), CancellationToken.None);
        await Assert.ThrowsAsync<ToolException>(() => Runner.RunAsync(new ToolCommand("false"), CancellationToken.None));
        Assert.Equal(1, _metrics.ToolRuns.WithLabels("true", "success").Value);
        Assert.Equal(1, _metrics.ToolRuns.WithLabels("false", "failure").Value);
        Assert.Equal(1, _metrics.ToolDuration.WithLabels("true").Count);
        Assert.True(accumulator.Elapsed > TimeSpan.Zero);
    }
}
