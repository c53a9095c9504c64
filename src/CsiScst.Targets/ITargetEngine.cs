namespace CsiScst.Targets;

/// <summary>
/// One iSCSI target implementation (SCST through sysfs, LIO through configfs, tgt through tgtadm).
/// Declarative: callers say what one export must look like, the engine converges the target to it.
/// Every method is idempotent and safe to interrupt at any step and retry; every implementation only
/// ever lists, changes or deletes objects whose names carry this instance's prefix (ObjectNames).
/// </summary>
public interface ITargetEngine
{
    /// <summary>"scst", "lio" or "tgt".</summary>
    string Kind { get; }

    /// <summary>Whether the engine's local dependencies answer (sysfs/configfs present, iscsi-scstd or tgtd up).</summary>
    Task<EngineHealth> ProbeAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Converges one export to <paramref name="spec"/>: device on the backing path with the volume's SCSI
    /// identity, one target with LUN 0 (tgt: LUN 1), access for exactly the listed initiators, CHAP as given,
    /// enabled last. Initiators present on the target but absent from the spec lose access and their live
    /// sessions are closed at once (fencing).
    /// </summary>
    Task EnsureExportAsync(ExportSpec spec, CancellationToken cancellationToken);

    /// <summary>Removes every object of the export (sessions closed first). Already gone: OK.</summary>
    Task RemoveExportAsync(string key, CancellationToken cancellationToken);

    /// <summary>Makes the LUN report the backing device's new size after the backend grew it.</summary>
    Task ResyncSizeAsync(ExportSpec spec, CancellationToken cancellationToken);

    /// <summary>Our exports as they are on the target now.</summary>
    Task<IReadOnlyList<ActualExport>> ListExportsAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Makes the whole target match <paramref name="desired"/> in one pass, reading the target's state in
    /// bulk: missing or divergent exports are repaired, our exports that nothing desires are removed,
    /// anything without our prefix is left alone. Must not be quadratic in the number of exports.
    /// </summary>
    Task<EngineReconcileResult> ReconcileAsync(IReadOnlyCollection<ExportSpec> desired, CancellationToken cancellationToken);

    /// <summary>Live iSCSI sessions on our targets.</summary>
    Task<IReadOnlyList<SessionInfo>> ListSessionsAsync(CancellationToken cancellationToken);

    /// <summary>Per-export I/O counters where the engine exposes them (empty otherwise).</summary>
    Task<IReadOnlyList<ExportStats>> GetStatsAsync(CancellationToken cancellationToken);
}

public enum WriteCacheMode
{
    /// <summary>Every acknowledged write is on stable storage (the safe default).</summary>
    WriteThrough,
    /// <summary>Writes may be acknowledged from the storage node's cache.</summary>
    WriteBack,
}

public sealed record ChapSpec(string User, string Secret, string? MutualUser = null, string? MutualSecret = null)
{
    public bool Mutual => !string.IsNullOrEmpty(MutualUser) && !string.IsNullOrEmpty(MutualSecret);

    // Secrets never reach logs through a record's generated ToString.
    public override string ToString() => $"ChapSpec {{ User = {User}, Mutual = {Mutual} }}";
}

public sealed record InitiatorAccess(string InitiatorIqn, bool ReadOnly);

/// <summary>What one export must look like.</summary>
public sealed record ExportSpec
{
    public required string Key { get; init; }
    public required string TargetIqn { get; init; }
    /// <summary>SCST device / LIO backstore name (tgt ignores it).</summary>
    public required string DeviceName { get; init; }
    /// <summary>Block device or file the LUN reads and writes.</summary>
    public required string BackingPath { get; init; }
    /// <summary>True for file-backed volumes (SCST vdisk_fileio, LIO fileio, tgt rdwr on a file).</summary>
    public required bool IsFile { get; init; }
    /// <summary>SCSI unit serial (VPD 0x80): SCST usn + t10_dev_id, LIO vpd_unit_serial, tgt scsi_sn.</summary>
    public required string Serial { get; init; }
    public uint BlockSize { get; init; } = 512;
    public WriteCacheMode WriteCache { get; init; } = WriteCacheMode.WriteThrough;
    public bool ThinProvisioned { get; init; }
    public IReadOnlyList<InitiatorAccess> Initiators { get; init; } = [];
    public ChapSpec? Chap { get; init; }
    /// <summary>"ip:port" the target may be reached on (SCST allowed_portal, LIO np, tgt portal).</summary>
    public IReadOnlyList<string> Portals { get; init; } = [];
}

/// <summary>An export as found on the target.</summary>
public sealed record ActualExport
{
    public required string Key { get; init; }
    public required string TargetIqn { get; init; }
    public string? BackingPath { get; init; }
    public string? Serial { get; init; }
    public bool Enabled { get; init; }
    public long? SizeBytes { get; init; }
    public IReadOnlyList<InitiatorAccess> Initiators { get; init; } = [];
    public bool ChapEnabled { get; init; }
}

public sealed record SessionInfo(string Key, string TargetIqn, string InitiatorIqn, string? InitiatorAddress);

public sealed record ExportStats(string Key, long ReadBytes, long WrittenBytes, long ReadCommands, long WriteCommands, int Sessions);

public sealed record EngineHealth(bool Ready, string Reason)
{
    public static readonly EngineHealth Healthy = new(true, "");
    public static EngineHealth NotReady(string reason) => new(false, reason);
}

public sealed record EngineReconcileResult(int Checked, int Repaired, int OrphansRemoved, IReadOnlyList<string> Errors);
