using System.Globalization;
using CsiScst.Backends.Pools;
using CsiScst.Core.Errors;
using CsiScst.Core.Files;
using CsiScst.Core.Ids;
using CsiScst.Core.Locking;
using CsiScst.Core.Metrics;
using Microsoft.Extensions.Logging;

namespace CsiScst.Backends.File;

/// <summary>
/// Volumes as sparse files in one directory: <c>csi-&lt;i&gt;-&lt;k&gt;.img</c>, snapshots in
/// <c>snapshots/csi-&lt;i&gt;-&lt;k&gt;-snap-&lt;s&gt;.img</c>. Snapshots and clones are reflinks where the
/// filesystem has them (XFS with reflink=1, btrfs) and sparse copies otherwise; either way they are
/// independent files, so a volume with snapshots may be deleted and its snapshots stay restorable.
/// Every new file is written under a temp name, flushed and renamed, so a file with the final name is
/// always complete; temp leftovers of a crash are removed at start-up and by the retry.
/// One engine process per directory.
/// </summary>
public sealed class FileBackend : IStorageBackend
{
    internal const UnixFileMode FileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode DirectoryMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    private const string Extension = ".img";
    private const string TempExtension = ".tmp";
    private const string SnapshotDirectoryName = "snapshots";
    private const long MinimumGranularity = 4096;

    private enum ReflinkSupport
    {
        Unknown,
        Supported,
        Unsupported,
    }

    private readonly FilePoolOptions _options;
    private readonly ObjectNames _names;
    private readonly ExternalTime _externalTime;
    private readonly ILogger<FileBackend> _logger;
    private readonly string _directory;
    private readonly string _snapshotDirectory;
    private readonly KeyedLocks _locks = new();
    // Serializes "is there room?" + "take it" so two creates cannot both take the last free bytes.
    private readonly SemaphoreSlim _spaceGate = new(1, 1);
    private readonly SemaphoreSlim _initGate = new(1, 1);
    private long _reserved;
    private volatile bool _initialized;
    private long _granularity = MinimumGranularity;
    private volatile ReflinkSupport _reflink = ReflinkSupport.Unknown;

    public FileBackend(FilePoolOptions options, ObjectNames names, ExternalTime externalTime, ILogger<FileBackend> logger)
    {
        if (!Path.IsPathRooted(options.Path))
        {
            throw StatusException.InvalidArgument($"pool {options.Name}: path '{options.Path}' must be absolute");
        }
        _options = options;
        _names = names;
        _externalTime = externalTime;
        _logger = logger;
        _directory = Path.GetFullPath(options.Path);
        _snapshotDirectory = Path.Combine(_directory, SnapshotDirectoryName);
    }

    public string Kind => FilePoolOptions.Kind;
    public string PoolName => _options.Name;
    public bool IsFileBacked => true;

    /// <summary>The directory this pool keeps its files in.</summary>
    public string Directory => _directory;

    public BackendFeatures Features => new(Thin: true, Snapshots: true, Clones: true);

    public async Task<BackendHealth> ProbeAsync(CancellationToken cancellationToken)
    {
        try
        {
            await EnsureInitializedAsync(cancellationToken).ConfigureAwait(false);
            // Writable and not full: create, flush and remove a small file.
            var probe = Path.Combine(_directory, $".{_names.VolumePrefix}probe{TempExtension}");
            await using (var stream = new FileStream(probe, new FileStreamOptions { Mode = System.IO.FileMode.Create, Access = FileAccess.Write, UnixCreateMode = FileMode }))
            {
                await stream.WriteAsync(new byte[512], cancellationToken).ConfigureAwait(false);
                stream.Flush(flushToDisk: true);
            }
            System.IO.File.Delete(probe);
            return BackendHealth.Healthy;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or StatusException)
        {
            return BackendHealth.NotReady($"file pool {PoolName} at {_directory}: {e.Message}");
        }
    }

    public async Task<long> GetGranularityAsync(CancellationToken cancellationToken)
    {
        await EnsureInitializedAsync(cancellationToken).ConfigureAwait(false);
        return _granularity;
    }

    public async Task<PoolCapacity> GetCapacityAsync(CancellationToken cancellationToken)
    {
        await EnsureInitializedAsync(cancellationToken).ConfigureAwait(false);
        var space = Guard(ComputeSpace);
        return new PoolCapacity(space.Filesystem.TotalBytes, space.Available, space.Available);
    }

    public async Task<BackendVolume> CreateVolumeAsync(CreateVolumeSpec spec, CancellationToken cancellationToken)
    {
        BackendKeys.Require(spec.Key, "volume key");
        await EnsureInitializedAsync(cancellationToken).ConfigureAwait(false);
        using var held = await _locks.AcquireAsync(VolumeLock(spec.Key), cancellationToken).ConfigureAwait(false);
        var path = VolumePath(spec.Key);
        if (Guard(() => FileNative.Stat(path)) is { } existing)
        {
            return new BackendVolume(spec.Key, existing.Size);
        }
        var temp = TempPath(path);
        DeleteQuietly(temp);

        string? source = null;
        string what;
        switch (spec.Source)
        {
            case null:
                what = $"volume {spec.Key}";
                break;
            case FromSnapshotSource snapshot:
                BackendKeys.Require(snapshot.VolumeKey, "source volume key");
                BackendKeys.Require(snapshot.SnapshotKey, "source snapshot key");
                source = SnapshotPath(snapshot.VolumeKey, snapshot.SnapshotKey);
                what = $"volume {spec.Key} from snapshot {snapshot.SnapshotKey}";
                break;
            case FromVolumeSource volume:
                BackendKeys.Require(volume.VolumeKey, "source volume key");
                source = VolumePath(volume.VolumeKey);
                what = $"volume {spec.Key} cloned from volume {volume.VolumeKey}";
                break;
            default:
                throw StatusException.InvalidArgument($"unsupported volume source {spec.Source.GetType().Name}");
        }

        long size;
        if (source is null)
        {
            size = Sizes.RoundUp(spec.SizeBytes, _granularity);
            if (size <= 0)
            {
                throw StatusException.InvalidArgument($"volume {spec.Key}: size {spec.SizeBytes} must be positive");
            }
            using (await ReserveAsync(size, what, cancellationToken).ConfigureAwait(false))
            {
                Guard(() => CreateSparse(temp, size));
                Guard(() => Publish(temp, path));
            }
        }
        else
        {
            var sourceStats = Guard(() => FileNative.Stat(source)) ?? throw SourceNotFound(spec.Source!);
            size = spec.SizeBytes <= 0 ? sourceStats.Size : Sizes.RoundUp(spec.SizeBytes, _granularity);
            if (size < sourceStats.Size)
            {
                throw StatusException.OutOfRange(
                    $"{what}: requested size {Sizes.Format(size)} is smaller than the source's {Sizes.Format(sourceStats.Size)}");
            }
            using (await ReserveAsync(size, what, cancellationToken).ConfigureAwait(false))
            {
                await CopyAsync(source, temp, size, what, cancellationToken).ConfigureAwait(false);
                Guard(() => Publish(temp, path));
            }
        }
        _logger.LogInformation("Created {Volume} ({Bytes} bytes) in file pool {Pool}", what, size, PoolName);
        return new BackendVolume(spec.Key, size, spec.Source);
    }

    public async Task<BackendVolume?> GetVolumeAsync(string key, CancellationToken cancellationToken)
    {
        BackendKeys.Require(key, "volume key");
        await EnsureInitializedAsync(cancellationToken).ConfigureAwait(false);
        var stats = Guard(() => FileNative.Stat(VolumePath(key)));
        return stats is { } s ? new BackendVolume(key, s.Size) : null;
    }

    public async Task<IReadOnlyList<BackendVolume>> ListVolumesAsync(CancellationToken cancellationToken)
    {
        await EnsureInitializedAsync(cancellationToken).ConfigureAwait(false);
        return Guard(() =>
        {
            var volumes = new List<BackendVolume>();
            foreach (var path in System.IO.Directory.EnumerateFiles(_directory, _names.VolumePrefix + "*" + Extension))
            {
                var key = _names.KeyFromVolumeName(Path.GetFileNameWithoutExtension(path));
                if (key is not null && FileNative.Stat(path) is { } stats)
                {
                    volumes.Add(new BackendVolume(key, stats.Size));
                }
            }
            volumes.Sort((a, b) => string.CompareOrdinal(a.Key, b.Key));
            return volumes;
        });
    }

    /// <summary>
    /// Deletes the file. Snapshots do not block it: they are independent files (CSI lets snapshots outlive
    /// their source, and restoring one must keep working after the PVC is gone).
    /// </summary>
    public async Task DeleteVolumeAsync(string key, CancellationToken cancellationToken)
    {
        BackendKeys.Require(key, "volume key");
        await EnsureInitializedAsync(cancellationToken).ConfigureAwait(false);
        using var held = await _locks.AcquireAsync(VolumeLock(key), cancellationToken).ConfigureAwait(false);
        var path = VolumePath(key);
        Guard(() =>
        {
            DeleteQuietly(TempPath(path));
            AtomicFile.Delete(path);
        });
        _logger.LogInformation("Deleted volume {Key} from file pool {Pool}", key, PoolName);
    }

    public async Task<BackendVolume> ExpandVolumeAsync(string key, long sizeBytes, CancellationToken cancellationToken)
    {
        BackendKeys.Require(key, "volume key");
        await EnsureInitializedAsync(cancellationToken).ConfigureAwait(false);
        using var held = await _locks.AcquireAsync(VolumeLock(key), cancellationToken).ConfigureAwait(false);
        var path = VolumePath(key);
        var current = Guard(() => FileNative.Stat(path)) ?? throw StatusException.NotFound($"volume {key} not found in file pool {PoolName}");
        var size = Sizes.RoundUp(sizeBytes, _granularity);
        if (size <= current.Size)
        {
            return new BackendVolume(key, current.Size);
        }
        using (await ReserveAsync(size - current.Size, $"expansion of volume {key} to {Sizes.Format(size)}", cancellationToken).ConfigureAwait(false))
        {
            Guard(() =>
            {
                using var handle = System.IO.File.OpenHandle(path, System.IO.FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite);
                RandomAccess.SetLength(handle, size);
                FileNative.FSync(handle, path);
            });
        }
        _logger.LogInformation("Expanded volume {Key} in file pool {Pool} from {OldBytes} to {Bytes} bytes", key, PoolName, current.Size, size);
        return new BackendVolume(key, size);
    }

    public async Task<BackendSnapshot> CreateSnapshotAsync(string volumeKey, string snapshotKey, CancellationToken cancellationToken)
    {
        BackendKeys.Require(volumeKey, "volume key");
        BackendKeys.Require(snapshotKey, "snapshot key");
        await EnsureInitializedAsync(cancellationToken).ConfigureAwait(false);
        using var held = await _locks.AcquireAsync(SnapshotLock(volumeKey, snapshotKey), cancellationToken).ConfigureAwait(false);
        var path = SnapshotPath(volumeKey, snapshotKey);
        if (Guard(() => FileNative.Stat(path)) is { } existing)
        {
            return new BackendSnapshot(volumeKey, snapshotKey, existing.Size, existing.Created);
        }
        var source = VolumePath(volumeKey);
        var sourceStats = Guard(() => FileNative.Stat(source))
            ?? throw StatusException.NotFound($"volume {volumeKey} not found in file pool {PoolName}");
        var temp = TempPath(path);
        DeleteQuietly(temp);
        var what = $"snapshot {snapshotKey} of volume {volumeKey}";
        // A snapshot holds the volume's current blocks (shared or copied); count them as taken.
        using (await ReserveAsync(sourceStats.AllocatedBytes, what, cancellationToken).ConfigureAwait(false))
        {
            await CopyAsync(source, temp, sourceStats.Size, what, cancellationToken).ConfigureAwait(false);
            Guard(() => Publish(temp, path));
        }
        var stats = Guard(() => FileNative.Stat(path)) ?? throw StatusException.Internal($"{what} vanished right after it was created at {path}");
        _logger.LogInformation("Created {Snapshot} ({Bytes} bytes) in file pool {Pool}", what, stats.Size, PoolName);
        return new BackendSnapshot(volumeKey, snapshotKey, stats.Size, stats.Created);
    }

    public async Task<BackendSnapshot?> GetSnapshotAsync(string volumeKey, string snapshotKey, CancellationToken cancellationToken)
    {
        BackendKeys.Require(volumeKey, "volume key");
        BackendKeys.Require(snapshotKey, "snapshot key");
        await EnsureInitializedAsync(cancellationToken).ConfigureAwait(false);
        var stats = Guard(() => FileNative.Stat(SnapshotPath(volumeKey, snapshotKey)));
        return stats is { } s ? new BackendSnapshot(volumeKey, snapshotKey, s.Size, s.Created) : null;
    }

    public async Task<IReadOnlyList<BackendSnapshot>> ListSnapshotsAsync(CancellationToken cancellationToken)
    {
        await EnsureInitializedAsync(cancellationToken).ConfigureAwait(false);
        return Guard(() =>
        {
            var snapshots = new List<BackendSnapshot>();
            foreach (var path in System.IO.Directory.EnumerateFiles(_snapshotDirectory, _names.VolumePrefix + "*" + Extension))
            {
                if (ParseSnapshotName(Path.GetFileNameWithoutExtension(path)) is { } keys && FileNative.Stat(path) is { } stats)
                {
                    snapshots.Add(new BackendSnapshot(keys.VolumeKey, keys.SnapshotKey, stats.Size, stats.Created));
                }
            }
            snapshots.Sort((a, b) => string.CompareOrdinal(a.SnapshotKey, b.SnapshotKey) is var c && c != 0 ? c : string.CompareOrdinal(a.VolumeKey, b.VolumeKey));
            return snapshots;
        });
    }

    /// <summary>Clones made from a snapshot are independent files, so nothing ever blocks this.</summary>
    public async Task DeleteSnapshotAsync(string volumeKey, string snapshotKey, CancellationToken cancellationToken)
    {
        BackendKeys.Require(volumeKey, "volume key");
        BackendKeys.Require(snapshotKey, "snapshot key");
        await EnsureInitializedAsync(cancellationToken).ConfigureAwait(false);
        using var held = await _locks.AcquireAsync(SnapshotLock(volumeKey, snapshotKey), cancellationToken).ConfigureAwait(false);
        var path = SnapshotPath(volumeKey, snapshotKey);
        Guard(() =>
        {
            DeleteQuietly(TempPath(path));
            AtomicFile.Delete(path);
        });
        _logger.LogInformation("Deleted snapshot {SnapshotKey} of volume {VolumeKey} from file pool {Pool}", snapshotKey, volumeKey, PoolName);
    }

    public async Task<string> AttachAsync(string key, CancellationToken cancellationToken)
    {
        BackendKeys.Require(key, "volume key");
        await EnsureInitializedAsync(cancellationToken).ConfigureAwait(false);
        var path = VolumePath(key);
        if (Guard(() => FileNative.Stat(path)) is null)
        {
            throw StatusException.NotFound($"volume {key} not found in file pool {PoolName} (no {path})");
        }
        return path;
    }

    public Task DetachAsync(string key, CancellationToken cancellationToken)
    {
        BackendKeys.Require(key, "volume key");
        return Task.CompletedTask;
    }

    internal string VolumePath(string key) => Path.Combine(_directory, _names.VolumeName(key) + Extension);

    internal string SnapshotPath(string volumeKey, string snapshotKey) =>
        Path.Combine(_snapshotDirectory, _names.SnapshotName(volumeKey, snapshotKey) + Extension);

    /// <summary>Deterministic, so a retry finds and removes the leftover of the attempt it repeats.</summary>
    internal static string TempPath(string path) =>
        Path.Combine(Path.GetDirectoryName(path)!, "." + Path.GetFileName(path) + TempExtension);

    private static string VolumeLock(string key) => "v/" + key;
    private static string SnapshotLock(string volumeKey, string snapshotKey) => "s/" + volumeKey + "/" + snapshotKey;

    private (string VolumeKey, string SnapshotKey)? ParseSnapshotName(string name)
    {
        const string marker = "-snap-";
        if (!name.StartsWith(_names.VolumePrefix, StringComparison.Ordinal))
        {
            return null;
        }
        var rest = name[_names.VolumePrefix.Length..];
        if (rest.Length != Names.KeyLength * 2 + marker.Length || !rest.AsSpan(Names.KeyLength).StartsWith(marker, StringComparison.Ordinal))
        {
            return null;
        }
        var volumeKey = rest[..Names.KeyLength];
        var snapshotKey = rest[(Names.KeyLength + marker.Length)..];
        return Names.IsValidKey(volumeKey) && Names.IsValidKey(snapshotKey) ? (volumeKey, snapshotKey) : null;
    }

    private StatusException SourceNotFound(VolumeSourceSpec source) => source switch
    {
        FromSnapshotSource s => StatusException.NotFound($"snapshot {s.SnapshotKey} of volume {s.VolumeKey} not found in file pool {PoolName}"),
        FromVolumeSource v => StatusException.NotFound($"source volume {v.VolumeKey} not found in file pool {PoolName}"),
        _ => StatusException.NotFound($"source not found in file pool {PoolName}"),
    };

    private async Task EnsureInitializedAsync(CancellationToken cancellationToken)
    {
        if (_initialized)
        {
            return;
        }
        await _initGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_initialized)
            {
                return;
            }
            if (!System.IO.Directory.Exists(_directory))
            {
                if (!_options.Create)
                {
                    throw StatusException.Unavailable($"file pool {PoolName}: directory {_directory} does not exist (create=false: is its filesystem mounted?)");
                }
                Guard(() => System.IO.Directory.CreateDirectory(_directory, DirectoryMode));
            }
            if (!System.IO.Directory.Exists(_snapshotDirectory))
            {
                Guard(() => System.IO.Directory.CreateDirectory(_snapshotDirectory, DirectoryMode));
            }
            var fs = Guard(() => FileNative.StatFs(_directory));
            _granularity = Math.Max(MinimumGranularity, fs.BlockSize);
            Guard(SweepLeftovers);
            DetectReflink(fs);
            _initialized = true;
        }
        finally
        {
            _initGate.Release();
        }
    }

    /// <summary>Temp files of copies or creates a crash interrupted. Only at start-up: nothing of ours runs yet.</summary>
    private void SweepLeftovers()
    {
        var pattern = "." + _names.VolumePrefix + "*" + TempExtension;
        var removed = 0;
        foreach (var directory in new[] { _directory, _snapshotDirectory })
        {
            foreach (var path in System.IO.Directory.EnumerateFiles(directory, pattern))
            {
                System.IO.File.Delete(path);
                removed++;
            }
        }
        if (removed > 0)
        {
            _logger.LogInformation("Removed {Count} unfinished temp files of earlier attempts in file pool {Pool} at {Directory}", removed, PoolName, _directory);
        }
    }

    /// <summary>Tries FICLONE on two small files once, so the pool says at start-up how it will copy.</summary>
    private void DetectReflink(FileNative.FsStats fs)
    {
        var a = Path.Combine(_directory, $".{_names.VolumePrefix}reflink-a{TempExtension}");
        var b = Path.Combine(_directory, $".{_names.VolumePrefix}reflink-b{TempExtension}");
        try
        {
            using (var stream = new FileStream(a, new FileStreamOptions { Mode = System.IO.FileMode.Create, Access = FileAccess.Write, UnixCreateMode = FileMode }))
            {
                stream.Write(new byte[4096]);
            }
            FileCopier.Copy(a, b, 4096, tryReflink: true, reflinkOnly: false, out var errno, CancellationToken.None);
            NoteReflink(errno == 0, errno, fs);
        }
        catch (IOException e)
        {
            _logger.LogWarning("File pool {Pool}: could not test reflink support at {Directory}: {Error}", PoolName, _directory, e.Message);
        }
        finally
        {
            DeleteQuietly(a);
            DeleteQuietly(b);
        }
    }

    private void NoteReflink(bool supported, int errno, FileNative.FsStats? fs = null)
    {
        var state = supported ? ReflinkSupport.Supported : ReflinkSupport.Unsupported;
        if (_reflink == state)
        {
            return;
        }
        _reflink = state;
        var fsName = (fs ?? Guard(() => FileNative.StatFs(_directory))).FsName;
        if (supported)
        {
            _logger.LogInformation("File pool {Pool} at {Directory} ({Filesystem}): clones and snapshots are reflinks (shared extents, instant)",
                PoolName, _directory, fsName);
        }
        else
        {
            _logger.LogWarning("File pool {Pool} at {Directory} ({Filesystem}) has no reflink ({Reason}): clones and snapshots are full sparse copies, "
                + "which take time and space and are not point-in-time while the source is written; use XFS with reflink=1 or btrfs for instant ones",
                PoolName, _directory, fsName, System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage(errno));
        }
    }

    private async Task CopyAsync(string source, string temp, long size, string what, CancellationToken cancellationToken)
    {
        var reflinkOnly = _options.Reflink == ReflinkMode.Always;
        if (reflinkOnly && _reflink == ReflinkSupport.Unsupported)
        {
            throw ReflinkRequired(what);
        }
        var tryReflink = _reflink != ReflinkSupport.Unsupported;
        FileCopier.Outcome outcome;
        int errno;
        try
        {
            using (_externalTime.Measure())
            {
                (outcome, errno) = await Task.Run(() =>
                {
                    var result = FileCopier.Copy(source, temp, size, tryReflink, reflinkOnly, out var e, cancellationToken);
                    return (result, e);
                }, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (FileNotFoundException)
        {
            DeleteQuietly(temp);
            throw StatusException.NotFound($"{what}: the source disappeared while it was being copied");
        }
        catch (NotSupportedException)
        {
            DeleteQuietly(temp);
            NoteReflink(false, FileNative.EOPNOTSUPP);
            throw ReflinkRequired(what);
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or UnauthorizedAccessException)
        {
            DeleteQuietly(temp);
            if (e is IOException io && FileNative.IsOutOfSpace(io))
            {
                throw OutOfSpace(what, io);
            }
            if (e is OperationCanceledException)
            {
                throw;
            }
            throw StatusException.Internal($"file pool {PoolName}: {what}: {e.Message}", e);
        }
        if (tryReflink)
        {
            NoteReflink(outcome == FileCopier.Outcome.Reflinked, errno);
        }
    }

    private StatusException ReflinkRequired(string what) =>
        StatusException.FailedPrecondition(
            $"file pool {PoolName}: {what} needs a reflink (reflink=always) but the filesystem at {_directory} does not support it");

    private static void CreateSparse(string path, long size)
    {
        using var stream = new FileStream(path, new FileStreamOptions
        {
            Mode = System.IO.FileMode.CreateNew,
            Access = FileAccess.Write,
            UnixCreateMode = FileMode,
        });
        stream.SetLength(size);
        stream.Flush(flushToDisk: true);
    }

    /// <summary>The final name appears only for a complete, flushed file; the directory entry is made durable.</summary>
    private static void Publish(string temp, string path)
    {
        System.IO.File.Move(temp, path, overwrite: false);
        AtomicFile.SyncDirectory(Path.GetDirectoryName(path)!);
    }

    private static void DeleteQuietly(string path)
    {
        try
        {
            System.IO.File.Delete(path);
        }
        catch (DirectoryNotFoundException)
        {
        }
    }

    // ------------------------------------------------------------------ space

    private readonly record struct Space(FileNative.FsStats Filesystem, long Committed, long UsedByOthers, long Limit, long Available);

    /// <summary>
    /// What a new volume may take: the filesystem (times the overcommit ratio) minus what others use minus
    /// what our volumes were promised (logical sizes: sparse files grow into them) minus snapshot blocks minus
    /// space reserved by operations in flight. Shared reflink extents are counted once per file in both our
    /// allocation and our commitment, which cancels out against statfs counting them once.
    /// </summary>
    private Space ComputeSpace()
    {
        var fs = FileNative.StatFs(_directory);
        long allocated = 0;
        long committed = 0;
        var tempPrefix = "." + _names.VolumePrefix;
        foreach (var (directory, isSnapshot) in new[] { (_directory, false), (_snapshotDirectory, true) })
        {
            foreach (var path in System.IO.Directory.EnumerateFiles(directory))
            {
                var name = Path.GetFileName(path);
                var ours = name.StartsWith(_names.VolumePrefix, StringComparison.Ordinal) && name.EndsWith(Extension, StringComparison.Ordinal);
                var temp = name.StartsWith(tempPrefix, StringComparison.Ordinal) && name.EndsWith(TempExtension, StringComparison.Ordinal);
                if ((!ours && !temp) || FileNative.Stat(path) is not { } stats)
                {
                    continue;
                }
                allocated += stats.AllocatedBytes;
                if (ours)
                {
                    committed += isSnapshot ? stats.AllocatedBytes : stats.Size;
                }
            }
        }
        var usedByOthers = Math.Max(0, fs.TotalBytes - fs.AvailableBytes - allocated);
        var limit = (long)Math.Min(long.MaxValue / 2, fs.TotalBytes * _options.Overcommit);
        var available = Math.Max(0, limit - usedByOthers - committed - Interlocked.Read(ref _reserved));
        return new Space(fs, committed, usedByOthers, limit, available);
    }

    private async Task<IDisposable> ReserveAsync(long bytes, string what, CancellationToken cancellationToken)
    {
        await _spaceGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var space = Guard(ComputeSpace);
            if (bytes > space.Available)
            {
                throw StatusException.ResourceExhausted(
                    $"file pool {PoolName}: {what} needs {Sizes.Format(bytes)} but only {Sizes.Format(space.Available)} are available "
                    + $"(filesystem at {_directory}: {Sizes.Format(space.Filesystem.TotalBytes)} total, {Sizes.Format(space.Filesystem.AvailableBytes)} free; "
                    + $"promised to our volumes and snapshots: {Sizes.Format(space.Committed)}; used by other files: {Sizes.Format(space.UsedByOthers)}; "
                    + $"overcommit {_options.Overcommit.ToString(CultureInfo.InvariantCulture)})");
            }
            Interlocked.Add(ref _reserved, bytes);
            return new Reservation(this, bytes);
        }
        finally
        {
            _spaceGate.Release();
        }
    }

    private sealed class Reservation(FileBackend owner, long bytes) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                Interlocked.Add(ref owner._reserved, -bytes);
            }
        }
    }

    private StatusException OutOfSpace(string what, IOException e)
    {
        var fs = FileNative.StatFs(_directory);
        return StatusException.ResourceExhausted(
            $"file pool {PoolName}: {what}: the filesystem at {_directory} ran out of space ({Sizes.Format(fs.AvailableBytes)} free of {Sizes.Format(fs.TotalBytes)}): {e.Message}");
    }

    /// <summary>Turns file-system failures into statuses: a vanished directory is UNAVAILABLE, a full one RESOURCE_EXHAUSTED.</summary>
    private T Guard<T>(Func<T> action)
    {
        try
        {
            return action();
        }
        catch (DirectoryNotFoundException e)
        {
            throw StatusException.Unavailable($"file pool {PoolName}: directory {_directory} is missing: {e.Message}", e);
        }
        catch (IOException e) when (FileNative.IsOutOfSpace(e))
        {
            throw OutOfSpace("write", e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw StatusException.Internal($"file pool {PoolName} at {_directory}: {e.Message}", e);
        }
    }

    private void Guard(Action action) => Guard(() =>
    {
        action();
        return 0;
    });
}
