namespace CsiScst.Backends;

/// <summary>
/// One configured pool of storage on a target node: an LVM VG (optionally a thin pool), a Ceph RBD pool,
/// or a directory of files. Creates the block device or file the target engine then exports.
/// Every operation is idempotent and tolerates a half-finished earlier attempt (an LV created but not
/// tagged, an image created but not mapped …). Only objects named with this instance's prefix and
/// (for LVM) tagged as ours are ever listed, changed or deleted.
/// Errors are StatusException with the CSI code: a delete of something that still has snapshots or clones
/// is FAILED_PRECONDITION; out of space is RESOURCE_EXHAUSTED with the numbers in the message.
/// </summary>
public interface IStorageBackend
{
    /// <summary>"file", "lvm" or "rbd".</summary>
    string Kind { get; }

    /// <summary>The configured pool name (part of the volume id).</summary>
    string PoolName { get; }

    /// <summary>True when volumes are regular files (exported with vdisk_fileio / fileio / rdwr).</summary>
    bool IsFileBacked { get; }

    /// <summary>Thin provisioning, snapshots and clones of this pool (GetEngineInfo's PoolInfo).</summary>
    BackendFeatures Features => BackendFeatures.Basic;

    /// <summary>Whether this pool is usable now: tools present, VG/pool/directory there, cluster reachable.</summary>
    Task<BackendHealth> ProbeAsync(CancellationToken cancellationToken);

    /// <summary>Size granularity (extent size, object size, 4 KiB for files); sizes are rounded up to it.</summary>
    Task<long> GetGranularityAsync(CancellationToken cancellationToken);

    Task<PoolCapacity> GetCapacityAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Creates the volume if missing (from a snapshot or another volume when a source is given) and returns it.
    /// An existing volume with this key is returned as it is; the caller compares sizes.
    /// </summary>
    Task<BackendVolume> CreateVolumeAsync(CreateVolumeSpec spec, CancellationToken cancellationToken);

    Task<BackendVolume?> GetVolumeAsync(string key, CancellationToken cancellationToken);

    /// <summary>Our volumes in this pool.</summary>
    Task<IReadOnlyList<BackendVolume>> ListVolumesAsync(CancellationToken cancellationToken);

    /// <summary>Deletes the volume. Gone already: OK. Has snapshots or clones depending on it: FAILED_PRECONDITION.</summary>
    Task DeleteVolumeAsync(string key, CancellationToken cancellationToken);

    /// <summary>Grows the volume to at least <paramref name="sizeBytes"/> (rounded up). Never shrinks.</summary>
    Task<BackendVolume> ExpandVolumeAsync(string key, long sizeBytes, CancellationToken cancellationToken);

    Task<BackendSnapshot> CreateSnapshotAsync(string volumeKey, string snapshotKey, CancellationToken cancellationToken);

    Task<BackendSnapshot?> GetSnapshotAsync(string volumeKey, string snapshotKey, CancellationToken cancellationToken);

    /// <summary>Our snapshots in this pool (the source volume key is recoverable from the names).</summary>
    Task<IReadOnlyList<BackendSnapshot>> ListSnapshotsAsync(CancellationToken cancellationToken);

    /// <summary>Gone already: OK. Clones still depend on it: FAILED_PRECONDITION.</summary>
    Task DeleteSnapshotAsync(string volumeKey, string snapshotKey, CancellationToken cancellationToken);

    /// <summary>
    /// Makes the volume available as a local block device or file and returns its path for export
    /// (LV: activate, /dev/VG/LV; RBD: rbd map, /dev/rbdN, reusing an existing mapping; file: the path).
    /// </summary>
    Task<string> AttachAsync(string key, CancellationToken cancellationToken);

    /// <summary>Undoes <see cref="AttachAsync"/> where that means something (rbd unmap). Not attached: OK.</summary>
    Task DetachAsync(string key, CancellationToken cancellationToken);
}

public abstract record VolumeSourceSpec;
public sealed record FromSnapshotSource(string VolumeKey, string SnapshotKey) : VolumeSourceSpec;
public sealed record FromVolumeSource(string VolumeKey) : VolumeSourceSpec;

public sealed record CreateVolumeSpec(string Key, long SizeBytes, VolumeSourceSpec? Source = null)
{
    /// <summary>Backend-specific StorageClass parameters (e.g. "rbdFlatten": "always").</summary>
    public IReadOnlyDictionary<string, string> Parameters { get; init; } = new Dictionary<string, string>();
}

public sealed record BackendVolume(string Key, long SizeBytes, VolumeSourceSpec? Source = null);

public sealed record BackendSnapshot(string VolumeKey, string SnapshotKey, long SizeBytes, DateTimeOffset Created, bool ReadyToUse = true);

public sealed record PoolCapacity(long TotalBytes, long AvailableBytes, long MaximumVolumeBytes);

public sealed record BackendHealth(bool Ready, string Reason)
{
    public static readonly BackendHealth Healthy = new(true, "");
    public static BackendHealth NotReady(string reason) => new(false, reason);
}

/// <summary>What a pool can do (reported in the engine's PoolInfo).</summary>
public sealed record BackendFeatures(bool Thin, bool Snapshots, bool Clones)
{
    public static readonly BackendFeatures Basic = new(false, false, false);
}
