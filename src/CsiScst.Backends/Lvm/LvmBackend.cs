using System.Globalization;
using CsiScst.Backends.Pools;
using CsiScst.Core.Errors;
using CsiScst.Core.Exec;
using CsiScst.Core.Ids;
using CsiScst.Core.Locking;
using Microsoft.Extensions.Logging;

namespace CsiScst.Backends.Lvm;

/// <summary>
/// Volumes as logical volumes <c>csi-&lt;i&gt;-&lt;k&gt;</c> in one VG, thick or thin (in a thin pool), through
/// the lvm2 tools and their JSON reports. Ownership is name + tags (<c>csi-scst_instance_&lt;i&gt;</c> and
/// <c>csi-scst_volume</c>/<c>csi-scst_snapshot</c>): nothing without our instance's name is ever touched.
/// <para>Thin pools: snapshots are thin snapshots (activation-skip set, like lvcreate makes them) and clones are
/// thin snapshots of a snapshot or of a volume created active, i.e. independent thin LVs sharing blocks;
/// a volume with snapshots may be deleted. Thick VGs: snapshots are classic COW snapshots with
/// <see cref="LvmPoolOptions.CowPercent"/> of the origin's size reserved (they depend on their origin, so the
/// origin cannot be deleted while they exist), clones are full block copies (or refused).</para>
/// <para>A new thick LV holds whatever a deleted LV left on the disk: it is zeroed before use. It carries
/// the tag <c>csi-scst_pending</c> until zeroing (or the clone copy) completes, so a retry after a crash
/// redoes that step instead of handing out a half-written LV.</para>
/// </summary>
public sealed class LvmBackend : IStorageBackend
{
    /// <summary>On a thick LV whose zeroing or clone copy has not finished (documented in docs/backends.md).</summary>
    public const string PendingTag = "csi-scst_pending";
    internal const string CloneSourceTag = "csi-scst_clone_source";
    private const string SnapshotMarker = "-snap-";
    private const string CloneMarker = "-clone-";

    private static readonly IReadOnlyDictionary<string, string> Environment = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        // lvm warns about every inherited descriptor; ours are close-on-exec, but a host's may not be.
        ["LVM_SUPPRESS_FD_WARNINGS"] = "1",
    };

    private readonly LvmPoolOptions _options;
    private readonly ObjectNames _names;
    private readonly IToolRunner _tools;
    private readonly ILogger<LvmBackend> _logger;
    private readonly KeyedLocks _locks = new();
    // Serializes "is there room?" + lvcreate/lvextend so two creates cannot both take the last extents.
    private readonly SemaphoreSlim _spaceGate = new(1, 1);

    public LvmBackend(LvmPoolOptions options, ObjectNames names, IToolRunner tools, ILogger<LvmBackend> logger)
    {
        _options = options;
        _names = names;
        _tools = tools;
        _logger = logger;
    }

    public string Kind => LvmPoolOptions.Kind;
    public string PoolName => _options.Name;
    public bool IsFileBacked => false;
    public BackendFeatures Features => new(Thin: IsThin, Snapshots: true, Clones: IsThin || _options.ThickClones);

    private bool IsThin => _options.ThinPool is not null;
    private string Vg => _options.VolumeGroup;

    /// <summary>How long a data copy or zeroing may run: about 20 MiB/s, at least ten minutes.</summary>
    internal static TimeSpan DataTimeout(long bytes) => TimeSpan.FromSeconds(Math.Max(600, bytes / (20 * Sizes.MiB)));

    public async Task<BackendHealth> ProbeAsync(CancellationToken cancellationToken)
    {
        try
        {
            var vg = await VgAsync($"lvm pool {PoolName}", cancellationToken).ConfigureAwait(false);
            if (IsThin && await ThinPoolAsync($"lvm pool {PoolName}", cancellationToken).ConfigureAwait(false) is null)
            {
                return BackendHealth.NotReady($"lvm pool {PoolName}: thin pool {Vg}/{_options.ThinPool} does not exist");
            }
            return vg.ExtentSize > 0 ? BackendHealth.Healthy : BackendHealth.NotReady($"lvm pool {PoolName}: VG {Vg} reports no extent size");
        }
        catch (StatusException e)
        {
            return BackendHealth.NotReady(e.Message);
        }
    }

    public async Task<long> GetGranularityAsync(CancellationToken cancellationToken) =>
        (await VgAsync($"lvm pool {PoolName}: extent size", cancellationToken).ConfigureAwait(false)).ExtentSize;

    public async Task<PoolCapacity> GetCapacityAsync(CancellationToken cancellationToken)
    {
        var what = $"lvm pool {PoolName}: capacity";
        if (!IsThin)
        {
            var vg = await VgAsync(what, cancellationToken).ConfigureAwait(false);
            return new PoolCapacity(vg.Size, vg.Free, vg.Free);
        }
        var space = await ThinSpaceAsync(what, cancellationToken).ConfigureAwait(false);
        return new PoolCapacity(space.Limit, space.Available, space.Available);
    }

    public async Task<BackendVolume> CreateVolumeAsync(CreateVolumeSpec spec, CancellationToken cancellationToken)
    {
        BackendKeys.Require(spec.Key, "volume key");
        using var held = await _locks.AcquireAsync(VolumeLock(spec.Key), cancellationToken).ConfigureAwait(false);
        var name = _names.VolumeName(spec.Key);
        var what = $"lvm pool {PoolName}: create volume {spec.Key}";
        var extent = await GetGranularityAsync(cancellationToken).ConfigureAwait(false);

        var existing = await LvAsync(name, what, cancellationToken).ConfigureAwait(false);
        if (existing is not null && !existing.Tags.Contains(PendingTag))
        {
            await EnsureTagsAsync(existing, ObjectNames.LvmVolumeTag, what, cancellationToken).ConfigureAwait(false);
            return new BackendVolume(spec.Key, existing.Size);
        }

        long size;
        switch (spec.Source)
        {
            case null:
                size = Sizes.RoundUp(spec.SizeBytes, extent);
                if (size <= 0)
                {
                    throw StatusException.InvalidArgument($"volume {spec.Key}: size {spec.SizeBytes} must be positive");
                }
                if (IsThin)
                {
                    await CreateThinAsync(name, size, what, cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    existing ??= await CreateThickAsync(name, size, what, cancellationToken).ConfigureAwait(false);
                    await ZeroAsync(existing, what, cancellationToken).ConfigureAwait(false);
                    await RemoveTagAsync(name, PendingTag, what, cancellationToken).ConfigureAwait(false);
                }
                break;
            case FromSnapshotSource fromSnapshot:
                BackendKeys.Require(fromSnapshot.VolumeKey, "source volume key");
                BackendKeys.Require(fromSnapshot.SnapshotKey, "source snapshot key");
                what = $"lvm pool {PoolName}: create volume {spec.Key} from snapshot {fromSnapshot.SnapshotKey}";
                {
                    var source = await LvAsync(_names.SnapshotName(fromSnapshot.VolumeKey, fromSnapshot.SnapshotKey), what, cancellationToken).ConfigureAwait(false)
                        ?? throw StatusException.NotFound($"snapshot {fromSnapshot.SnapshotKey} of volume {fromSnapshot.VolumeKey} not found in lvm pool {PoolName}");
                    size = TargetSize(spec, SnapshotContentSize(source), extent, what);
                    await CloneAsync(name, source, existing, size, what, cancellationToken).ConfigureAwait(false);
                }
                break;
            case FromVolumeSource fromVolume:
                BackendKeys.Require(fromVolume.VolumeKey, "source volume key");
                what = $"lvm pool {PoolName}: clone volume {fromVolume.VolumeKey} to volume {spec.Key}";
                {
                    var source = await LvAsync(_names.VolumeName(fromVolume.VolumeKey), what, cancellationToken).ConfigureAwait(false)
                        ?? throw StatusException.NotFound($"source volume {fromVolume.VolumeKey} not found in lvm pool {PoolName}");
                    size = TargetSize(spec, source.Size, extent, what);
                    await CloneAsync(name, source, existing, size, what, cancellationToken).ConfigureAwait(false);
                }
                break;
            default:
                throw StatusException.InvalidArgument($"unsupported volume source {spec.Source.GetType().Name}");
        }
        _logger.LogInformation("Created volume {Key} ({Bytes} bytes) as {Vg}/{Lv} in lvm pool {Pool}", spec.Key, size, Vg, name, PoolName);
        return new BackendVolume(spec.Key, size, spec.Source);
    }

    public async Task<BackendVolume?> GetVolumeAsync(string key, CancellationToken cancellationToken)
    {
        BackendKeys.Require(key, "volume key");
        var lv = await LvAsync(_names.VolumeName(key), $"lvm pool {PoolName}: get volume {key}", cancellationToken).ConfigureAwait(false);
        return lv is null || lv.Tags.Contains(PendingTag) ? null : new BackendVolume(key, lv.Size);
    }

    public async Task<IReadOnlyList<BackendVolume>> ListVolumesAsync(CancellationToken cancellationToken)
    {
        var lvs = await LvsAsync($"lvm pool {PoolName}: list volumes", cancellationToken).ConfigureAwait(false);
        return lvs
            .Where(lv => IsOurs(lv, ObjectNames.LvmVolumeTag) && !lv.Tags.Contains(PendingTag))
            .Select(lv => new BackendVolume(_names.KeyFromVolumeName(lv.Name)!, lv.Size))
            .OrderBy(v => v.Key, StringComparer.Ordinal)
            .ToList();
    }

    public async Task DeleteVolumeAsync(string key, CancellationToken cancellationToken)
    {
        BackendKeys.Require(key, "volume key");
        using var held = await _locks.AcquireAsync(VolumeLock(key), cancellationToken).ConfigureAwait(false);
        var name = _names.VolumeName(key);
        var what = $"lvm pool {PoolName}: delete volume {key}";
        var lvs = await LvsAsync(what, cancellationToken).ConfigureAwait(false);
        var lv = lvs.FirstOrDefault(l => l.Name == name);
        if (lv is null)
        {
            return;
        }
        // COW snapshots live off their origin (lvremove would take them along); thin snapshots are independent.
        var snapshots = lvs.Where(l => l.Origin == name && l.VolumeType == 's').ToList();
        var userSnapshots = snapshots.Where(l => !l.Tags.Contains(CloneSourceTag)).Select(l => l.Name).ToList();
        if (userSnapshots.Count > 0)
        {
            throw StatusException.FailedPrecondition(
                $"volume {key} has snapshots ({string.Join(", ", userSnapshots)}) in lvm pool {PoolName}; classic LVM snapshots depend on their origin, delete them first");
        }
        foreach (var leftover in snapshots)
        {
            await RemoveLvAsync(leftover.Name, what, cancellationToken).ConfigureAwait(false);
        }
        await RemoveLvAsync(name, what, cancellationToken).ConfigureAwait(false);
        _logger.LogInformation("Deleted volume {Key} ({Vg}/{Lv}) from lvm pool {Pool}", key, Vg, name, PoolName);
    }

    public async Task<BackendVolume> ExpandVolumeAsync(string key, long sizeBytes, CancellationToken cancellationToken)
    {
        BackendKeys.Require(key, "volume key");
        using var held = await _locks.AcquireAsync(VolumeLock(key), cancellationToken).ConfigureAwait(false);
        var name = _names.VolumeName(key);
        var what = $"lvm pool {PoolName}: expand volume {key}";
        var lv = await LvAsync(name, what, cancellationToken).ConfigureAwait(false);
        if (lv is null || lv.Tags.Contains(PendingTag))
        {
            throw StatusException.NotFound($"volume {key} not found in lvm pool {PoolName}");
        }
        var size = Sizes.RoundUp(sizeBytes, await GetGranularityAsync(cancellationToken).ConfigureAwait(false));
        if (size <= lv.Size)
        {
            return new BackendVolume(key, lv.Size);
        }
        await ExtendAsync(name, lv.Size, size, what, cancellationToken).ConfigureAwait(false);
        _logger.LogInformation("Expanded volume {Key} in lvm pool {Pool} from {OldBytes} to {Bytes} bytes", key, PoolName, lv.Size, size);
        return new BackendVolume(key, size);
    }

    public async Task<BackendSnapshot> CreateSnapshotAsync(string volumeKey, string snapshotKey, CancellationToken cancellationToken)
    {
        BackendKeys.Require(volumeKey, "volume key");
        BackendKeys.Require(snapshotKey, "snapshot key");
        using var held = await _locks.AcquireAsync(VolumeLock(volumeKey), cancellationToken).ConfigureAwait(false);
        var name = _names.SnapshotName(volumeKey, snapshotKey);
        var what = $"lvm pool {PoolName}: snapshot {snapshotKey} of volume {volumeKey}";
        var existing = await LvAsync(name, what, cancellationToken).ConfigureAwait(false);
        if (existing is null)
        {
            var origin = await LvAsync(_names.VolumeName(volumeKey), what, cancellationToken).ConfigureAwait(false);
            if (origin is null || origin.Tags.Contains(PendingTag))
            {
                throw StatusException.NotFound($"volume {volumeKey} not found in lvm pool {PoolName}");
            }
            await SnapshotAsync(origin, name, [_names.LvmInstanceTag, ObjectNames.LvmSnapshotTag], activate: false, what, cancellationToken).ConfigureAwait(false);
            existing = await LvAsync(name, what, cancellationToken).ConfigureAwait(false)
                ?? throw StatusException.Internal($"{what}: {Vg}/{name} vanished right after it was created");
            _logger.LogInformation("Created snapshot {SnapshotKey} of volume {VolumeKey} in lvm pool {Pool}", snapshotKey, volumeKey, PoolName);
        }
        else
        {
            await EnsureTagsAsync(existing, ObjectNames.LvmSnapshotTag, what, cancellationToken).ConfigureAwait(false);
        }
        return ToSnapshot(volumeKey, snapshotKey, existing);
    }

    public async Task<BackendSnapshot?> GetSnapshotAsync(string volumeKey, string snapshotKey, CancellationToken cancellationToken)
    {
        BackendKeys.Require(volumeKey, "volume key");
        BackendKeys.Require(snapshotKey, "snapshot key");
        var lv = await LvAsync(_names.SnapshotName(volumeKey, snapshotKey), $"lvm pool {PoolName}: get snapshot {snapshotKey}", cancellationToken).ConfigureAwait(false);
        return lv is null ? null : ToSnapshot(volumeKey, snapshotKey, lv);
    }

    public async Task<IReadOnlyList<BackendSnapshot>> ListSnapshotsAsync(CancellationToken cancellationToken)
    {
        var lvs = await LvsAsync($"lvm pool {PoolName}: list snapshots", cancellationToken).ConfigureAwait(false);
        var result = new List<BackendSnapshot>();
        foreach (var lv in lvs.Where(lv => lv.Tags.Contains(_names.LvmInstanceTag) && lv.Tags.Contains(ObjectNames.LvmSnapshotTag)))
        {
            if (ParseSnapshotName(lv.Name) is { } keys)
            {
                result.Add(ToSnapshot(keys.VolumeKey, keys.SnapshotKey, lv));
            }
        }
        return result.OrderBy(s => s.SnapshotKey, StringComparer.Ordinal).ThenBy(s => s.VolumeKey, StringComparer.Ordinal).ToList();
    }

    /// <summary>Clones are independent LVs (thin snapshots or copies), so nothing depends on a snapshot.</summary>
    public async Task DeleteSnapshotAsync(string volumeKey, string snapshotKey, CancellationToken cancellationToken)
    {
        BackendKeys.Require(volumeKey, "volume key");
        BackendKeys.Require(snapshotKey, "snapshot key");
        using var held = await _locks.AcquireAsync(VolumeLock(volumeKey), cancellationToken).ConfigureAwait(false);
        await RemoveLvAsync(_names.SnapshotName(volumeKey, snapshotKey), $"lvm pool {PoolName}: delete snapshot {snapshotKey} of volume {volumeKey}", cancellationToken)
            .ConfigureAwait(false);
        _logger.LogInformation("Deleted snapshot {SnapshotKey} of volume {VolumeKey} from lvm pool {Pool}", snapshotKey, volumeKey, PoolName);
    }

    /// <summary>Activates the LV (ignoring activation skip) and returns /dev/VG/LV.</summary>
    public async Task<string> AttachAsync(string key, CancellationToken cancellationToken)
    {
        BackendKeys.Require(key, "volume key");
        using var held = await _locks.AcquireAsync(VolumeLock(key), cancellationToken).ConfigureAwait(false);
        var name = _names.VolumeName(key);
        var what = $"lvm pool {PoolName}: activate volume {key}";
        var lv = await LvAsync(name, what, cancellationToken).ConfigureAwait(false);
        if (lv is null || lv.Tags.Contains(PendingTag))
        {
            throw StatusException.NotFound($"volume {key} not found in lvm pool {PoolName}");
        }
        if (!lv.IsActive)
        {
            await ActivateAsync(name, what, cancellationToken).ConfigureAwait(false);
        }
        return DevicePath(name);
    }

    /// <summary>Deactivates the LV once nothing exports it, so the storage node holds no stale mapping.</summary>
    public async Task DetachAsync(string key, CancellationToken cancellationToken)
    {
        BackendKeys.Require(key, "volume key");
        using var held = await _locks.AcquireAsync(VolumeLock(key), cancellationToken).ConfigureAwait(false);
        var name = _names.VolumeName(key);
        var what = $"lvm pool {PoolName}: deactivate volume {key}";
        var lv = await LvAsync(name, what, cancellationToken).ConfigureAwait(false);
        if (lv is null || !lv.IsActive)
        {
            return;
        }
        // A COW origin with snapshots would take them down with it; leave such an LV active.
        if (lv.VolumeType == 'o')
        {
            return;
        }
        await RunAsync(what, new ToolCommand("lvchange", "-an", $"{Vg}/{name}"), cancellationToken).ConfigureAwait(false);
    }

    // ------------------------------------------------------------------ steps

    internal string DevicePath(string lv) => $"/dev/{Vg}/{lv}";

    private static string VolumeLock(string key) => "v/" + key;

    private bool IsOurs(LvmLv lv, string kindTag) =>
        lv.Tags.Contains(_names.LvmInstanceTag) && lv.Tags.Contains(kindTag) && _names.KeyFromVolumeName(lv.Name) is not null;

    private (string VolumeKey, string SnapshotKey)? ParseSnapshotName(string name)
    {
        var prefix = _names.VolumePrefix;
        if (!name.StartsWith(prefix, StringComparison.Ordinal) || name.Length != prefix.Length + Names.KeyLength * 2 + SnapshotMarker.Length)
        {
            return null;
        }
        var volumeKey = name.Substring(prefix.Length, Names.KeyLength);
        var marker = name.Substring(prefix.Length + Names.KeyLength, SnapshotMarker.Length);
        var snapshotKey = name[^Names.KeyLength..];
        return marker == SnapshotMarker && Names.IsValidKey(volumeKey) && Names.IsValidKey(snapshotKey) ? (volumeKey, snapshotKey) : null;
    }

    /// <summary>
    /// A COW snapshot's lv_size is its COW space; its content is the origin's size at snapshot time, which is
    /// the origin's size unless the origin grew since (we cannot tell then: lvm does not keep it).
    /// Thin snapshots report their virtual size.
    /// </summary>
    private static long SnapshotContentSize(LvmLv snapshot) => snapshot.VolumeType == 's' && snapshot.OriginSize > 0 ? snapshot.OriginSize : snapshot.Size;

    private BackendSnapshot ToSnapshot(string volumeKey, string snapshotKey, LvmLv lv)
    {
        if (lv.IsInvalidSnapshot)
        {
            _logger.LogWarning("Snapshot {Vg}/{Lv} is invalid (its COW space overflowed); it cannot be restored", Vg, lv.Name);
        }
        return new BackendSnapshot(volumeKey, snapshotKey, SnapshotContentSize(lv), lv.CreatedAt, ReadyToUse: !lv.IsInvalidSnapshot);
    }

    private static long TargetSize(CreateVolumeSpec spec, long sourceSize, long extent, string what)
    {
        var size = spec.SizeBytes <= 0 ? sourceSize : Sizes.RoundUp(spec.SizeBytes, extent);
        if (size < sourceSize)
        {
            throw StatusException.OutOfRange($"{what}: requested size {Sizes.Format(size)} is smaller than the source's {Sizes.Format(sourceSize)}");
        }
        return size;
    }

    private async Task CreateThinAsync(string name, long size, string what, CancellationToken cancellationToken)
    {
        await _spaceGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await EnsureThinRoomAsync(size, what, cancellationToken).ConfigureAwait(false);
            await RunAsync(what, new ToolCommand("lvcreate", ["-y", "--type", "thin", "-n", name, "-V", Bytes(size), "--thinpool", _options.ThinPool!,
                "--addtag", _names.LvmInstanceTag, "--addtag", ObjectNames.LvmVolumeTag, Vg]), cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _spaceGate.Release();
        }
    }

    /// <summary>Creates a thick LV marked pending; the caller zeroes or fills it, then removes the mark.</summary>
    private async Task<LvmLv> CreateThickAsync(string name, long size, string what, CancellationToken cancellationToken)
    {
        await _spaceGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var vg = await VgAsync(what, cancellationToken).ConfigureAwait(false);
            if (size > vg.Free)
            {
                throw StatusException.ResourceExhausted(
                    $"{what}: needs {Sizes.Format(size)} but VG {Vg} has {Sizes.Format(vg.Free)} free of {Sizes.Format(vg.Size)}");
            }
            await RunAsync(what, new ToolCommand("lvcreate", ["-y", "-n", name, "-L", Bytes(size), "--wipesignatures", "y", "--zero", "y",
                "--addtag", _names.LvmInstanceTag, "--addtag", ObjectNames.LvmVolumeTag, "--addtag", PendingTag, Vg]), cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _spaceGate.Release();
        }
        return await LvAsync(name, what, cancellationToken).ConfigureAwait(false)
            ?? throw StatusException.Internal($"{what}: {Vg}/{name} vanished right after it was created");
    }

    /// <summary>Zeroes a new thick LV so it never shows a deleted volume's data (BLKZEROOUT: offloaded where the disk can).</summary>
    private async Task ZeroAsync(LvmLv lv, string what, CancellationToken cancellationToken)
    {
        if (!lv.IsActive)
        {
            await ActivateAsync(lv.Name, what, cancellationToken).ConfigureAwait(false);
        }
        await RunAsync(what, new ToolCommand("blkdiscard", "--zeroout", DevicePath(lv.Name)) { Timeout = DataTimeout(lv.Size) }, cancellationToken)
            .ConfigureAwait(false);
    }

    private async Task CloneAsync(string name, LvmLv source, LvmLv? existing, long size, string what, CancellationToken cancellationToken)
    {
        if (IsThin)
        {
            if (source.PoolLv != _options.ThinPool)
            {
                throw StatusException.FailedPrecondition($"{what}: the source {Vg}/{source.Name} is not a thin LV of pool {_options.ThinPool}");
            }
            await _spaceGate.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                await EnsureThinRoomAsync(size, what, cancellationToken).ConfigureAwait(false);
                // A thin snapshot created active is an independent thin LV sharing the source's blocks.
                await SnapshotAsync(source, name, [_names.LvmInstanceTag, ObjectNames.LvmVolumeTag], activate: true, what, cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                _spaceGate.Release();
            }
            await ExtendAsync(name, source.Size, size, what, cancellationToken).ConfigureAwait(false);
            return;
        }

        if (!_options.ThickClones)
        {
            throw StatusException.InvalidArgument(
                $"{what}: lvm pool {PoolName} is thick and configured with thick_clones=refuse (clones would be full copies); use a thin pool");
        }
        // Thick: a full copy into a new LV, from a point-in-time source (the snapshot, or a temporary one of the volume).
        var copySource = source;
        string? temporary = null;
        if (source.VolumeType != 's')
        {
            temporary = source.Name + CloneMarker + _names.KeyFromVolumeName(name);
            copySource = await LvAsync(temporary, what, cancellationToken).ConfigureAwait(false)
                ?? await SnapshotAsync(source, temporary, [_names.LvmInstanceTag, CloneSourceTag], activate: true, what, cancellationToken).ConfigureAwait(false);
        }
        existing ??= await CreateThickAsync(name, size, what, cancellationToken).ConfigureAwait(false);
        if (!existing.IsActive)
        {
            await ActivateAsync(name, what, cancellationToken).ConfigureAwait(false);
        }
        if (!copySource.IsActive)
        {
            await ActivateAsync(copySource.Name, what, cancellationToken).ConfigureAwait(false);
        }
        var contentSize = SnapshotContentSize(copySource);
        // The snapshot device is exactly the content's size: dd copies it to its end.
        await RunAsync(what, new ToolCommand("dd", $"if={DevicePath(copySource.Name)}", $"of={DevicePath(name)}", "bs=4M",
            "iflag=direct", "oflag=direct", "conv=fsync,nocreat", "status=none")
        {
            Timeout = DataTimeout(contentSize),
        }, cancellationToken).ConfigureAwait(false);
        if (size > contentSize)
        {
            // The part past the source's end must not show old data either.
            await RunAsync(what, new ToolCommand("blkdiscard", "--zeroout", "--offset", contentSize.ToString(CultureInfo.InvariantCulture), DevicePath(name))
            {
                Timeout = DataTimeout(size - contentSize),
            }, cancellationToken).ConfigureAwait(false);
        }
        await RemoveTagAsync(name, PendingTag, what, cancellationToken).ConfigureAwait(false);
        if (temporary is not null)
        {
            await RemoveLvAsync(temporary, what, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>lvcreate -s: thin snapshot (no size) in a thin pool, COW snapshot with reserved space otherwise.</summary>
    private async Task<LvmLv> SnapshotAsync(LvmLv origin, string name, string[] tags, bool activate, string what, CancellationToken cancellationToken)
    {
        List<string> arguments = ["-y", "-s", "-n", name];
        foreach (var tag in tags)
        {
            arguments.Add("--addtag");
            arguments.Add(tag);
        }
        if (origin.PoolLv.Length > 0)
        {
            // Thin snapshots skip activation by default; clones are volumes and must come up like any LV.
            if (activate)
            {
                arguments.AddRange(["--setactivationskip", "n", "-a", "y"]);
            }
        }
        else
        {
            var extent = (await VgAsync(what, cancellationToken).ConfigureAwait(false)).ExtentSize;
            var cow = Math.Max(extent, Sizes.RoundUp((long)Math.Ceiling(origin.Size * (_options.CowPercent / 100.0)), extent));
            await _spaceGate.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                var vg = await VgAsync(what, cancellationToken).ConfigureAwait(false);
                if (cow > vg.Free)
                {
                    throw StatusException.ResourceExhausted(
                        $"{what}: a snapshot of {Vg}/{origin.Name} reserves {Sizes.Format(cow)} ({_options.CowPercent}% of the origin) but VG {Vg} has {Sizes.Format(vg.Free)} free");
                }
                arguments.AddRange(["-L", Bytes(cow)]);
                arguments.Add($"{Vg}/{origin.Name}");
                await RunAsync(what, new ToolCommand("lvcreate", arguments), cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                _spaceGate.Release();
            }
            return await LvAsync(name, what, cancellationToken).ConfigureAwait(false)
                ?? throw StatusException.Internal($"{what}: {Vg}/{name} vanished right after it was created");
        }
        arguments.Add($"{Vg}/{origin.Name}");
        await RunAsync(what, new ToolCommand("lvcreate", arguments), cancellationToken).ConfigureAwait(false);
        return await LvAsync(name, what, cancellationToken).ConfigureAwait(false)
            ?? throw StatusException.Internal($"{what}: {Vg}/{name} vanished right after it was created");
    }

    private async Task ExtendAsync(string name, long current, long size, string what, CancellationToken cancellationToken)
    {
        if (size <= current)
        {
            return;
        }
        await _spaceGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (IsThin)
            {
                await EnsureThinRoomAsync(size - current, what, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                var vg = await VgAsync(what, cancellationToken).ConfigureAwait(false);
                if (size - current > vg.Free)
                {
                    throw StatusException.ResourceExhausted(
                        $"{what}: growing {Vg}/{name} by {Sizes.Format(size - current)} needs more than the {Sizes.Format(vg.Free)} free in VG {Vg}");
                }
            }
            await RunAsync(what, new ToolCommand("lvextend", "-L", Bytes(size), $"{Vg}/{name}"), cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _spaceGate.Release();
        }
    }

    private async Task ActivateAsync(string name, string what, CancellationToken cancellationToken) =>
        // -K: thin snapshots (and clones made by older versions) carry the activation-skip flag.
        await RunAsync(what, new ToolCommand("lvchange", "-a", "y", "-K", $"{Vg}/{name}"), cancellationToken).ConfigureAwait(false);

    /// <summary>lvremove; gone already is fine; "in use" (still exported or opened) is FAILED_PRECONDITION.</summary>
    private async Task RemoveLvAsync(string name, string what, CancellationToken cancellationToken)
    {
        var result = await RunAsync(what, new ToolCommand("lvremove", "-y", $"{Vg}/{name}") { SuccessExitCodes = [0, 5] }, cancellationToken).ConfigureAwait(false);
        if (result.ExitCode == 0 || IsNotFound(result.StandardError))
        {
            return;
        }
        if (result.StandardError.Contains(" in use", StringComparison.Ordinal))
        {
            throw StatusException.FailedPrecondition($"{what}: {Vg}/{name} is in use (still exported or opened on the storage node): {Tail(result.StandardError)}");
        }
        throw Classify(what, "lvremove", result.ExitCode, result.StandardError, null);
    }

    private async Task EnsureTagsAsync(LvmLv lv, string kindTag, string what, CancellationToken cancellationToken)
    {
        var missing = new[] { _names.LvmInstanceTag, kindTag }.Where(t => !lv.Tags.Contains(t)).ToList();
        if (missing.Count == 0)
        {
            return;
        }
        // An LV with our instance's name but without our tags: a create interrupted by an older version or by
        // hand. It is ours by name; tag it so lists and operators see it as such.
        _logger.LogWarning("Tagging {Vg}/{Lv}, which carries our name but not the tags {Tags}", Vg, lv.Name, string.Join(",", missing));
        List<string> arguments = [];
        foreach (var tag in missing)
        {
            arguments.Add("--addtag");
            arguments.Add(tag);
        }
        arguments.Add($"{Vg}/{lv.Name}");
        await RunAsync(what, new ToolCommand("lvchange", arguments), cancellationToken).ConfigureAwait(false);
    }

    private async Task RemoveTagAsync(string name, string tag, string what, CancellationToken cancellationToken) =>
        await RunAsync(what, new ToolCommand("lvchange", "--deltag", tag, $"{Vg}/{name}"), cancellationToken).ConfigureAwait(false);

    // ------------------------------------------------------------------ reports

    private async Task<LvmVg> VgAsync(string what, CancellationToken cancellationToken)
    {
        var result = await RunAsync(what, new ToolCommand("vgs", "--reportformat", "json", "--units", "b", "--nosuffix", "-o", LvmVg.Fields, Vg),
            cancellationToken).ConfigureAwait(false);
        return Parse(() => LvmJsonContext.ParseVgs(result.StandardOutput)).FirstOrDefault(v => v.Name == Vg)
            ?? throw StatusException.Unavailable($"{what}: volume group {Vg} not found");
    }

    /// <summary>Every LV of the VG (one call), with the origin size of COW snapshots filled in.</summary>
    private async Task<List<LvmLv>> LvsAsync(string what, CancellationToken cancellationToken)
    {
        var result = await RunAsync(what, new ToolCommand("lvs", "--reportformat", "json", "--units", "b", "--nosuffix", "-o", LvmLv.ReportFields, Vg),
            cancellationToken).ConfigureAwait(false);
        return Parse(() => LvmJsonContext.ParseLvs(result.StandardOutput));
    }

    /// <summary>One LV of the VG, or null when there is none by that name.</summary>
    private async Task<LvmLv?> LvAsync(string name, string what, CancellationToken cancellationToken)
    {
        var result = await RunAsync(what, new ToolCommand("lvs", "--reportformat", "json", "--units", "b", "--nosuffix", "-o", LvmLv.ReportFields, $"{Vg}/{name}")
        {
            SuccessExitCodes = [0, 5],
        }, cancellationToken).ConfigureAwait(false);
        if (result.ExitCode != 0)
        {
            if (IsNotFound(result.StandardError))
            {
                return null;
            }
            throw Classify(what, "lvs", result.ExitCode, result.StandardError, null);
        }
        return Parse(() => LvmJsonContext.ParseLvs(result.StandardOutput)).FirstOrDefault(lv => lv.Name == name);
    }

    private async Task<LvmLv?> ThinPoolAsync(string what, CancellationToken cancellationToken) =>
        (await LvsAsync(what, cancellationToken).ConfigureAwait(false)).FirstOrDefault(lv => lv.Name == _options.ThinPool && lv.IsThinPool);

    internal readonly record struct ThinSpace(long PoolSize, long PoolUsed, long Provisioned, long Limit, long Available);

    /// <summary>The overcommit limit over the thin pool's data size, minus the virtual sizes of every thin LV in it (ours and others').</summary>
    private async Task<ThinSpace> ThinSpaceAsync(string what, CancellationToken cancellationToken)
    {
        var lvs = await LvsAsync(what, cancellationToken).ConfigureAwait(false);
        var pool = lvs.FirstOrDefault(lv => lv.Name == _options.ThinPool && lv.IsThinPool)
            ?? throw StatusException.Unavailable($"{what}: thin pool {Vg}/{_options.ThinPool} not found");
        var provisioned = lvs.Where(lv => lv.PoolLv == _options.ThinPool).Sum(lv => lv.Size);
        var used = (long)(pool.Size * ((pool.DataPercent ?? 0) / 100.0));
        var limit = (long)Math.Min(long.MaxValue / 2, pool.Size * _options.Overcommit);
        return new ThinSpace(pool.Size, used, provisioned, limit, Math.Max(0, limit - provisioned));
    }

    private async Task EnsureThinRoomAsync(long bytes, string what, CancellationToken cancellationToken)
    {
        var space = await ThinSpaceAsync(what, cancellationToken).ConfigureAwait(false);
        if (bytes > space.Available)
        {
            throw StatusException.ResourceExhausted(
                $"{what}: needs {Sizes.Format(bytes)} but thin pool {Vg}/{_options.ThinPool} has {Sizes.Format(space.Available)} left to provision "
                + $"(data {Sizes.Format(space.PoolSize)}, {Sizes.Format(space.PoolUsed)} used, {Sizes.Format(space.Provisioned)} provisioned, "
                + $"overcommit {_options.Overcommit.ToString(CultureInfo.InvariantCulture)})");
        }
        if (space.PoolUsed >= space.PoolSize)
        {
            throw StatusException.ResourceExhausted($"{what}: thin pool {Vg}/{_options.ThinPool} is full ({Sizes.Format(space.PoolUsed)} of {Sizes.Format(space.PoolSize)} used)");
        }
    }

    // ------------------------------------------------------------------ running

    private static string Bytes(long bytes) => bytes.ToString(CultureInfo.InvariantCulture) + "b";

    private static bool IsNotFound(string stderr) =>
        stderr.Contains("Failed to find logical volume", StringComparison.Ordinal)
        || stderr.Contains("not found in volume group", StringComparison.Ordinal);

    private async Task<ToolResult> RunAsync(string what, ToolCommand command, CancellationToken cancellationToken)
    {
        command = command with { Environment = Environment };
        try
        {
            return await _tools.RunAsync(command, cancellationToken).ConfigureAwait(false);
        }
        catch (ToolException e)
        {
            throw e.Failure switch
            {
                ToolFailure.TimedOut => StatusException.Unavailable($"{what}: {e.Message}", e),
                ToolFailure.NotFound => StatusException.FailedPrecondition($"{what}: {command.ToolName} is not installed on this storage node (Debian package lvm2)"),
                _ => Classify(what, command.ToolName, e.ExitCode ?? -1, e.StandardError, e),
            };
        }
    }

    private StatusException Classify(string what, string tool, int exitCode, string stderr, Exception? inner) =>
        Classify(what, Vg, tool, exitCode, stderr, inner);

    /// <summary>The status for a failed lvm2 command, from its message (lvm exits 5 for nearly everything).</summary>
    internal static StatusException Classify(string what, string vg, string tool, int exitCode, string stderr, Exception? inner)
    {
        var tail = Tail(stderr);
        if (stderr.Contains("insufficient free space", StringComparison.OrdinalIgnoreCase)
            || stderr.Contains("Insufficient suitable allocatable extents", StringComparison.Ordinal)
            || stderr.Contains("free space in thin pool", StringComparison.Ordinal))
        {
            return StatusException.ResourceExhausted($"{what}: {tail}");
        }
        if (stderr.Contains($"Volume group \"{vg}\" not found", StringComparison.Ordinal))
        {
            return StatusException.Unavailable($"{what}: volume group {vg} not found on this storage node: {tail}", inner);
        }
        if (stderr.Contains(" in use", StringComparison.Ordinal))
        {
            return StatusException.FailedPrecondition($"{what}: {tail}");
        }
        return StatusException.Internal($"{what}: {tool} exited with code {exitCode}: {tail}", inner);
    }

    private static string Tail(string stderr)
    {
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Where(l => !l.StartsWith("WARNING: Sum of all thin volume sizes", StringComparison.Ordinal))
            .TakeLast(3);
        var text = string.Join(" | ", lines);
        return text.Length > 500 ? text[^500..] : text;
    }

    private static T Parse<T>(Func<T> parse)
    {
        try
        {
            return parse();
        }
        catch (FormatException e)
        {
            throw StatusException.Internal(e.Message, e);
        }
    }
}
