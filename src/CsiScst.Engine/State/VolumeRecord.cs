using CsiScst.Targets;

namespace CsiScst.Engine.State;

/// <summary>Where a volume is in its life. Every transition is written before the step it announces.</summary>
public enum VolumePhase
{
    /// <summary>Desired, backing storage and export possibly half made (a crash mid-create); EnsureVolume finishes it.</summary>
    Creating,
    /// <summary>Backing storage and export exist; reconcile keeps the export as recorded.</summary>
    Ready,
    /// <summary>DeleteVolume started; a retry or the next reconcile finishes it.</summary>
    Deleting,
}

/// <summary>
/// The desired state of one volume: volumes/&lt;key&gt;.json. Everything reconcile needs to rebuild the
/// export after a reboot or a target restart (IQN, serial and LUN derive from the key), including the CHAP
/// secrets, which is why the file is 0600 and is never returned by any RPC.
/// </summary>
public sealed record VolumeRecord
{
    /// <summary>The file format's version; readers refuse versions they do not know.</summary>
    public const int CurrentVersion = 1;

    public int Version { get; init; } = CurrentVersion;
    public required string Key { get; init; }
    /// <summary>The CSI name, for operators.</summary>
    public string Name { get; init; } = "";
    public required string Pool { get; init; }
    public required string Backend { get; init; }
    public VolumePhase Phase { get; init; }
    public long RequiredBytes { get; init; }
    public long LimitBytes { get; init; }
    /// <summary>Size after rounding to the pool's granularity (and after expansions).</summary>
    public long CapacityBytes { get; init; }
    public SourceRecord? Source { get; init; }
    public uint BlockSize { get; init; } = 512;
    public WriteCacheMode WriteCache { get; init; } = WriteCacheMode.WriteThrough;
    public bool ThinProvisioned { get; init; }
    public ChapRecord? Chap { get; init; }
    public IReadOnlyDictionary<string, string> Parameters { get; init; } = new Dictionary<string, string>();
    public IReadOnlyList<AccessRecord> Access { get; init; } = [];
    /// <summary>Block device or file the LUN reads, as the backend last attached it.</summary>
    public string? BackingPath { get; init; }
    public DateTimeOffset Created { get; init; }
    public DateTimeOffset Updated { get; init; }
    /// <summary>Incremented on every write; tells operators (and tests) how often a record changed.</summary>
    public long Generation { get; init; }
}

public sealed record SourceRecord(string VolumeKey, string? SnapshotKey)
{
    public bool IsSnapshot => SnapshotKey is not null;
}

public sealed record AccessRecord(string NodeId, string InitiatorIqn, bool ReadOnly, bool Exclusive);

/// <summary>CHAP credentials of one volume; only ever written to the 0600 state file and given to the target engine.</summary>
public sealed record ChapRecord(string User, string Secret, string? MutualUser, string? MutualSecret)
{
    public bool Mutual => !string.IsNullOrEmpty(MutualUser) && !string.IsNullOrEmpty(MutualSecret);

    public override string ToString() => $"ChapRecord {{ User = {User}, Mutual = {Mutual} }}";
}

public enum SnapshotPhase
{
    Creating,
    Ready,
    Deleting,
}

/// <summary>One snapshot: snapshots/&lt;snapshot-key&gt;.json.</summary>
public sealed record SnapshotRecord
{
    public const int CurrentVersion = 1;

    public int Version { get; init; } = CurrentVersion;
    public required string SnapshotKey { get; init; }
    public required string VolumeKey { get; init; }
    public required string Pool { get; init; }
    public string Name { get; init; } = "";
    public SnapshotPhase Phase { get; init; }
    public long SizeBytes { get; init; }
    public DateTimeOffset Created { get; init; }
    public bool ReadyToUse { get; init; }
    public IReadOnlyDictionary<string, string> Parameters { get; init; } = new Dictionary<string, string>();
    public long Generation { get; init; }
}
