namespace CsiScst.Engine.Faults;

/// <summary>
/// The named points between the steps of each engine operation where <c>CSI_SCST_FAULT_POINT</c> makes the
/// real process kill itself (Core's FaultPoints). Crash tests arm each one, SIGKILL happens there, the engine
/// is restarted without it, the call is retried, and the result must be the same as without the crash.
/// </summary>
public static class EngineFaultPoints
{
    public const string EnsureVolumeAfterRecord = "ensure-volume:after-record";
    public const string EnsureVolumeAfterBackendCreate = "ensure-volume:after-backend-create";
    public const string EnsureVolumeAfterAttach = "ensure-volume:after-attach";
    public const string EnsureVolumeAfterExport = "ensure-volume:after-export";

    public const string DeleteVolumeAfterMark = "delete-volume:after-mark";
    public const string DeleteVolumeAfterExportRemoved = "delete-volume:after-export-removed";
    public const string DeleteVolumeAfterDetach = "delete-volume:after-detach";
    public const string DeleteVolumeAfterBackendDelete = "delete-volume:after-backend-delete";

    public const string EnsureAccessAfterRecord = "ensure-access:after-record";
    public const string RevokeAccessAfterRecord = "revoke-access:after-record";

    public const string ExpandVolumeAfterBackendExpand = "expand-volume:after-backend-expand";
    public const string ExpandVolumeAfterResync = "expand-volume:after-resync";

    public const string EnsureSnapshotAfterRecord = "ensure-snapshot:after-record";
    public const string EnsureSnapshotAfterBackendCreate = "ensure-snapshot:after-backend-create";
    public const string DeleteSnapshotAfterMark = "delete-snapshot:after-mark";
    public const string DeleteSnapshotAfterBackendDelete = "delete-snapshot:after-backend-delete";

    public const string ReconcileAfterAttach = "reconcile:after-attach";

    public static IReadOnlyList<string> All { get; } =
    [
        EnsureVolumeAfterRecord, EnsureVolumeAfterBackendCreate, EnsureVolumeAfterAttach, EnsureVolumeAfterExport,
        DeleteVolumeAfterMark, DeleteVolumeAfterExportRemoved, DeleteVolumeAfterDetach, DeleteVolumeAfterBackendDelete,
        EnsureAccessAfterRecord, RevokeAccessAfterRecord,
        ExpandVolumeAfterBackendExpand, ExpandVolumeAfterResync,
        EnsureSnapshotAfterRecord, EnsureSnapshotAfterBackendCreate, DeleteSnapshotAfterMark, DeleteSnapshotAfterBackendDelete,
        ReconcileAfterAttach,
    ];
}
