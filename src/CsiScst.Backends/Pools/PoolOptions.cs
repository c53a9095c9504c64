namespace CsiScst.Backends.Pools;

/// <summary>
/// One pool configured on a target engine (<c>--pool name=…,backend=…,…</c>). Parsed by
/// <see cref="PoolOptionsParser"/>; turned into an <see cref="IStorageBackend"/> by <see cref="StorageBackendFactory"/>.
/// </summary>
public abstract class PoolOptions
{
    /// <summary>Part of every volume id: <c>[a-z0-9][a-z0-9_-]{0,31}</c>.</summary>
    public required string Name { get; init; }

    /// <summary>"file", "lvm" or "rbd".</summary>
    public abstract string Backend { get; }
}

/// <summary>How a file pool makes clones and snapshots.</summary>
public enum ReflinkMode
{
    /// <summary>Reflink (shared extents) where the filesystem supports it, a sparse copy otherwise.</summary>
    Auto,
    /// <summary>Reflink only: clones and snapshots fail with FAILED_PRECONDITION on a filesystem without it.</summary>
    Always,
}

/// <summary><c>name=files,backend=file,path=/var/lib/csi-scst/volumes[,reflink=auto|always][,overcommit=1.0][,create=true]</c></summary>
public sealed class FilePoolOptions : PoolOptions
{
    public const string Kind = "file";

    public override string Backend => Kind;

    /// <summary>Directory holding the volume files (and <c>snapshots/</c>).</summary>
    public required string Path { get; init; }

    public ReflinkMode Reflink { get; init; } = ReflinkMode.Auto;

    /// <summary>
    /// How far the logical sizes of our sparse files may exceed the filesystem. 1.0 (the default): every
    /// byte promised to a volume is backed by free space, so a write to a volume never fails with ENOSPC.
    /// </summary>
    public double Overcommit { get; init; } = 1.0;

    /// <summary>Create the directory when missing. Set false when it is a mount point, so an unmounted filesystem is never filled.</summary>
    public bool Create { get; init; } = true;
}

/// <summary><c>name=vg0,backend=lvm,vg=vg0[,thinpool=tp0][,overcommit=2.0][,cow_percent=20][,thick_clones=copy|refuse]</c></summary>
public sealed class LvmPoolOptions : PoolOptions
{
    public const string Kind = "lvm";

    public override string Backend => Kind;

    public required string VolumeGroup { get; init; }

    /// <summary>Thin pool LV in <see cref="VolumeGroup"/>; volumes are thin LVs in it. Null: thick LVs.</summary>
    public string? ThinPool { get; init; }

    /// <summary>Thin pools only: the sum of thin LV sizes may reach this many times the pool's data size.</summary>
    public double Overcommit { get; init; } = 1.0;

    /// <summary>Thick pools only: the COW space of a classic snapshot, in percent of the origin's size.</summary>
    public int CowPercent { get; init; } = 100;

    /// <summary>Thick pools only: whether a clone is a full block copy (slow, takes the full size) or refused.</summary>
    public bool ThickClones { get; init; } = true;
}

/// <summary>When a clone of an RBD snapshot is flattened (made independent of its parent).</summary>
public sealed record FlattenPolicy(FlattenPolicy.Mode When, int Depth = 0)
{
    public enum Mode
    {
        Never,
        Always,
        /// <summary>When the clone would be more than <see cref="Depth"/> images away from a non-clone.</summary>
        OnDepth,
    }

    public static readonly FlattenPolicy Never = new(Mode.Never);
    public static readonly FlattenPolicy Always = new(Mode.Always);

    /// <summary>The default keeps chains short (every level adds a read hop) without flattening every clone.</summary>
    public static readonly FlattenPolicy Default = new(Mode.OnDepth, 4);

    public override string ToString() => When switch
    {
        Mode.Never => "never",
        Mode.Always => "always",
        _ => $"on-depth:{Depth}",
    };

    public static bool TryParse(string text, out FlattenPolicy policy)
    {
        policy = Default;
        switch (text)
        {
            case "never":
                policy = Never;
                return true;
            case "always":
                policy = Always;
                return true;
        }
        const string prefix = "on-depth:";
        if (text.StartsWith(prefix, StringComparison.Ordinal)
            && int.TryParse(text.AsSpan(prefix.Length), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var depth)
            && depth is >= 1 and <= 64)
        {
            policy = new FlattenPolicy(Mode.OnDepth, depth);
            return true;
        }
        return false;
    }
}

/// <summary>
/// <c>name=ceph,backend=rbd,pool=rbd,user=admin,keyring=/etc/ceph/ceph.client.admin.keyring,conf=/etc/ceph/ceph.conf
/// [,mon_host=…][,features=layering,exclusive-lock][,flatten=never|always|on-depth:N][,object_size=4M][,data_pool=…][,namespace=…][,timeout=30]</c>
/// </summary>
public sealed class RbdPoolOptions : PoolOptions
{
    public const string Kind = "rbd";

    public override string Backend => Kind;

    /// <summary>The Ceph pool holding the images.</summary>
    public required string Pool { get; init; }

    /// <summary>RADOS namespace inside the pool; empty for none.</summary>
    public string Namespace { get; init; } = "";

    /// <summary>Ceph user without the "client." prefix.</summary>
    public string User { get; init; } = "admin";

    public string? Keyring { get; init; }

    public string Conf { get; init; } = "/etc/ceph/ceph.conf";

    /// <summary>Overrides the monitors of the conf file (comma separated, as ceph's mon_host).</summary>
    public string? MonHost { get; init; }

    /// <summary>
    /// Image features at create: Ceph's defaults, which krbd maps since Linux 5.3 (object-map makes deletes and
    /// flattens of large thin images fast). Older kernels need <c>features=layering</c>.
    /// </summary>
    public IReadOnlyList<string> Features { get; init; } = DefaultFeatures;

    public static readonly IReadOnlyList<string> DefaultFeatures = ["layering", "exclusive-lock", "object-map", "fast-diff", "deep-flatten"];

    /// <summary>Object size in bytes (power of two, 4 KiB … 32 MiB); null: Ceph's default (4 MiB).</summary>
    public long? ObjectSize { get; init; }

    /// <summary>Erasure-coded data pool for image data; metadata stays in <see cref="Pool"/>.</summary>
    public string? DataPool { get; init; }

    public FlattenPolicy Flatten { get; init; } = FlattenPolicy.Default;

    /// <summary>Every rbd/ceph call is killed after this long: the CLI blocks for ever when no monitor answers.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(30);
}
