using CsiScst.Backends;
using CsiScst.Core.Errors;
using CsiScst.Core.Faults;
using CsiScst.Core.Ids;
using CsiScst.Core.Locking;
using CsiScst.Core.Metrics;
using CsiScst.Engine;
using CsiScst.Engine.Reconcile;
using CsiScst.Engine.State;
using CsiScst.Engine.Volumes;
using CsiScst.Targets;
using Microsoft.Extensions.Logging.Abstractions;

namespace CsiScst.Tests.Engine;

/// <summary>
/// A target engine double for unit tests of the engine core's logic: keeps "exports" in a dictionary and
/// records every call. The real engines are proven against real targets in the integration tests.
/// </summary>
internal sealed class FakeTargetEngine : ITargetEngine, IExportRules
{
    public Dictionary<string, ExportSpec> Exports { get; } = new(StringComparer.Ordinal);
    public List<string> Calls { get; } = [];
    public List<IReadOnlyCollection<ExportSpec>> Reconciled { get; } = [];
    public Func<string, ChapSpec?, IReadOnlyList<InitiatorAccess>, string?>? Rule { get; set; }

    public string Kind => "fake";

    public void Check(string key, ChapSpec? chap, IReadOnlyList<InitiatorAccess> initiators)
    {
        if (Rule?.Invoke(key, chap, initiators) is { } message)
        {
            throw StatusException.InvalidArgument(message);
        }
    }

    /// <summary>What ProbeAsync answers; each probe is recorded in <see cref="Calls"/> as "probe".</summary>
    public EngineHealth Health { get; set; } = EngineHealth.Healthy;

    public Task<EngineHealth> ProbeAsync(CancellationToken cancellationToken)
    {
        Calls.Add("probe");
        return Task.FromResult(Health);
    }

    public Task EnsureExportAsync(ExportSpec spec, CancellationToken cancellationToken)
    {
        Calls.Add("ensure " + spec.Key);
        Exports[spec.Key] = spec;
        return Task.CompletedTask;
    }

    public Task RemoveExportAsync(string key, CancellationToken cancellationToken)
    {
        Calls.Add("remove " + key);
        Exports.Remove(key);
        return Task.CompletedTask;
    }

    public Task ResyncSizeAsync(ExportSpec spec, CancellationToken cancellationToken)
    {
        Calls.Add("resync " + spec.Key);
        return Task.CompletedTask;
    }

    public Task<IReadOnlyList<ActualExport>> ListExportsAsync(CancellationToken cancellationToken) =>
        Task.FromResult<IReadOnlyList<ActualExport>>(Exports.Values.Select(e => new ActualExport
        {
            Key = e.Key,
            TargetIqn = e.TargetIqn,
            BackingPath = e.BackingPath,
            Serial = e.Serial,
            Enabled = true,
            Initiators = e.Initiators,
        }).ToList());

    public Task<EngineReconcileResult> ReconcileAsync(IReadOnlyCollection<ExportSpec> desired, CancellationToken cancellationToken)
    {
        Reconciled.Add(desired.ToList());
        var orphans = Exports.Keys.Where(k => desired.All(d => d.Key != k)).ToList();
        foreach (var key in orphans)
        {
            Exports.Remove(key);
        }
        var repaired = 0;
        foreach (var spec in desired)
        {
            if (!Exports.TryGetValue(spec.Key, out var existing) || existing != spec)
            {
                Exports[spec.Key] = spec;
                repaired++;
            }
        }
        return Task.FromResult(new EngineReconcileResult(desired.Count, repaired, orphans.Count, []));
    }

    public Task<IReadOnlyList<SessionInfo>> ListSessionsAsync(CancellationToken cancellationToken) => Task.FromResult<IReadOnlyList<SessionInfo>>([]);

    public Task<IReadOnlyList<ExportStats>> GetStatsAsync(CancellationToken cancellationToken) => Task.FromResult<IReadOnlyList<ExportStats>>([]);
}

/// <summary>An in-memory pool double: volumes and snapshots in dictionaries, a configurable granularity.</summary>
internal sealed class MemoryBackend(string pool, long granularity = 1L << 20) : IStorageBackend
{
    public Dictionary<string, BackendVolume> Volumes { get; } = new(StringComparer.Ordinal);
    public Dictionary<(string, string), BackendSnapshot> Snapshots { get; } = [];
    public List<string> Calls { get; } = [];
    public string AttachPrefix { get; set; } = "/dev/fake/";

    public string Kind => "file";
    public string PoolName => pool;
    public bool IsFileBacked => true;
    public BackendFeatures Features => new(true, true, true);

    public Task<BackendHealth> ProbeAsync(CancellationToken cancellationToken) => Task.FromResult(BackendHealth.Healthy);

    public Task<long> GetGranularityAsync(CancellationToken cancellationToken) => Task.FromResult(granularity);

    public Task<PoolCapacity> GetCapacityAsync(CancellationToken cancellationToken) => Task.FromResult(new PoolCapacity(100L << 30, 60L << 30, 50L << 30));

    public Task<BackendVolume> CreateVolumeAsync(CreateVolumeSpec spec, CancellationToken cancellationToken)
    {
        Calls.Add("create " + spec.Key);
        if (!Volumes.TryGetValue(spec.Key, out var volume))
        {
            volume = new BackendVolume(spec.Key, spec.SizeBytes, spec.Source);
            Volumes[spec.Key] = volume;
        }
        return Task.FromResult(volume);
    }

    public Task<BackendVolume?> GetVolumeAsync(string key, CancellationToken cancellationToken) => Task.FromResult(Volumes.GetValueOrDefault(key));

    public Task<IReadOnlyList<BackendVolume>> ListVolumesAsync(CancellationToken cancellationToken) => Task.FromResult<IReadOnlyList<BackendVolume>>(Volumes.Values.ToList());

    public Task DeleteVolumeAsync(string key, CancellationToken cancellationToken)
    {
        Calls.Add("delete " + key);
        if (Snapshots.Keys.Any(k => k.Item1 == key))
        {
            throw StatusException.FailedPrecondition($"volume {key} has snapshots");
        }
        Volumes.Remove(key);
        return Task.CompletedTask;
    }

    public Task<BackendVolume> ExpandVolumeAsync(string key, long sizeBytes, CancellationToken cancellationToken)
    {
        Calls.Add("expand " + key);
        var volume = Volumes[key];
        if (volume.SizeBytes < sizeBytes)
        {
            volume = volume with { SizeBytes = sizeBytes };
            Volumes[key] = volume;
        }
        return Task.FromResult(volume);
    }

    public Task<BackendSnapshot> CreateSnapshotAsync(string volumeKey, string snapshotKey, CancellationToken cancellationToken)
    {
        var snapshot = new BackendSnapshot(volumeKey, snapshotKey, Volumes[volumeKey].SizeBytes, DateTimeOffset.UnixEpoch);
        Snapshots[(volumeKey, snapshotKey)] = snapshot;
        return Task.FromResult(snapshot);
    }

    public Task<BackendSnapshot?> GetSnapshotAsync(string volumeKey, string snapshotKey, CancellationToken cancellationToken) =>
        Task.FromResult(Snapshots.GetValueOrDefault((volumeKey, snapshotKey)));

    public Task<IReadOnlyList<BackendSnapshot>> ListSnapshotsAsync(CancellationToken cancellationToken) => Task.FromResult<IReadOnlyList<BackendSnapshot>>(Snapshots.Values.ToList());

    public Task DeleteSnapshotAsync(string volumeKey, string snapshotKey, CancellationToken cancellationToken)
    {
        Snapshots.Remove((volumeKey, snapshotKey));
        return Task.CompletedTask;
    }

    public Task<string> AttachAsync(string key, CancellationToken cancellationToken)
    {
        Calls.Add("attach " + key);
        return Task.FromResult(AttachPrefix + key);
    }

    public Task DetachAsync(string key, CancellationToken cancellationToken)
    {
        Calls.Add("detach " + key);
        return Task.CompletedTask;
    }
}

/// <summary>The engine core wired with doubles over a real state directory.</summary>
internal sealed class EngineCore : IDisposable
{
    public EngineCore(params MemoryBackend[] pools)
    {
        Directory = Path.Combine(Path.GetTempPath(), "csi-scst-engine-unit-" + Guid.NewGuid().ToString("N")[..12]);
        Options = new EngineOptions { StateDirectory = Directory, Portals = ["10.0.0.5:3260"] };
        Names = new ObjectNames("unit");
        Pools = pools.Length == 0 ? [new MemoryBackend("files")] : pools;
        Engine = new FakeTargetEngine();
        Store = new StateStore(Options, NullLogger<StateStore>.Instance);
        var registry = new PoolRegistry(new StorageBackends(Pools));
        Gate = new OperationGate();
        Health = new VolumeHealth();
        Metrics = new EngineMetrics(new DriverMetrics());
        Volumes = new VolumeManager(Store, registry, Engine, Names, Options, new KeyedLocks(), Gate, new FaultPoints(setting: null), Health, Metrics,
            NullLogger<VolumeManager>.Instance);
        Reconciler = new Reconciler(Store, registry, Engine, Volumes, Gate, Health, Metrics, new FaultPoints(setting: null), NullLogger<Reconciler>.Instance);
    }

    public string Directory { get; }
    public EngineOptions Options { get; }
    public ObjectNames Names { get; }
    public MemoryBackend[] Pools { get; }
    public FakeTargetEngine Engine { get; }
    public StateStore Store { get; }
    public OperationGate Gate { get; }
    public VolumeHealth Health { get; }
    public EngineMetrics Metrics { get; }
    public VolumeManager Volumes { get; }
    public Reconciler Reconciler { get; }

    public MemoryBackend Pool => Pools[0];

    public async Task<EngineCore> LoadAsync()
    {
        await Store.LoadAsync(CancellationToken.None);
        return this;
    }

    public void Dispose()
    {
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }
    }
}
