using CsiScst.Core.Faults;

namespace CsiScst.Csi.Controller;

/// <summary>
/// The controller's crash-test points (<c>CSI_SCST_FAULT_POINT</c>, see Core <see cref="FaultPoints"/>): the real
/// process SIGKILLs itself there, and tests restart it and retry to prove the flow converges.
/// </summary>
public sealed class ControllerFaults
{
    // The points, in the order a call reaches them.
    public const string CreateAfterChapSecret = "controller-create-volume:after-chap-secret";
    public const string CreateAfterEnsureVolume = "controller-create-volume:after-ensure-volume";
    public const string DeleteAfterEngineDelete = "controller-delete-volume:after-engine-delete";
    public const string PublishAfterEnsureAccess = "controller-publish-volume:after-ensure-access";

    private readonly FaultPoints _points = new();

    public void Reach(string point) => _points.Hit(point);
}
