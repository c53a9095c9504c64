using System.Diagnostics;
using Microsoft.Extensions.Logging;

namespace CsiScst.Csi.Controller;

/// <summary>
/// Crash-test hook: when <c>CSI_SCST_FAULT_POINT</c> names a point the controller reaches, the process kills
/// itself with SIGKILL right there (no cleanup, no flush), exactly like a node losing power. Tests restart
/// the real binary and retry to prove the flow converges. Inert when the variable is unset.
/// </summary>
public sealed class ControllerFaults
{
    public const string Variable = "CSI_SCST_FAULT_POINT";

    // The points, in the order a call reaches them.
    public const string CreateAfterChapSecret = "controller-create-volume:after-chap-secret";
    public const string CreateAfterEnsureVolume = "controller-create-volume:after-ensure-volume";
    public const string DeleteAfterEngineDelete = "controller-delete-volume:after-engine-delete";
    public const string PublishAfterEnsureAccess = "controller-publish-volume:after-ensure-access";

    private readonly string? _armed;
    private readonly ILogger<ControllerFaults> _logger;

    public ControllerFaults(ILogger<ControllerFaults> logger)
    {
        _armed = Environment.GetEnvironmentVariable(Variable) is { Length: > 0 } value ? value : null;
        _logger = logger;
    }

    public void Reach(string point)
    {
        if (_armed is null || _armed != point)
        {
            return;
        }
        _logger.LogCritical("Fault point {FaultPoint} reached: killing this process with SIGKILL", point);
        // Process.Kill on ourselves sends SIGKILL on Linux: nothing after this line runs.
        using var self = Process.GetCurrentProcess();
        self.Kill();
        Thread.Sleep(Timeout.Infinite);
    }
}
