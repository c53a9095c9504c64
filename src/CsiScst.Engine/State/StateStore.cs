using System.Text.Json;
using CsiScst.Core.Errors;
using CsiScst.Core.Files;
using CsiScst.Core.Ids;
using Microsoft.Extensions.Logging;

namespace CsiScst.Engine.State;

/// <summary>
/// The engine's durable desired state: one JSON file per volume (volumes/&lt;key&gt;.json) and per snapshot
/// (snapshots/&lt;snapshot-key&gt;.json), written atomically (AtomicFile: temp, fsync, rename, fsync dir) with
/// mode 0600, so every write is O(1) in the number of volumes and a kill -9 leaves either the old or the new
/// file. An in-memory index, loaded once at start-up, answers every read. A file that cannot be read is
/// quarantined, never deleted: its key stays reserved so reconcile never removes that volume's export, and
/// calls on it fail with INTERNAL naming the file.
/// Callers serialize writes per key (the service's key locks); the index itself is thread-safe.
/// </summary>
public sealed class StateStore
{
    private const UnixFileMode DirectoryMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    private readonly ILogger<StateStore> _logger;
    private readonly TimeProvider _time;
    private readonly Lock _gate = new();
    private readonly SortedIndex<VolumeRecord> _volumes = new();
    private readonly SortedIndex<SnapshotRecord> _snapshots = new();
    private readonly Dictionary<string, string> _quarantinedVolumes = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _quarantinedSnapshots = new(StringComparer.Ordinal);

    public StateStore(EngineOptions options, ILogger<StateStore> logger, TimeProvider? time = null)
    {
        Directory = options.StateDirectory;
        VolumesDirectory = Path.Combine(options.StateDirectory, "volumes");
        SnapshotsDirectory = Path.Combine(options.StateDirectory, "snapshots");
        _logger = logger;
        _time = time ?? TimeProvider.System;
    }

    public string Directory { get; }
    public string VolumesDirectory { get; }
    public string SnapshotsDirectory { get; }

    public bool Loaded { get; private set; }

    /// <summary>Reads every state file; removes temp files left by a write that was interrupted.</summary>
    public async Task LoadAsync(CancellationToken cancellationToken)
    {
        foreach (var directory in new[] { Directory, VolumesDirectory, SnapshotsDirectory })
        {
            System.IO.Directory.CreateDirectory(directory, DirectoryMode);
        }
        var volumes = await LoadDirectoryAsync(VolumesDirectory, StateJsonContext.Default.VolumeRecord,
            r => r.Key, r => r.Version, VolumeRecord.CurrentVersion, cancellationToken).ConfigureAwait(false);
        var snapshots = await LoadDirectoryAsync(SnapshotsDirectory, StateJsonContext.Default.SnapshotRecord,
            r => r.SnapshotKey, r => r.Version, SnapshotRecord.CurrentVersion, cancellationToken).ConfigureAwait(false);
        lock (_gate)
        {
            foreach (var (key, record) in volumes.Loaded)
            {
                _volumes.Set(key, record);
            }
            foreach (var (key, reason) in volumes.Quarantined)
            {
                _quarantinedVolumes[key] = reason;
            }
            foreach (var (key, record) in snapshots.Loaded)
            {
                _snapshots.Set(key, record);
            }
            foreach (var (key, reason) in snapshots.Quarantined)
            {
                _quarantinedSnapshots[key] = reason;
            }
            Loaded = true;
        }
        _logger.LogInformation("Loaded desired state from {Directory}: {Volumes} volumes, {Snapshots} snapshots, {Quarantined} unreadable files kept aside",
            Directory, volumes.Loaded.Count, snapshots.Loaded.Count, volumes.Quarantined.Count + snapshots.Quarantined.Count);
    }

    // ------------------------------------------------------------------------ volumes

    /// <summary>The record, or null. A quarantined key fails with INTERNAL.</summary>
    public VolumeRecord? GetVolume(string key)
    {
        lock (_gate)
        {
            if (_quarantinedVolumes.TryGetValue(key, out var reason))
            {
                throw StatusException.Internal($"the state file of volume {key} ({VolumePath(key)}) cannot be used: {reason}; fix or remove it and restart the engine");
            }
            return _volumes.Get(key);
        }
    }

    public List<VolumeRecord> Volumes()
    {
        lock (_gate)
        {
            return _volumes.All();
        }
    }

    public int VolumeCount
    {
        get
        {
            lock (_gate)
            {
                return _volumes.Count;
            }
        }
    }

    /// <summary>Keys whose state files are unreadable: their exports must be left alone.</summary>
    public IReadOnlyCollection<string> QuarantinedVolumeKeys
    {
        get
        {
            lock (_gate)
            {
                return _quarantinedVolumes.Keys.ToArray();
            }
        }
    }

    public (List<VolumeRecord> Items, string? ContinueAfter) ListVolumes(string? after, int max)
    {
        lock (_gate)
        {
            return _volumes.Page(after, max);
        }
    }

    /// <summary>Writes the record durably, then indexes it. Returns what was written (generation and time stamped).</summary>
    public async Task<VolumeRecord> SaveVolumeAsync(VolumeRecord record, CancellationToken cancellationToken)
    {
        var previous = GetVolume(record.Key);
        var now = _time.GetUtcNow();
        var stamped = record with
        {
            Version = VolumeRecord.CurrentVersion,
            Generation = (previous?.Generation ?? 0) + 1,
            Created = previous?.Created ?? (record.Created == default ? now : record.Created),
            Updated = now,
        };
        var bytes = JsonSerializer.SerializeToUtf8Bytes(stamped, StateJsonContext.Default.VolumeRecord);
        await AtomicFile.WriteAsync(VolumePath(record.Key), bytes, AtomicFile.OwnerOnly, cancellationToken).ConfigureAwait(false);
        lock (_gate)
        {
            _volumes.Set(record.Key, stamped);
        }
        return stamped;
    }

    public void DeleteVolume(string key)
    {
        AtomicFile.Delete(VolumePath(key));
        lock (_gate)
        {
            _volumes.Remove(key);
        }
    }

    // ------------------------------------------------------------------------ snapshots

    public SnapshotRecord? GetSnapshot(string snapshotKey)
    {
        lock (_gate)
        {
            if (_quarantinedSnapshots.TryGetValue(snapshotKey, out var reason))
            {
                throw StatusException.Internal($"the state file of snapshot {snapshotKey} ({SnapshotPath(snapshotKey)}) cannot be used: {reason}; fix or remove it and restart the engine");
            }
            return _snapshots.Get(snapshotKey);
        }
    }

    public List<SnapshotRecord> Snapshots()
    {
        lock (_gate)
        {
            return _snapshots.All();
        }
    }

    public (List<SnapshotRecord> Items, string? ContinueAfter) ListSnapshots(string? after, int max, Func<SnapshotRecord, bool>? filter)
    {
        lock (_gate)
        {
            return _snapshots.Page(after, max, filter);
        }
    }

    public async Task<SnapshotRecord> SaveSnapshotAsync(SnapshotRecord record, CancellationToken cancellationToken)
    {
        var previous = GetSnapshot(record.SnapshotKey);
        var stamped = record with
        {
            Version = SnapshotRecord.CurrentVersion,
            Generation = (previous?.Generation ?? 0) + 1,
        };
        var bytes = JsonSerializer.SerializeToUtf8Bytes(stamped, StateJsonContext.Default.SnapshotRecord);
        await AtomicFile.WriteAsync(SnapshotPath(record.SnapshotKey), bytes, AtomicFile.OwnerOnly, cancellationToken).ConfigureAwait(false);
        lock (_gate)
        {
            _snapshots.Set(record.SnapshotKey, stamped);
        }
        return stamped;
    }

    public void DeleteSnapshot(string snapshotKey)
    {
        AtomicFile.Delete(SnapshotPath(snapshotKey));
        lock (_gate)
        {
            _snapshots.Remove(snapshotKey);
        }
    }

    public string VolumePath(string key) => Path.Combine(VolumesDirectory, key + ".json");

    public string SnapshotPath(string snapshotKey) => Path.Combine(SnapshotsDirectory, snapshotKey + ".json");

    // ------------------------------------------------------------------------ loading

    private sealed record LoadResult<T>(List<(string Key, T Record)> Loaded, List<(string Key, string Reason)> Quarantined);

    private async Task<LoadResult<T>> LoadDirectoryAsync<T>(string directory, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> typeInfo,
        Func<T, string> keyOf, Func<T, int> versionOf, int currentVersion, CancellationToken cancellationToken)
        where T : class
    {
        var loaded = new List<(string, T)>();
        var quarantined = new List<(string, string)>();
        foreach (var path in System.IO.Directory.EnumerateFiles(directory))
        {
            if (AtomicFile.IsTempFile(path))
            {
                // A write that was killed before its rename: the previous file (if any) is still the truth.
                _logger.LogInformation("Removing {Path}, left by an interrupted state write", path);
                File.Delete(path);
                continue;
            }
            var name = Path.GetFileName(path);
            if (!name.EndsWith(".json", StringComparison.Ordinal) || !Names.IsValidKey(name[..^5]))
            {
                _logger.LogWarning("Ignoring {Path} in the state directory: not a state file name", path);
                continue;
            }
            var key = name[..^5];
            try
            {
                var bytes = await File.ReadAllBytesAsync(path, cancellationToken).ConfigureAwait(false);
                var record = JsonSerializer.Deserialize(bytes, typeInfo) ?? throw new JsonException("the file holds null");
                if (versionOf(record) > currentVersion)
                {
                    quarantined.Add((key, $"it was written by a newer csi-scst (format version {versionOf(record)}, this one reads {currentVersion})"));
                }
                else if (keyOf(record) != key)
                {
                    quarantined.Add((key, $"it names key '{keyOf(record)}', not {key}"));
                }
                else
                {
                    loaded.Add((key, record));
                }
            }
            catch (Exception e) when (e is JsonException or IOException or UnauthorizedAccessException or NotSupportedException)
            {
                // Keep the file for the operator; never guess what it meant.
                quarantined.Add((key, e.Message));
            }
        }
        foreach (var (key, reason) in quarantined)
        {
            _logger.LogError("State file {Key}.json in {Directory} is unreadable and kept aside: {Reason}. Its export is left untouched until it is fixed.",
                key, directory, reason);
        }
        return new LoadResult<T>(loaded, quarantined);
    }
}
