using System.Globalization;
using CsiScst.Backends.Pools;
using CsiScst.Core.Errors;
using CsiScst.Core.Exec;
using CsiScst.Core.Ids;
using CsiScst.Core.Locking;
using Grpc.Core;
using Microsoft.Extensions.Logging;

namespace CsiScst.Backends.Rbd;

/// <summary>
/// Volumes as RBD images <c>csi-&lt;i&gt;-&lt;k&gt;</c> in one Ceph pool, through the rbd CLI. Snapshots are
/// protected RBD snapshots <c>@snap-&lt;s&gt;</c> (they live inside the image, so a volume with snapshots
/// cannot be deleted: FAILED_PRECONDITION). Clones are RBD clones of a snapshot; a clone of a volume goes
/// through a hidden snapshot <c>@clone-&lt;target key&gt;</c> of the source, removed again when the clone is
/// flattened or deleted. Clones are flattened by the pool's policy (never, always, or beyond a chain depth).
/// </summary>
public sealed class RbdBackend : IStorageBackend
{
    /// <summary>StorageClass parameter overriding the pool's flatten policy for one volume.</summary>
    public const string FlattenParameter = "rbdFlatten";
    private const string SnapshotPrefix = "snap-";
    private const string CloneSnapshotPrefix = "clone-";
    private const long DefaultObjectSize = 4 * Sizes.MiB;
    private const int MaxChainWalk = 64;

    private readonly RbdPoolOptions _options;
    private readonly ObjectNames _names;
    private readonly RbdCli _cli;
    private readonly ILogger<RbdBackend> _logger;
    private readonly KeyedLocks _locks = new();

    public RbdBackend(RbdPoolOptions options, ObjectNames names, IToolRunner tools, ILogger<RbdBackend> logger)
    {
        _options = options;
        _names = names;
        _cli = new RbdCli(options, tools);
        _logger = logger;
    }

    public string Kind => RbdPoolOptions.Kind;
    public string PoolName => _options.Name;
    public bool IsFileBacked => false;
    public BackendFeatures Features => new(Thin: true, Snapshots: true, Clones: true);

    public async Task<BackendHealth> ProbeAsync(CancellationToken cancellationToken)
    {
        if (_options.Keyring is not null && !System.IO.File.Exists(_options.Keyring))
        {
            return BackendHealth.NotReady($"rbd pool {PoolName}: keyring {_options.Keyring} does not exist");
        }
        try
        {
            // Lists the pool: proves the tools, the monitors, our key and our caps on the pool in one call.
            await _cli.RbdAsync($"rbd pool {PoolName}: list images", ["ls", "--format", "json", _cli.PoolSpec], cancellationToken).ConfigureAwait(false);
            return BackendHealth.Healthy;
        }
        catch (StatusException e)
        {
            return BackendHealth.NotReady(e.Message);
        }
    }

    public Task<long> GetGranularityAsync(CancellationToken cancellationToken) => Task.FromResult(Granularity);

    private long Granularity => _options.ObjectSize ?? DefaultObjectSize;

    public async Task<PoolCapacity> GetCapacityAsync(CancellationToken cancellationToken)
    {
        var pool = await PoolStatsAsync($"rbd pool {PoolName}: capacity", cancellationToken).ConfigureAwait(false)
            // The manager publishes a new pool's statistics a moment after it is created; a missing pool stays missing.
            ?? throw StatusException.Unavailable($"rbd pool {PoolName}: ceph df does not list the Ceph pool {_options.Pool} (missing, or created a moment ago)");
        var available = pool.MaxAvailable;
        var total = pool.Stored + pool.MaxAvailable;
        if (pool.QuotaBytes > 0)
        {
            available = Math.Min(available, Math.Max(0, pool.QuotaBytes - pool.Stored));
            total = Math.Min(total, pool.QuotaBytes);
        }
        // Images are thin: this is what can still be written, the honest bound for a new volume's data.
        return new PoolCapacity(total, available, available);
    }

    public async Task<BackendVolume> CreateVolumeAsync(CreateVolumeSpec spec, CancellationToken cancellationToken)
    {
        BackendKeys.Require(spec.Key, "volume key");
        var flatten = FlattenPolicyFor(spec);
        using var held = await _locks.AcquireAsync(VolumeLock(spec.Key), cancellationToken).ConfigureAwait(false);
        var image = _names.VolumeName(spec.Key);
        var what = $"rbd pool {PoolName}: create volume {spec.Key}";

        var existing = await InfoAsync(image, what, cancellationToken).ConfigureAwait(false);
        if (existing is not null)
        {
            // A retry after a crash between clone and flatten finishes the job.
            if (existing.Parent is not null)
            {
                await FlattenIfDueAsync(image, existing, flatten, what, cancellationToken).ConfigureAwait(false);
            }
            return new BackendVolume(spec.Key, existing.Size);
        }

        long size;
        switch (spec.Source)
        {
            case null:
                size = Sizes.RoundUp(spec.SizeBytes, Granularity);
                if (size <= 0)
                {
                    throw StatusException.InvalidArgument($"volume {spec.Key}: size {spec.SizeBytes} must be positive");
                }
                await EnsureRoomAsync(what, cancellationToken).ConfigureAwait(false);
                await CreateImageAsync(image, size, what, cancellationToken).ConfigureAwait(false);
                break;
            case FromSnapshotSource fromSnapshot:
                BackendKeys.Require(fromSnapshot.VolumeKey, "source volume key");
                BackendKeys.Require(fromSnapshot.SnapshotKey, "source snapshot key");
                what = $"rbd pool {PoolName}: create volume {spec.Key} from snapshot {fromSnapshot.SnapshotKey}";
                {
                    var parent = _names.VolumeName(fromSnapshot.VolumeKey);
                    var snapshotName = SnapshotPrefix + fromSnapshot.SnapshotKey;
                    var snapshot = (await SnapshotsAsync(parent, what, cancellationToken).ConfigureAwait(false))?.FirstOrDefault(s => s.Name == snapshotName)
                        ?? throw StatusException.NotFound($"snapshot {fromSnapshot.SnapshotKey} of volume {fromSnapshot.VolumeKey} not found in rbd pool {PoolName}");
                    size = TargetSize(spec, snapshot.Size, what);
                    await EnsureRoomAsync(what, cancellationToken).ConfigureAwait(false);
                    if (!snapshot.IsProtected)
                    {
                        await ProtectAsync(parent, snapshotName, what, cancellationToken).ConfigureAwait(false);
                    }
                    await CloneAsync(parent, snapshotName, image, what, cancellationToken).ConfigureAwait(false);
                    await GrowAsync(image, snapshot.Size, size, what, cancellationToken).ConfigureAwait(false);
                }
                break;
            case FromVolumeSource fromVolume:
                BackendKeys.Require(fromVolume.VolumeKey, "source volume key");
                what = $"rbd pool {PoolName}: clone volume {fromVolume.VolumeKey} to volume {spec.Key}";
                {
                    var parent = _names.VolumeName(fromVolume.VolumeKey);
                    var parentInfo = await InfoAsync(parent, what, cancellationToken).ConfigureAwait(false)
                        ?? throw StatusException.NotFound($"source volume {fromVolume.VolumeKey} not found in rbd pool {PoolName}");
                    size = TargetSize(spec, parentInfo.Size, what);
                    await EnsureRoomAsync(what, cancellationToken).ConfigureAwait(false);
                    var snapshotName = CloneSnapshotPrefix + spec.Key;
                    await EnsureSnapshotAsync(parent, snapshotName, what, cancellationToken).ConfigureAwait(false);
                    await CloneAsync(parent, snapshotName, image, what, cancellationToken).ConfigureAwait(false);
                    await GrowAsync(image, parentInfo.Size, size, what, cancellationToken).ConfigureAwait(false);
                }
                break;
            default:
                throw StatusException.InvalidArgument($"unsupported volume source {spec.Source.GetType().Name}");
        }

        if (spec.Source is not null)
        {
            var created = await InfoAsync(image, what, cancellationToken).ConfigureAwait(false)
                ?? throw StatusException.Internal($"{what}: the image {_cli.ImageSpec(image)} vanished right after it was cloned");
            await FlattenIfDueAsync(image, created, flatten, what, cancellationToken).ConfigureAwait(false);
        }
        _logger.LogInformation("Created volume {Key} ({Bytes} bytes) as {Image} in rbd pool {Pool}", spec.Key, size, _cli.ImageSpec(image), PoolName);
        return new BackendVolume(spec.Key, size, spec.Source);
    }

    public async Task<BackendVolume?> GetVolumeAsync(string key, CancellationToken cancellationToken)
    {
        BackendKeys.Require(key, "volume key");
        var info = await InfoAsync(_names.VolumeName(key), $"rbd pool {PoolName}: get volume {key}", cancellationToken).ConfigureAwait(false);
        return info is null ? null : new BackendVolume(key, info.Size);
    }

    public async Task<IReadOnlyList<BackendVolume>> ListVolumesAsync(CancellationToken cancellationToken)
    {
        var entries = await ListLongAsync(cancellationToken).ConfigureAwait(false);
        return entries
            .Where(e => e.Snapshot is null)
            .Select(e => (Key: _names.KeyFromVolumeName(e.Image), e.Size))
            .Where(e => e.Key is not null)
            .Select(e => new BackendVolume(e.Key!, e.Size))
            .OrderBy(v => v.Key, StringComparer.Ordinal)
            .ToList();
    }

    public async Task DeleteVolumeAsync(string key, CancellationToken cancellationToken)
    {
        BackendKeys.Require(key, "volume key");
        using var held = await _locks.AcquireAsync(VolumeLock(key), cancellationToken).ConfigureAwait(false);
        var image = _names.VolumeName(key);
        var what = $"rbd pool {PoolName}: delete volume {key}";
        var info = await InfoAsync(image, what, cancellationToken).ConfigureAwait(false);
        if (info is null)
        {
            return;
        }

        var snapshots = await SnapshotsAsync(image, what, cancellationToken).ConfigureAwait(false) ?? [];
        var blocking = snapshots.Where(s => !s.Name.StartsWith(CloneSnapshotPrefix, StringComparison.Ordinal)).Select(s => s.Name).ToList();
        if (blocking.Count > 0)
        {
            throw StatusException.FailedPrecondition(
                $"volume {key} has snapshots ({string.Join(", ", blocking)}) in rbd pool {PoolName}; RBD snapshots live inside the image, delete them first");
        }
        // Hidden snapshots made to clone this volume: those whose clone is gone or flattened are leftovers.
        foreach (var snapshot in snapshots)
        {
            var children = await ChildrenAsync(image, snapshot.Name, what, cancellationToken).ConfigureAwait(false);
            if (children.Count > 0)
            {
                throw StatusException.FailedPrecondition(
                    $"volume {key} has clones that depend on it in rbd pool {PoolName}: {string.Join(", ", children.Select(DescribeImage))}; "
                    + "they become independent once flattened (flatten=always, or delete them first)");
            }
            await RemoveSnapshotAsync(image, snapshot.Name, what, cancellationToken).ConfigureAwait(false);
        }

        var removed = await _cli.RbdAsync(what, ["rm", "--no-progress", _cli.ImageSpec(image)], cancellationToken, RbdCli.LongTimeout,
            RbdCli.ENOENT, RbdCli.EBUSY, RbdCli.ENOTEMPTY).ConfigureAwait(false);
        switch (removed.ExitCode)
        {
            case RbdCli.EBUSY:
                throw StatusException.FailedPrecondition(
                    $"volume {key} is still in use: the image {_cli.ImageSpec(image)} has watchers (mapped or opened by a client, or a client that crashed less than 30 s ago): {RbdCli.Tail(removed.StandardError)}");
            case RbdCli.ENOTEMPTY:
                throw StatusException.FailedPrecondition($"volume {key} has snapshots in rbd pool {PoolName}: {RbdCli.Tail(removed.StandardError)}");
        }

        // The hidden snapshot this clone was made from, if it still hangs on its parent.
        if (info.Parent is { } parent && parent.Snapshot == CloneSnapshotPrefix + key && SamePool(parent))
        {
            await RemoveSnapshotAsync(parent.Image, parent.Snapshot, what, cancellationToken).ConfigureAwait(false);
        }
        _logger.LogInformation("Deleted volume {Key} ({Image}) from rbd pool {Pool}", key, _cli.ImageSpec(image), PoolName);
    }

    public async Task<BackendVolume> ExpandVolumeAsync(string key, long sizeBytes, CancellationToken cancellationToken)
    {
        BackendKeys.Require(key, "volume key");
        using var held = await _locks.AcquireAsync(VolumeLock(key), cancellationToken).ConfigureAwait(false);
        var image = _names.VolumeName(key);
        var what = $"rbd pool {PoolName}: expand volume {key}";
        var info = await InfoAsync(image, what, cancellationToken).ConfigureAwait(false)
            ?? throw StatusException.NotFound($"volume {key} not found in rbd pool {PoolName}");
        var size = Sizes.RoundUp(sizeBytes, Granularity);
        if (size <= info.Size)
        {
            return new BackendVolume(key, info.Size);
        }
        await GrowAsync(image, info.Size, size, what, cancellationToken).ConfigureAwait(false);
        _logger.LogInformation("Expanded volume {Key} in rbd pool {Pool} from {OldBytes} to {Bytes} bytes", key, PoolName, info.Size, size);
        return new BackendVolume(key, size);
    }

    public async Task<BackendSnapshot> CreateSnapshotAsync(string volumeKey, string snapshotKey, CancellationToken cancellationToken)
    {
        BackendKeys.Require(volumeKey, "volume key");
        BackendKeys.Require(snapshotKey, "snapshot key");
        using var held = await _locks.AcquireAsync(VolumeLock(volumeKey), cancellationToken).ConfigureAwait(false);
        var image = _names.VolumeName(volumeKey);
        var name = SnapshotPrefix + snapshotKey;
        var what = $"rbd pool {PoolName}: snapshot {snapshotKey} of volume {volumeKey}";
        var snapshots = await SnapshotsAsync(image, what, cancellationToken).ConfigureAwait(false)
            ?? throw StatusException.NotFound($"volume {volumeKey} not found in rbd pool {PoolName}");
        var snapshot = snapshots.FirstOrDefault(s => s.Name == name);
        if (snapshot is null)
        {
            await EnsureRoomAsync(what, cancellationToken).ConfigureAwait(false);
        }
        if (snapshot is null || !snapshot.IsProtected)
        {
            snapshot = await EnsureSnapshotAsync(image, name, what, cancellationToken).ConfigureAwait(false);
            _logger.LogInformation("Created snapshot {SnapshotKey} of volume {VolumeKey} in rbd pool {Pool}", snapshotKey, volumeKey, PoolName);
        }
        return ToBackendSnapshot(volumeKey, snapshotKey, snapshot);
    }

    public async Task<BackendSnapshot?> GetSnapshotAsync(string volumeKey, string snapshotKey, CancellationToken cancellationToken)
    {
        BackendKeys.Require(volumeKey, "volume key");
        BackendKeys.Require(snapshotKey, "snapshot key");
        var snapshots = await SnapshotsAsync(_names.VolumeName(volumeKey), $"rbd pool {PoolName}: get snapshot {snapshotKey}", cancellationToken).ConfigureAwait(false);
        var snapshot = snapshots?.FirstOrDefault(s => s.Name == SnapshotPrefix + snapshotKey);
        return snapshot is null ? null : ToBackendSnapshot(volumeKey, snapshotKey, snapshot);
    }

    public async Task<IReadOnlyList<BackendSnapshot>> ListSnapshotsAsync(CancellationToken cancellationToken)
    {
        var entries = await ListLongAsync(cancellationToken).ConfigureAwait(false);
        // rbd ls -l has no timestamps: read the snapshot list of each image that has one of ours.
        var images = entries
            .Where(e => e.Snapshot is not null && e.Snapshot.StartsWith(SnapshotPrefix, StringComparison.Ordinal) && _names.KeyFromVolumeName(e.Image) is not null)
            .Select(e => e.Image)
            .Distinct(StringComparer.Ordinal)
            .ToList();
        var result = new List<BackendSnapshot>();
        foreach (var image in images)
        {
            var volumeKey = _names.KeyFromVolumeName(image)!;
            foreach (var snapshot in await SnapshotsAsync(image, $"rbd pool {PoolName}: list snapshots", cancellationToken).ConfigureAwait(false) ?? [])
            {
                var snapshotKey = snapshot.Name.StartsWith(SnapshotPrefix, StringComparison.Ordinal) ? snapshot.Name[SnapshotPrefix.Length..] : null;
                if (snapshotKey is not null && Names.IsValidKey(snapshotKey))
                {
                    result.Add(ToBackendSnapshot(volumeKey, snapshotKey, snapshot));
                }
            }
        }
        return result.OrderBy(s => s.SnapshotKey, StringComparer.Ordinal).ThenBy(s => s.VolumeKey, StringComparer.Ordinal).ToList();
    }

    public async Task DeleteSnapshotAsync(string volumeKey, string snapshotKey, CancellationToken cancellationToken)
    {
        BackendKeys.Require(volumeKey, "volume key");
        BackendKeys.Require(snapshotKey, "snapshot key");
        using var held = await _locks.AcquireAsync(VolumeLock(volumeKey), cancellationToken).ConfigureAwait(false);
        var image = _names.VolumeName(volumeKey);
        var name = SnapshotPrefix + snapshotKey;
        var what = $"rbd pool {PoolName}: delete snapshot {snapshotKey} of volume {volumeKey}";
        var children = await ChildrenAsync(image, name, what, cancellationToken).ConfigureAwait(false);
        if (children.Count > 0)
        {
            throw StatusException.FailedPrecondition(
                $"snapshot {snapshotKey} of volume {volumeKey} has clones in rbd pool {PoolName}: {string.Join(", ", children.Select(DescribeImage))}; "
                + "delete or flatten them first");
        }
        await RemoveSnapshotAsync(image, name, what, cancellationToken).ConfigureAwait(false);
        _logger.LogInformation("Deleted snapshot {SnapshotKey} of volume {VolumeKey} from rbd pool {Pool}", snapshotKey, volumeKey, PoolName);
    }

    /// <summary>Maps the image with krbd, or returns the device of an existing mapping (after an engine restart).</summary>
    public async Task<string> AttachAsync(string key, CancellationToken cancellationToken)
    {
        BackendKeys.Require(key, "volume key");
        using var held = await _locks.AcquireAsync(VolumeLock(key), cancellationToken).ConfigureAwait(false);
        var image = _names.VolumeName(key);
        var what = $"rbd pool {PoolName}: map volume {key}";
        var mapped = (await MappingsAsync(what, cancellationToken).ConfigureAwait(false)).FirstOrDefault(m => IsOurMapping(m, image));
        if (mapped is not null)
        {
            return mapped.Device;
        }
        if (await InfoAsync(image, what, cancellationToken).ConfigureAwait(false) is null)
        {
            throw StatusException.NotFound($"volume {key} not found in rbd pool {PoolName}");
        }
        var result = await _cli.RbdAsync(what, ["map", _cli.ImageSpec(image)], cancellationToken, tolerated: [RbdCli.ENOENT, RbdCli.ENXIO, RbdCli.EINVAL])
            .ConfigureAwait(false);
        if (result.ExitCode != 0)
        {
            if (result.StandardError.Contains("kernel module", StringComparison.Ordinal) || result.StandardError.Contains("modprobe", StringComparison.Ordinal))
            {
                throw StatusException.FailedPrecondition($"{what}: rbd map needs the kernel rbd module on this storage node: {RbdCli.Tail(result.StandardError)}");
            }
            if (result.StandardError.Contains("feature", StringComparison.OrdinalIgnoreCase))
            {
                throw StatusException.FailedPrecondition(
                    $"{what}: the kernel cannot map an image with features {string.Join(",", _options.Features)} (older kernels need features=layering): {RbdCli.Tail(result.StandardError)}");
            }
            throw _cli.Classify(what, result.ExitCode, result.StandardError, null);
        }
        var device = result.StandardOutput.Trim();
        if (!device.StartsWith("/dev/", StringComparison.Ordinal))
        {
            throw StatusException.Internal($"{what}: rbd map printed '{device}' instead of a device path");
        }
        _logger.LogInformation("Mapped volume {Key} ({Image}) at {Device}", key, _cli.ImageSpec(image), device);
        return device;
    }

    public async Task DetachAsync(string key, CancellationToken cancellationToken)
    {
        BackendKeys.Require(key, "volume key");
        using var held = await _locks.AcquireAsync(VolumeLock(key), cancellationToken).ConfigureAwait(false);
        var image = _names.VolumeName(key);
        var what = $"rbd pool {PoolName}: unmap volume {key}";
        foreach (var mapping in (await MappingsAsync(what, cancellationToken).ConfigureAwait(false)).Where(m => IsOurMapping(m, image)))
        {
            var result = await _cli.RbdAsync(what, ["unmap", mapping.Device], cancellationToken, tolerated: [RbdCli.EBUSY, RbdCli.EINVAL, RbdCli.ENOENT]).ConfigureAwait(false);
            if (result.ExitCode == RbdCli.EBUSY)
            {
                throw StatusException.FailedPrecondition($"{what}: {mapping.Device} is still in use (exported or open): {RbdCli.Tail(result.StandardError)}");
            }
            _logger.LogInformation("Unmapped volume {Key} from {Device}", key, mapping.Device);
        }
    }

    // ------------------------------------------------------------------ helpers

    private static string VolumeLock(string key) => "v/" + key;

    private bool SamePool(RbdParent parent) => parent.Pool == _options.Pool && parent.PoolNamespace == _options.Namespace;

    private bool IsOurMapping(RbdMapping mapping, string image) =>
        mapping.Pool == _options.Pool && mapping.Namespace == _options.Namespace && mapping.Name == image && mapping.Snap == "-";

    private static string DescribeImage(RbdChild child) =>
        (child.PoolNamespace.Length == 0 ? child.Pool : child.Pool + "/" + child.PoolNamespace) + "/" + child.Image;

    private static BackendSnapshot ToBackendSnapshot(string volumeKey, string snapshotKey, RbdSnapshotInfo snapshot) =>
        new(volumeKey, snapshotKey, snapshot.Size, RbdSnapshotInfo.ParseTimestamp(snapshot.Timestamp));

    private long TargetSize(CreateVolumeSpec spec, long sourceSize, string what)
    {
        var size = spec.SizeBytes <= 0 ? sourceSize : Sizes.RoundUp(spec.SizeBytes, Granularity);
        if (size < sourceSize)
        {
            throw StatusException.OutOfRange($"{what}: requested size {Sizes.Format(size)} is smaller than the source's {Sizes.Format(sourceSize)}");
        }
        return size;
    }

    private FlattenPolicy FlattenPolicyFor(CreateVolumeSpec spec)
    {
        if (!spec.Parameters.TryGetValue(FlattenParameter, out var text))
        {
            return _options.Flatten;
        }
        return FlattenPolicy.TryParse(text, out var policy)
            ? policy
            : throw StatusException.InvalidArgument($"parameter {FlattenParameter}='{text}' must be never, always or on-depth:N (N from 1 to 64)");
    }

    private async Task<RbdImageInfo?> InfoAsync(string image, string what, CancellationToken cancellationToken)
    {
        var result = await _cli.RbdAsync(what, ["info", "--format", "json", _cli.ImageSpec(image)], cancellationToken, tolerated: RbdCli.ENOENT).ConfigureAwait(false);
        return result.ExitCode == RbdCli.ENOENT ? null : Parse(result.StandardOutput, RbdJsonContext.Default.RbdImageInfo, "rbd info");
    }

    /// <summary>The image's snapshots, or null when the image does not exist.</summary>
    private async Task<List<RbdSnapshotInfo>?> SnapshotsAsync(string image, string what, CancellationToken cancellationToken)
    {
        var result = await _cli.RbdAsync(what, ["snap", "ls", "--format", "json", _cli.ImageSpec(image)], cancellationToken, tolerated: RbdCli.ENOENT).ConfigureAwait(false);
        return result.ExitCode == RbdCli.ENOENT ? null : ParseList(result.StandardOutput, RbdJsonContext.Default.ListRbdSnapshotInfo, "rbd snap ls");
    }

    private async Task<List<RbdChild>> ChildrenAsync(string image, string snapshot, string what, CancellationToken cancellationToken)
    {
        var result = await _cli.RbdAsync(what, ["children", "--format", "json", _cli.SnapshotSpec(image, snapshot)], cancellationToken, tolerated: RbdCli.ENOENT)
            .ConfigureAwait(false);
        return result.ExitCode == RbdCli.ENOENT ? [] : ParseList(result.StandardOutput, RbdJsonContext.Default.ListRbdChild, "rbd children");
    }

    private async Task<List<RbdListEntry>> ListLongAsync(CancellationToken cancellationToken)
    {
        var result = await _cli.RbdAsync($"rbd pool {PoolName}: list images", ["ls", "-l", "--format", "json", _cli.PoolSpec], cancellationToken).ConfigureAwait(false);
        return ParseList(result.StandardOutput, RbdJsonContext.Default.ListRbdListEntry, "rbd ls -l");
    }

    private async Task<List<RbdMapping>> MappingsAsync(string what, CancellationToken cancellationToken)
    {
        var result = await _cli.RbdAsync(what, ["showmapped", "--format", "json"], cancellationToken).ConfigureAwait(false);
        return ParseList(result.StandardOutput, RbdJsonContext.Default.ListRbdMapping, "rbd showmapped");
    }

    /// <summary>The pool's line of <c>ceph df detail</c>, or null when the manager does not list it (yet).</summary>
    private async Task<CephDfPoolStats?> PoolStatsAsync(string what, CancellationToken cancellationToken)
    {
        var result = await _cli.CephAsync(what, ["df", "detail", "--format", "json"], cancellationToken).ConfigureAwait(false);
        var df = Parse(result.StandardOutput, RbdJsonContext.Default.CephDf, "ceph df");
        return df.Pools.FirstOrDefault(p => p.Name == _options.Pool)?.Stats;
    }

    /// <summary>
    /// Writes to a full pool block in librados until space appears, so a create there would only time out:
    /// check first and say why, with the numbers.
    /// </summary>
    private async Task EnsureRoomAsync(string what, CancellationToken cancellationToken)
    {
        var pool = await PoolStatsAsync(what, cancellationToken).ConfigureAwait(false);
        if (pool is null)
        {
            // Not in the manager's statistics yet: rbd itself will say if the pool is missing.
            return;
        }
        if (pool.QuotaBytes > 0 && pool.Stored >= pool.QuotaBytes)
        {
            throw StatusException.ResourceExhausted(
                $"{what}: the Ceph pool {_options.Pool} is full: {Sizes.Format(pool.Stored)} stored of a quota of {Sizes.Format(pool.QuotaBytes)}");
        }
        if (pool.QuotaObjects > 0 && pool.Objects >= pool.QuotaObjects)
        {
            throw StatusException.ResourceExhausted(
                $"{what}: the Ceph pool {_options.Pool} is full: {pool.Objects} objects of a quota of {pool.QuotaObjects}");
        }
        if (pool.MaxAvailable <= 0)
        {
            throw StatusException.ResourceExhausted(
                $"{what}: the Ceph pool {_options.Pool} has no space left (max_avail 0 bytes, {Sizes.Format(pool.Stored)} stored): its OSDs are full");
        }
    }

    private async Task CreateImageAsync(string image, long size, string what, CancellationToken cancellationToken)
    {
        List<string> arguments = ["create", "--no-progress", "--size", size.ToString(CultureInfo.InvariantCulture) + "B"];
        AddImageOptions(arguments);
        arguments.Add(_cli.ImageSpec(image));
        var result = await _cli.RbdAsync(what, arguments, cancellationToken, tolerated: RbdCli.EEXIST).ConfigureAwait(false);
        if (result.ExitCode == RbdCli.EEXIST && await InfoAsync(image, what, cancellationToken).ConfigureAwait(false) is null)
        {
            // The name is taken but the image does not open: the remains of an interrupted create. Remove, retry once.
            _logger.LogWarning("Removing the unopenable remains of image {Image} before creating it again", _cli.ImageSpec(image));
            await _cli.RbdAsync(what, ["rm", "--no-progress", _cli.ImageSpec(image)], cancellationToken, RbdCli.LongTimeout, RbdCli.ENOENT).ConfigureAwait(false);
            await _cli.RbdAsync(what, arguments, cancellationToken).ConfigureAwait(false);
        }
    }

    private void AddImageOptions(List<string> arguments)
    {
        foreach (var feature in _options.Features)
        {
            arguments.Add("--image-feature");
            arguments.Add(feature);
        }
        if (_options.ObjectSize is { } objectSize)
        {
            arguments.Add("--object-size");
            arguments.Add(objectSize.ToString(CultureInfo.InvariantCulture) + "B");
        }
        if (_options.DataPool is not null)
        {
            arguments.Add("--data-pool");
            arguments.Add(_options.DataPool);
        }
    }

    private async Task CloneAsync(string parent, string snapshot, string image, string what, CancellationToken cancellationToken)
    {
        List<string> arguments = ["clone"];
        AddImageOptions(arguments);
        arguments.Add(_cli.SnapshotSpec(parent, snapshot));
        arguments.Add(_cli.ImageSpec(image));
        var result = await _cli.RbdAsync(what, arguments, cancellationToken, tolerated: [RbdCli.EEXIST, RbdCli.ENOENT]).ConfigureAwait(false);
        if (result.ExitCode == RbdCli.ENOENT)
        {
            throw StatusException.NotFound($"{what}: the source {_cli.SnapshotSpec(parent, snapshot)} disappeared: {RbdCli.Tail(result.StandardError)}");
        }
    }

    private async Task GrowAsync(string image, long current, long size, string what, CancellationToken cancellationToken)
    {
        if (size <= current)
        {
            return;
        }
        await _cli.RbdAsync(what, ["resize", "--no-progress", "--size", size.ToString(CultureInfo.InvariantCulture) + "B", _cli.ImageSpec(image)], cancellationToken)
            .ConfigureAwait(false);
    }

    /// <summary>Creates (if missing) and protects a snapshot; returns it as rbd reports it.</summary>
    private async Task<RbdSnapshotInfo> EnsureSnapshotAsync(string image, string name, string what, CancellationToken cancellationToken)
    {
        var create = await _cli.RbdAsync(what, ["snap", "create", "--no-progress", _cli.SnapshotSpec(image, name)], cancellationToken,
            tolerated: [RbdCli.EEXIST, RbdCli.ENOENT]).ConfigureAwait(false);
        if (create.ExitCode == RbdCli.ENOENT)
        {
            throw StatusException.NotFound($"{what}: the image {_cli.ImageSpec(image)} does not exist");
        }
        await ProtectAsync(image, name, what, cancellationToken).ConfigureAwait(false);
        var snapshot = (await SnapshotsAsync(image, what, cancellationToken).ConfigureAwait(false))?.FirstOrDefault(s => s.Name == name);
        return snapshot ?? throw StatusException.Internal($"{what}: {_cli.SnapshotSpec(image, name)} vanished right after it was created");
    }

    /// <summary>Clones need a protected snapshot (clone format 1, and clear dependencies for format 2).</summary>
    private async Task ProtectAsync(string image, string name, string what, CancellationToken cancellationToken)
    {
        // EBUSY: already protected.
        await _cli.RbdAsync(what, ["snap", "protect", _cli.SnapshotSpec(image, name)], cancellationToken, tolerated: RbdCli.EBUSY).ConfigureAwait(false);
    }

    /// <summary>Unprotects and removes a snapshot; gone already is fine, clones depending on it are FAILED_PRECONDITION.</summary>
    private async Task RemoveSnapshotAsync(string image, string name, string what, CancellationToken cancellationToken)
    {
        var unprotect = await _cli.RbdAsync(what, ["snap", "unprotect", _cli.SnapshotSpec(image, name)], cancellationToken,
            tolerated: [RbdCli.ENOENT, RbdCli.EINVAL, RbdCli.EBUSY]).ConfigureAwait(false);
        if (unprotect.ExitCode == RbdCli.EBUSY)
        {
            throw StatusException.FailedPrecondition($"{what}: {_cli.SnapshotSpec(image, name)} still has clones: {RbdCli.Tail(unprotect.StandardError)}");
        }
        if (unprotect.ExitCode == RbdCli.ENOENT)
        {
            return;
        }
        await _cli.RbdAsync(what, ["snap", "rm", "--no-progress", _cli.SnapshotSpec(image, name)], cancellationToken, tolerated: RbdCli.ENOENT).ConfigureAwait(false);
    }

    /// <summary>Applies the flatten policy to a clone; after a flatten, a hidden clone snapshot of the parent is removed.</summary>
    private async Task FlattenIfDueAsync(string image, RbdImageInfo info, FlattenPolicy policy, string what, CancellationToken cancellationToken)
    {
        if (info.Parent is not { } parent)
        {
            return;
        }
        var flatten = policy.When switch
        {
            FlattenPolicy.Mode.Always => true,
            FlattenPolicy.Mode.Never => false,
            _ => await DepthAsync(info, what, cancellationToken).ConfigureAwait(false) > policy.Depth,
        };
        if (!flatten)
        {
            return;
        }
        _logger.LogInformation("Flattening {Image} (clone of {Parent}@{Snapshot}, policy {Policy})", _cli.ImageSpec(image), parent.Image, parent.Snapshot, policy);
        await _cli.RbdAsync(what, ["flatten", "--no-progress", _cli.ImageSpec(image)], cancellationToken, RbdCli.LongTimeout).ConfigureAwait(false);
        if (SamePool(parent) && parent.Snapshot == CloneSnapshotPrefix + _names.KeyFromVolumeName(image))
        {
            await RemoveSnapshotAsync(parent.Image, parent.Snapshot, what, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>How many images stand between this clone and a non-clone (a direct clone of a plain image: 1).</summary>
    private async Task<int> DepthAsync(RbdImageInfo info, string what, CancellationToken cancellationToken)
    {
        var depth = 0;
        var current = info;
        while (current.Parent is { } parent && depth < MaxChainWalk)
        {
            depth++;
            if (!SamePool(parent))
            {
                break;
            }
            current = await InfoAsync(parent.Image, what, cancellationToken).ConfigureAwait(false) ?? new RbdImageInfo();
        }
        return depth;
    }

    private static T Parse<T>(string text, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type, string what)
    {
        try
        {
            return RbdJsonContext.Parse(text, type, what);
        }
        catch (FormatException e)
        {
            throw StatusException.Internal(e.Message, e);
        }
    }

    private static List<T> ParseList<T>(string text, System.Text.Json.Serialization.Metadata.JsonTypeInfo<List<T>> type, string what)
    {
        try
        {
            return RbdJsonContext.ParseList(text, type, what);
        }
        catch (FormatException e)
        {
            throw StatusException.Internal(e.Message, e);
        }
    }
}
