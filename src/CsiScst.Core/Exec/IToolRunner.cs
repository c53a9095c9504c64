namespace CsiScst.Core.Exec;

/// <summary>The one way csi-scst runs external tools (iscsiadm, lvcreate, rbd, tgtadm, mkfs, mount …).</summary>
public interface IToolRunner
{
    /// <summary>
    /// Runs the command and returns its result when the exit code is one of
    /// <see cref="ToolCommand.SuccessExitCodes"/>; otherwise throws <see cref="ToolException"/>.
    /// Also throws it on timeout and when the program cannot be started.
    /// </summary>
    Task<ToolResult> RunAsync(ToolCommand command, CancellationToken cancellationToken);
}
