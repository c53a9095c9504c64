using System.Security.Cryptography;
using System.Text;
using CsiScst.Backends;
using CsiScst.Core;
using CsiScst.Core.Errors;
using CsiScst.Core.Faults;
using CsiScst.Core.Ids;
using CsiScst.Core.Locking;
using CsiScst.Engine.Faults;
using CsiScst.Engine.Reconcile;
using CsiScst.Engine.State;
using CsiScst.Engine.V1;
using CsiScst.Targets;
using Google.Protobuf.WellKnownTypes;
using Microsoft.Extensions.Logging;

namespace CsiScst.Engine.Volumes;

/// <summary>
/// What the engine API does, one method per RPC, each reading validate → lock → look up → act → answer.
/// Every mutation writes its intent to the durable state first and then converges backend and target step
/// by step, so a kill -9 between any two steps is finished by a retry (or, for deletions, by reconcile),
/// and nothing is left behind that no record points to.
/// </summary>
public sealed class VolumeManager
{
    public const string ApiVersion = "1";
    public const int DefaultPageSize = 1000;

    private readonly StateStore _store;
    private readonly PoolRegistry _pools;
    private readonly ITargetEngine _engine;
    private readonly ObjectNames _names;
    private readonly EngineOptions _options;
    private readonly KeyedLocks _locks;
    private readonly OperationGate _gate;
    private readonly FaultPoints _faults;
    private readonly VolumeHealth _health;
    private readonly EngineMetrics _metrics;
    private readonly ILogger<VolumeManager> _logger;

    public VolumeManager(StateStore store, PoolRegistry pools, ITargetEngine engine, ObjectNames names, EngineOptions options,
        KeyedLocks locks, OperationGate gate, FaultPoints faults, VolumeHealth health, EngineMetrics metrics, ILogger<VolumeManager> logger)
    {
        _store = store;
        _pools = pools;
        _engine = engine;
        _names = names;
        _options = options;
        _locks = locks;
        _gate = gate;
        _faults = faults;
        _health = health;
        _metrics = metrics;
        _logger = logger;
    }

    /// <summary>The LUN initiators use: tgt puts data on LUN 1 (its LUN 0 is the controller), the others on LUN 0.</summary>
    public int Lun => _engine.Kind == "tgt" ? 1 : 0;

    // ============================================================================ volumes

    public Task<VolumeInfo> EnsureVolumeAsync(EnsureVolumeRequest request, CancellationToken cancellationToken) =>
        _metrics.TimeAsync("ensure_volume", async () =>
        {
            var key = RequireKey(request.Key, "key");
            RequireName(request.Name);
            var backend = _pools.Get(RequirePool(request.Pool));
            if (request.RequiredBytes < 0 || request.LimitBytes < 0)
            {
                throw StatusException.InvalidArgument($"required_bytes ({request.RequiredBytes}) and limit_bytes ({request.LimitBytes}) must not be negative");
            }
            if (request.LimitBytes > 0 && request.RequiredBytes > request.LimitBytes)
            {
                throw StatusException.OutOfRange($"required_bytes {request.RequiredBytes} is above limit_bytes {request.LimitBytes}");
            }
            var options = request.Options ?? new ExportOptions();
            var blockSize = options.BlockSize == 0 ? 512u : options.BlockSize;
            if (blockSize is not (512 or 4096))
            {
                throw StatusException.InvalidArgument($"block_size {options.BlockSize} is not supported; use 512 or 4096");
            }
            var chap = ToChap(options.Chap, key);
            var source = ToSource(request.Source);
            (_engine as IExportRules)?.Check(key, chap is null ? null : ToChapSpec(chap), []);

            using var keyLock = _locks.TryAcquire(key, $"volume {key}");
            using var operation = await _gate.EnterOperationAsync(cancellationToken).ConfigureAwait(false);

            var record = _store.GetVolume(key);
            if (record is { Phase: VolumePhase.Deleting })
            {
                // The CO deleted this name and now creates it again: finish the deletion first.
                await FinishDeleteAsync(record, cancellationToken).ConfigureAwait(false);
                record = null;
            }

            var granularity = Math.Max(1, await backend.GetGranularityAsync(cancellationToken).ConfigureAwait(false));
            var size = PlanSize(request.RequiredBytes, request.LimitBytes, granularity, _options.DefaultVolumeBytes);
            var writeCache = options.WriteCache == WriteCache.WriteBack ? WriteCacheMode.WriteBack : WriteCacheMode.WriteThrough;
            var parameters = request.Parameters.ToDictionary(StringComparer.Ordinal);

            if (record is not null)
            {
                CheckCompatible(record, request, backend, source, blockSize, writeCache, options.ThinProvisioned, chap, parameters);
                if (record.Phase == VolumePhase.Ready)
                {
                    return ToInfo(record);
                }
                _logger.LogInformation("Finishing the creation of volume {Key} ({Name}) that an earlier attempt left unfinished", key, record.Name);
            }
            else
            {
                size = CheckSource(key, source, request.Pool, size, request.LimitBytes, granularity);
                record = await _store.SaveVolumeAsync(new VolumeRecord
                {
                    Key = key,
                    Name = request.Name,
                    Pool = request.Pool,
                    Backend = backend.Kind,
                    Phase = VolumePhase.Creating,
                    RequiredBytes = request.RequiredBytes,
                    LimitBytes = request.LimitBytes,
                    CapacityBytes = size,
                    Source = source,
                    BlockSize = blockSize,
                    WriteCache = writeCache,
                    ThinProvisioned = options.ThinProvisioned,
                    Chap = chap,
                    Parameters = parameters,
                }, cancellationToken).ConfigureAwait(false);
                _logger.LogInformation("Creating volume {Key} ({Name}) of {Bytes} bytes in pool {Pool}", key, request.Name, size, request.Pool);
                _faults.Hit(EngineFaultPoints.EnsureVolumeAfterRecord);
            }

            var created = await backend.CreateVolumeAsync(new CreateVolumeSpec(key, record.CapacityBytes, ToSourceSpec(record.Source))
            {
                Parameters = record.Parameters,
            }, cancellationToken).ConfigureAwait(false);
            _faults.Hit(EngineFaultPoints.EnsureVolumeAfterBackendCreate);
            var path = await backend.AttachAsync(key, cancellationToken).ConfigureAwait(false);
            _faults.Hit(EngineFaultPoints.EnsureVolumeAfterAttach);
            record = record with { BackingPath = path, CapacityBytes = Math.Max(created.SizeBytes, record.CapacityBytes) };
            await _engine.EnsureExportAsync(ToSpec(record, backend), cancellationToken).ConfigureAwait(false);
            _faults.Hit(EngineFaultPoints.EnsureVolumeAfterExport);
            record = await _store.SaveVolumeAsync(record with { Phase = VolumePhase.Ready }, cancellationToken).ConfigureAwait(false);
            _health.Clear(key);
            _logger.LogInformation("Volume {Key} is ready: {Iqn} LUN {Lun} on {Path}", key, _names.TargetIqn(key), Lun, path);
            return ToInfo(record);
        });

    public Task<bool> DeleteVolumeAsync(DeleteVolumeRequest request, CancellationToken cancellationToken) =>
        _metrics.TimeAsync("delete_volume", async () =>
        {
            var key = RequireKey(request.Key, "key");
            using var keyLock = _locks.TryAcquire(key, $"volume {key}");
            using var operation = await _gate.EnterOperationAsync(cancellationToken).ConfigureAwait(false);
            var record = _store.GetVolume(key);
            if (record is null || (request.Pool.Length > 0 && request.Pool != record.Pool))
            {
                return true;
            }
            if (record.Phase != VolumePhase.Deleting)
            {
                if (record.Access.Count > 0)
                {
                    throw StatusException.FailedPrecondition(
                        $"volume {key} is still published to {string.Join(", ", record.Access.Select(a => a.NodeId))}; revoke access first");
                }
                record = await _store.SaveVolumeAsync(record with { Phase = VolumePhase.Deleting }, cancellationToken).ConfigureAwait(false);
                _faults.Hit(EngineFaultPoints.DeleteVolumeAfterMark);
            }
            await FinishDeleteAsync(record, cancellationToken).ConfigureAwait(false);
            return true;
        });

    public Task<VolumeInfo> GetVolumeAsync(GetVolumeRequest request, CancellationToken cancellationToken)
    {
        var key = RequireKey(request.Key, "key");
        var record = _store.GetVolume(key);
        if (record is null || (request.Pool.Length > 0 && request.Pool != record.Pool))
        {
            throw StatusException.NotFound($"volume {key} does not exist on this engine");
        }
        return Task.FromResult(ToInfo(record));
    }

    public ListVolumesResponse ListVolumes(ListVolumesRequest request)
    {
        var max = PageSize(request.MaxEntries);
        var after = PageToken.Decode(request.StartingToken);
        var (items, next) = _store.ListVolumes(after, max);
        var response = new ListVolumesResponse { NextToken = next is null ? "" : PageToken.Encode(next) };
        foreach (var record in items)
        {
            response.Volumes.Add(ToInfo(record));
        }
        return response;
    }

    public Task<long> ExpandVolumeAsync(ExpandVolumeRequest request, CancellationToken cancellationToken) =>
        _metrics.TimeAsync("expand_volume", async () =>
        {
            var key = RequireKey(request.Key, "key");
            if (request.RequiredBytes <= 0)
            {
                throw StatusException.InvalidArgument($"required_bytes must be positive (got {request.RequiredBytes})");
            }
            if (request.LimitBytes < 0 || (request.LimitBytes > 0 && request.RequiredBytes > request.LimitBytes))
            {
                throw StatusException.OutOfRange($"required_bytes {request.RequiredBytes} does not fit limit_bytes {request.LimitBytes}");
            }
            using var keyLock = _locks.TryAcquire(key, $"volume {key}");
            using var operation = await _gate.EnterOperationAsync(cancellationToken).ConfigureAwait(false);
            var record = RequireReady(key, request.Pool);
            var backend = _pools.Get(record.Pool);
            if (record.CapacityBytes >= request.RequiredBytes)
            {
                return record.CapacityBytes;
            }
            var granularity = Math.Max(1, await backend.GetGranularityAsync(cancellationToken).ConfigureAwait(false));
            var size = PlanSize(request.RequiredBytes, request.LimitBytes, granularity, _options.DefaultVolumeBytes);
            var grown = await backend.ExpandVolumeAsync(key, size, cancellationToken).ConfigureAwait(false);
            _faults.Hit(EngineFaultPoints.ExpandVolumeAfterBackendExpand);
            var path = await backend.AttachAsync(key, cancellationToken).ConfigureAwait(false);
            record = record with { BackingPath = path, CapacityBytes = Math.Max(grown.SizeBytes, size) };
            await _engine.ResyncSizeAsync(ToSpec(record, backend), cancellationToken).ConfigureAwait(false);
            _faults.Hit(EngineFaultPoints.ExpandVolumeAfterResync);
            record = await _store.SaveVolumeAsync(record, cancellationToken).ConfigureAwait(false);
            _logger.LogInformation("Volume {Key} grew to {Bytes} bytes", key, record.CapacityBytes);
            return record.CapacityBytes;
        });

    // ============================================================================ access

    public Task<VolumeInfo> EnsureAccessAsync(EnsureAccessRequest request, CancellationToken cancellationToken) =>
        _metrics.TimeAsync("ensure_access", async () =>
        {
            var key = RequireKey(request.Key, "key");
            RequireNodeId(request.NodeId);
            if (!Names.IsValidInitiatorName(request.InitiatorIqn))
            {
                throw StatusException.InvalidArgument($"initiator_iqn '{request.InitiatorIqn}' is not an iSCSI name (iqn.…, eui.… or naa.…)");
            }
            using var keyLock = _locks.TryAcquire(key, $"volume {key}");
            using var operation = await _gate.EnterOperationAsync(cancellationToken).ConfigureAwait(false);
            var record = RequireReady(key, request.Pool);
            var backend = _pools.Get(record.Pool);

            var mine = record.Access.FirstOrDefault(a => a.NodeId == request.NodeId);
            if (mine is not null && mine.InitiatorIqn != request.InitiatorIqn)
            {
                throw StatusException.AlreadyExists(
                    $"volume {key} is published to node {request.NodeId} as initiator {mine.InitiatorIqn}, not {request.InitiatorIqn}");
            }
            if (mine is not null && mine.ReadOnly != request.ReadOnly)
            {
                throw StatusException.AlreadyExists(
                    $"volume {key} is already published to node {request.NodeId} {(mine.ReadOnly ? "read-only" : "read-write")}; the request asks {(request.ReadOnly ? "read-only" : "read-write")}");
            }
            var others = record.Access.Where(a => a.NodeId != request.NodeId).ToList();
            if (others.Count > 0 && (request.Exclusive || others.Any(a => a.Exclusive)))
            {
                throw StatusException.FailedPrecondition(
                    $"volume {key} is published to node {others[0].NodeId}{(others.Count > 1 ? $" and {others.Count - 1} more" : "")} and its access mode allows one node only");
            }
            if (mine is null)
            {
                var access = record.Access.Append(new AccessRecord(request.NodeId, request.InitiatorIqn, request.ReadOnly, request.Exclusive)).ToList();
                (_engine as IExportRules)?.Check(key, record.Chap is null ? null : ToChapSpec(record.Chap), Initiators(access));
                record = await _store.SaveVolumeAsync(record with { Access = access }, cancellationToken).ConfigureAwait(false);
                _logger.LogInformation("Volume {Key}: access for node {NodeId} as {Initiator} ({Mode})", key, request.NodeId, request.InitiatorIqn,
                    request.ReadOnly ? "read-only" : "read-write");
                _faults.Hit(EngineFaultPoints.EnsureAccessAfterRecord);
            }
            // Always converge: a retry after a crash between the record and the target must still open the door.
            await _engine.EnsureExportAsync(ToSpec(record, backend), cancellationToken).ConfigureAwait(false);
            return ToInfo(record);
        });

    public Task<bool> RevokeAccessAsync(RevokeAccessRequest request, CancellationToken cancellationToken) =>
        _metrics.TimeAsync("revoke_access", async () =>
        {
            var key = RequireKey(request.Key, "key");
            if (string.IsNullOrEmpty(request.NodeId) && string.IsNullOrEmpty(request.InitiatorIqn))
            {
                throw StatusException.InvalidArgument("node_id or initiator_iqn is required");
            }
            using var keyLock = _locks.TryAcquire(key, $"volume {key}");
            using var operation = await _gate.EnterOperationAsync(cancellationToken).ConfigureAwait(false);
            var record = _store.GetVolume(key);
            if (record is null || (request.Pool.Length > 0 && request.Pool != record.Pool))
            {
                return true;
            }
            var remaining = record.Access.Where(a => !Matches(a)).ToList();
            if (remaining.Count != record.Access.Count)
            {
                record = await _store.SaveVolumeAsync(record with { Access = remaining }, cancellationToken).ConfigureAwait(false);
                _logger.LogInformation("Volume {Key}: access revoked for node {NodeId} {Initiator}", key, request.NodeId, request.InitiatorIqn);
                _faults.Hit(EngineFaultPoints.RevokeAccessAfterRecord);
            }
            if (record.Phase == VolumePhase.Ready && _pools.Find(record.Pool) is { } backend)
            {
                // Fencing: the engine closes the sessions of initiators no longer listed, even on a retry.
                await _engine.EnsureExportAsync(ToSpec(record, backend), cancellationToken).ConfigureAwait(false);
            }
            return true;

            bool Matches(AccessRecord a) =>
                (request.NodeId.Length == 0 || a.NodeId == request.NodeId)
                && (request.InitiatorIqn.Length == 0 || a.InitiatorIqn == request.InitiatorIqn);
        });

    // ============================================================================ snapshots

    public Task<SnapshotInfo> EnsureSnapshotAsync(EnsureSnapshotRequest request, CancellationToken cancellationToken) =>
        _metrics.TimeAsync("ensure_snapshot", async () =>
        {
            var volumeKey = RequireKey(request.VolumeKey, "volume_key");
            var snapshotKey = RequireKey(request.SnapshotKey, "snapshot_key");
            var backend = _pools.Get(RequirePool(request.Pool));
            using var keyLocks = _locks.TryAcquireAll((volumeKey, $"volume {volumeKey}"), ("snapshot/" + snapshotKey, $"snapshot {snapshotKey}"));
            using var operation = await _gate.EnterOperationAsync(cancellationToken).ConfigureAwait(false);
            var record = _store.GetSnapshot(snapshotKey);
            if (record is not null && (record.VolumeKey != volumeKey || record.Pool != request.Pool))
            {
                throw StatusException.AlreadyExists(
                    $"snapshot {snapshotKey} already exists for volume {record.VolumeKey} in pool {record.Pool}, not volume {volumeKey} in pool {request.Pool}");
            }
            if (record is { Phase: SnapshotPhase.Ready })
            {
                return ToInfo(record);
            }
            if (record is { Phase: SnapshotPhase.Deleting })
            {
                await FinishDeleteSnapshotAsync(record, backend, cancellationToken).ConfigureAwait(false);
                record = null;
            }
            var volume = _store.GetVolume(volumeKey);
            if (volume is null || volume.Pool != request.Pool || volume.Phase != VolumePhase.Ready)
            {
                throw StatusException.NotFound($"source volume {volumeKey} does not exist in pool {request.Pool} on this engine");
            }
            if (record is null)
            {
                record = await _store.SaveSnapshotAsync(new SnapshotRecord
                {
                    SnapshotKey = snapshotKey,
                    VolumeKey = volumeKey,
                    Pool = request.Pool,
                    Name = request.Name,
                    Phase = SnapshotPhase.Creating,
                    Parameters = request.Parameters.ToDictionary(StringComparer.Ordinal),
                }, cancellationToken).ConfigureAwait(false);
                _faults.Hit(EngineFaultPoints.EnsureSnapshotAfterRecord);
            }
            var snapshot = await backend.CreateSnapshotAsync(volumeKey, snapshotKey, cancellationToken).ConfigureAwait(false);
            _faults.Hit(EngineFaultPoints.EnsureSnapshotAfterBackendCreate);
            record = await _store.SaveSnapshotAsync(record with
            {
                Phase = SnapshotPhase.Ready,
                SizeBytes = snapshot.SizeBytes,
                Created = snapshot.Created,
                ReadyToUse = snapshot.ReadyToUse,
            }, cancellationToken).ConfigureAwait(false);
            _logger.LogInformation("Snapshot {SnapshotKey} of volume {Key} is ready ({Bytes} bytes)", snapshotKey, volumeKey, snapshot.SizeBytes);
            return ToInfo(record);
        });

    public Task<bool> DeleteSnapshotAsync(DeleteSnapshotRequest request, CancellationToken cancellationToken) =>
        _metrics.TimeAsync("delete_snapshot", async () =>
        {
            var snapshotKey = RequireKey(request.SnapshotKey, "snapshot_key");
            using var keyLock = _locks.TryAcquire("snapshot/" + snapshotKey, $"snapshot {snapshotKey}");
            using var operation = await _gate.EnterOperationAsync(cancellationToken).ConfigureAwait(false);
            var record = _store.GetSnapshot(snapshotKey);
            if (record is null
                || (request.VolumeKey.Length > 0 && request.VolumeKey != record.VolumeKey)
                || (request.Pool.Length > 0 && request.Pool != record.Pool))
            {
                return true;
            }
            var backend = _pools.Find(record.Pool)
                ?? throw StatusException.FailedPrecondition($"snapshot {snapshotKey} is in pool {record.Pool}, which is no longer configured on this engine");
            if (record.Phase != SnapshotPhase.Deleting)
            {
                record = await _store.SaveSnapshotAsync(record with { Phase = SnapshotPhase.Deleting }, cancellationToken).ConfigureAwait(false);
                _faults.Hit(EngineFaultPoints.DeleteSnapshotAfterMark);
            }
            await FinishDeleteSnapshotAsync(record, backend, cancellationToken).ConfigureAwait(false);
            return true;
        });

    public ListSnapshotsResponse ListSnapshots(ListSnapshotsRequest request)
    {
        var response = new ListSnapshotsResponse();
        if (request.SnapshotKey.Length > 0)
        {
            if (Names.IsValidKey(request.SnapshotKey) && _store.GetSnapshot(request.SnapshotKey) is { } one
                && one.Phase != SnapshotPhase.Deleting && (request.VolumeKey.Length == 0 || one.VolumeKey == request.VolumeKey))
            {
                response.Snapshots.Add(ToInfo(one));
            }
            return response;
        }
        var max = PageSize(request.MaxEntries);
        var after = PageToken.Decode(request.StartingToken);
        var volumeKey = request.VolumeKey;
        var (items, next) = _store.ListSnapshots(after, max,
            s => s.Phase != SnapshotPhase.Deleting && (volumeKey.Length == 0 || s.VolumeKey == volumeKey));
        response.NextToken = next is null ? "" : PageToken.Encode(next);
        foreach (var record in items)
        {
            response.Snapshots.Add(ToInfo(record));
        }
        return response;
    }

    // ============================================================================ capacity and info

    public async Task<GetCapacityResponse> GetCapacityAsync(GetCapacityRequest request, CancellationToken cancellationToken)
    {
        var backends = request.Pool.Length > 0 ? [_pools.Get(request.Pool)] : _pools.All.ToList();
        var response = new GetCapacityResponse();
        foreach (var backend in backends)
        {
            var capacity = await backend.GetCapacityAsync(cancellationToken).ConfigureAwait(false);
            var granularity = await backend.GetGranularityAsync(cancellationToken).ConfigureAwait(false);
            response.AvailableBytes += capacity.AvailableBytes;
            response.MaximumVolumeSize = Math.Max(response.MaximumVolumeSize, capacity.MaximumVolumeBytes);
            response.MinimumVolumeSize = response.MinimumVolumeSize == 0 ? granularity : Math.Min(response.MinimumVolumeSize, granularity);
        }
        return response;
    }

    public async Task<EngineInfo> GetEngineInfoAsync(DriverOptions driver, Core.Health.Readiness readiness, CancellationToken cancellationToken)
    {
        var ready = await readiness.CheckAsync(cancellationToken).ConfigureAwait(false);
        var info = new EngineInfo
        {
            ApiVersion = ApiVersion,
            Version = DriverOptions.Version,
            EngineKind = _engine.Kind,
            NodeId = driver.NodeName,
            InstanceId = driver.InstanceId,
            Ready = ready.Ready,
            NotReadyReason = ready.Reason,
        };
        info.Portals.Add(_options.Portals);
        if (!string.IsNullOrEmpty(driver.Zone))
        {
            info.Topology[DriverOptions.ZoneTopologyKey] = driver.Zone;
        }
        foreach (var backend in _pools.All)
        {
            var features = backend.Features;
            var pool = new PoolInfo { Name = backend.PoolName, Backend = backend.Kind, Thin = features.Thin, Snapshots = features.Snapshots, Clones = features.Clones };
            try
            {
                var capacity = await backend.GetCapacityAsync(cancellationToken).ConfigureAwait(false);
                pool.TotalBytes = capacity.TotalBytes;
                pool.AvailableBytes = capacity.AvailableBytes;
                pool.GranularityBytes = await backend.GetGranularityAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is StatusException or IOException or Core.Exec.ToolException)
            {
                // One broken pool must not hide the others; readiness names it.
                _logger.LogWarning("Pool {Pool} did not report its capacity: {Error}", backend.PoolName, e.Message);
            }
            info.Pools.Add(pool);
        }
        return info;
    }

    // ============================================================================ shared steps

    /// <summary>Export gone, device detached, backing storage deleted, record removed: each step idempotent.</summary>
    internal async Task FinishDeleteAsync(VolumeRecord record, CancellationToken cancellationToken)
    {
        var backend = _pools.Find(record.Pool)
            ?? throw StatusException.FailedPrecondition($"volume {record.Key} is in pool {record.Pool}, which is no longer configured on this engine");
        await _engine.RemoveExportAsync(record.Key, cancellationToken).ConfigureAwait(false);
        _faults.Hit(EngineFaultPoints.DeleteVolumeAfterExportRemoved);
        await backend.DetachAsync(record.Key, cancellationToken).ConfigureAwait(false);
        _faults.Hit(EngineFaultPoints.DeleteVolumeAfterDetach);
        try
        {
            await backend.DeleteVolumeAsync(record.Key, cancellationToken).ConfigureAwait(false);
        }
        catch (StatusException e) when (e.Code == Grpc.Core.StatusCode.FailedPrecondition)
        {
            // Snapshots or clones still depend on it: the volume stays, exported as before.
            _logger.LogWarning("Volume {Key} cannot be deleted yet ({Reason}); restoring its export", record.Key, e.Message);
            var path = await backend.AttachAsync(record.Key, cancellationToken).ConfigureAwait(false);
            var restored = record with { Phase = VolumePhase.Ready, BackingPath = path };
            await _engine.EnsureExportAsync(ToSpec(restored, backend), cancellationToken).ConfigureAwait(false);
            await _store.SaveVolumeAsync(restored, cancellationToken).ConfigureAwait(false);
            throw;
        }
        _faults.Hit(EngineFaultPoints.DeleteVolumeAfterBackendDelete);
        _store.DeleteVolume(record.Key);
        _health.Clear(record.Key);
        _logger.LogInformation("Volume {Key} ({Name}) deleted", record.Key, record.Name);
    }

    private async Task FinishDeleteSnapshotAsync(SnapshotRecord record, IStorageBackend backend, CancellationToken cancellationToken)
    {
        try
        {
            await backend.DeleteSnapshotAsync(record.VolumeKey, record.SnapshotKey, cancellationToken).ConfigureAwait(false);
        }
        catch (StatusException e) when (e.Code == Grpc.Core.StatusCode.FailedPrecondition)
        {
            await _store.SaveSnapshotAsync(record with { Phase = SnapshotPhase.Ready }, cancellationToken).ConfigureAwait(false);
            throw;
        }
        _faults.Hit(EngineFaultPoints.DeleteSnapshotAfterBackendDelete);
        _store.DeleteSnapshot(record.SnapshotKey);
        _logger.LogInformation("Snapshot {SnapshotKey} of volume {Key} deleted", record.SnapshotKey, record.VolumeKey);
    }

    private long CheckSource(string key, SourceRecord? source, string pool, long size, long limit, long granularity)
    {
        if (source is null)
        {
            return size;
        }
        long sourceBytes;
        if (source.SnapshotKey is { } snapshotKey)
        {
            var snapshot = _store.GetSnapshot(snapshotKey);
            if (snapshot is null || snapshot.Phase != SnapshotPhase.Ready || snapshot.VolumeKey != source.VolumeKey)
            {
                throw StatusException.NotFound($"source snapshot {snapshotKey} of volume {source.VolumeKey} does not exist on this engine");
            }
            if (snapshot.Pool != pool)
            {
                throw StatusException.InvalidArgument($"source snapshot {snapshotKey} is in pool {snapshot.Pool}; a volume made from it must be in the same pool, not {pool}");
            }
            sourceBytes = snapshot.SizeBytes;
        }
        else
        {
            if (source.VolumeKey == key)
            {
                throw StatusException.InvalidArgument($"volume {key} cannot be a clone of itself");
            }
            var volume = _store.GetVolume(source.VolumeKey);
            if (volume is null || volume.Phase != VolumePhase.Ready)
            {
                throw StatusException.NotFound($"source volume {source.VolumeKey} does not exist on this engine");
            }
            if (volume.Pool != pool)
            {
                throw StatusException.InvalidArgument($"source volume {source.VolumeKey} is in pool {volume.Pool}; a clone must be in the same pool, not {pool}");
            }
            sourceBytes = volume.CapacityBytes;
        }
        if (sourceBytes <= size)
        {
            return size;
        }
        var grown = RoundUp(sourceBytes, granularity);
        if (limit > 0 && grown > limit)
        {
            throw StatusException.OutOfRange($"the source holds {sourceBytes} bytes, more than limit_bytes {limit}");
        }
        return grown;
    }

    private VolumeRecord RequireReady(string key, string pool)
    {
        var record = _store.GetVolume(key);
        if (record is null || (pool.Length > 0 && pool != record.Pool) || record.Phase == VolumePhase.Deleting)
        {
            throw StatusException.NotFound($"volume {key} does not exist on this engine");
        }
        if (record.Phase != VolumePhase.Ready)
        {
            throw StatusException.FailedPrecondition($"volume {key} has not finished being created; retry EnsureVolume first");
        }
        return record;
    }

    private static void CheckCompatible(VolumeRecord record, EnsureVolumeRequest request, IStorageBackend backend, SourceRecord? source,
        uint blockSize, WriteCacheMode writeCache, bool thin, ChapRecord? chap, Dictionary<string, string> parameters)
    {
        var key = record.Key;
        string? conflict = null;
        if (record.Name != request.Name)
        {
            conflict = $"it was created for name '{record.Name}'";
        }
        else if (record.Pool != request.Pool)
        {
            conflict = $"it is in pool {record.Pool}, the request names pool {request.Pool}";
        }
        else if (record.CapacityBytes < request.RequiredBytes || (request.LimitBytes > 0 && record.CapacityBytes > request.LimitBytes))
        {
            conflict = $"it has {record.CapacityBytes} bytes, the request asks for {request.RequiredBytes}..{(request.LimitBytes > 0 ? request.LimitBytes.ToString(System.Globalization.CultureInfo.InvariantCulture) : "unlimited")}";
        }
        else if (record.Source != source)
        {
            conflict = $"it was created from {Describe(record.Source)}, the request names {Describe(source)}";
        }
        else if (record.BlockSize != blockSize)
        {
            conflict = $"it has block size {record.BlockSize}, the request asks for {blockSize}";
        }
        else if (record.WriteCache != writeCache)
        {
            conflict = $"it uses {record.WriteCache}, the request asks for {writeCache}";
        }
        else if (record.ThinProvisioned != thin)
        {
            conflict = $"it is {(record.ThinProvisioned ? "" : "not ")}reported thin provisioned, the request asks otherwise";
        }
        else if (!SameChap(record.Chap, chap))
        {
            conflict = "it has different CHAP settings";
        }
        else if (!record.Parameters.OrderBy(p => p.Key, StringComparer.Ordinal).SequenceEqual(parameters.OrderBy(p => p.Key, StringComparer.Ordinal)))
        {
            conflict = "it was created with different parameters";
        }
        else if (record.Backend != backend.Kind)
        {
            conflict = $"it is a {record.Backend} volume, pool {request.Pool} is {backend.Kind}";
        }
        if (conflict is not null)
        {
            throw StatusException.AlreadyExists($"volume {key} already exists and is not compatible with this request: {conflict}");
        }
    }

    private static string Describe(SourceRecord? source) => source switch
    {
        null => "no source",
        { SnapshotKey: { } s } => $"snapshot {s} of volume {source.VolumeKey}",
        _ => $"volume {source.VolumeKey}",
    };

    private static bool SameChap(ChapRecord? a, ChapRecord? b)
    {
        if (a is null || b is null)
        {
            return a is null && b is null;
        }
        return a.User == b.User && (a.MutualUser ?? "") == (b.MutualUser ?? "")
            && FixedEquals(a.Secret, b.Secret) && FixedEquals(a.MutualSecret ?? "", b.MutualSecret ?? "");
    }

    private static bool FixedEquals(string a, string b) =>
        CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(a), Encoding.UTF8.GetBytes(b));

    // ============================================================================ sizes

    /// <summary>
    /// The size to create: the request rounded up to the pool's granularity (the default size when none is
    /// asked); OUT_OF_RANGE when that exceeds the limit.
    /// </summary>
    public static long PlanSize(long required, long limit, long granularity, long defaultBytes)
    {
        var wanted = required > 0 ? required : limit > 0 ? Math.Min(defaultBytes, limit) : defaultBytes;
        var size = RoundUp(wanted, granularity);
        if (limit > 0 && size > limit)
        {
            throw StatusException.OutOfRange(
                $"{wanted} bytes rounded up to the pool's granularity of {granularity} bytes is {size}, above limit_bytes {limit}");
        }
        return size;
    }

    public static long RoundUp(long value, long granularity)
    {
        if (granularity <= 1)
        {
            return value;
        }
        var remainder = value % granularity;
        if (remainder == 0)
        {
            return value;
        }
        var add = granularity - remainder;
        if (value > long.MaxValue - add)
        {
            throw StatusException.OutOfRange($"{value} bytes cannot be rounded up to a multiple of {granularity}");
        }
        return value + add;
    }

    // ============================================================================ mapping

    internal ExportSpec ToSpec(VolumeRecord record, IStorageBackend backend) => ToSpec(record, backend.IsFileBacked);

    internal ExportSpec ToSpec(VolumeRecord record, bool isFile) => new()
    {
        Key = record.Key,
        TargetIqn = _names.TargetIqn(record.Key),
        DeviceName = _names.DeviceName(record.Key),
        BackingPath = record.BackingPath ?? throw StatusException.Internal($"volume {record.Key} has no backing device recorded"),
        IsFile = isFile,
        Serial = ObjectNames.Serial(record.Key),
        BlockSize = record.BlockSize,
        WriteCache = record.WriteCache,
        ThinProvisioned = record.ThinProvisioned,
        Initiators = Initiators(record.Access),
        Chap = record.Chap is null ? null : ToChapSpec(record.Chap),
        Portals = _options.Portals.ToList(),
    };

    /// <summary>One entry per initiator; read-only only when every node using that initiator asked for it.</summary>
    private static List<InitiatorAccess> Initiators(IReadOnlyList<AccessRecord> access) =>
        access.GroupBy(a => a.InitiatorIqn, StringComparer.Ordinal)
            .Select(g => new InitiatorAccess(g.Key, g.All(a => a.ReadOnly)))
            .ToList();

    private static ChapSpec ToChapSpec(ChapRecord chap) => new(chap.User, chap.Secret, chap.MutualUser, chap.MutualSecret);

    internal VolumeInfo ToInfo(VolumeRecord record)
    {
        var info = new VolumeInfo
        {
            Key = record.Key,
            Name = record.Name,
            Pool = record.Pool,
            Backend = record.Backend,
            CapacityBytes = record.CapacityBytes,
            TargetIqn = _names.TargetIqn(record.Key),
            Lun = Lun,
            Serial = ObjectNames.Serial(record.Key),
            Created = Timestamp.FromDateTimeOffset(record.Created),
            BlockSize = record.BlockSize,
            WriteCache = record.WriteCache == WriteCacheMode.WriteBack ? WriteCache.WriteBack : WriteCache.WriteThrough,
            ThinProvisioned = record.ThinProvisioned,
            ChapEnabled = record.Chap is not null,
            MutualChapEnabled = record.Chap?.Mutual ?? false,
            Condition = Condition(record),
        };
        info.Portals.Add(_options.Portals);
        foreach (var access in record.Access)
        {
            info.Access.Add(new Access { NodeId = access.NodeId, InitiatorIqn = access.InitiatorIqn, ReadOnly = access.ReadOnly });
        }
        if (record.Source is { } source)
        {
            info.Source = source.SnapshotKey is { } snapshot
                ? new ContentSource { Snapshot = new ContentSource.Types.FromSnapshot { VolumeKey = source.VolumeKey, SnapshotKey = snapshot } }
                : new ContentSource { Volume = new ContentSource.Types.FromVolume { VolumeKey = source.VolumeKey } };
        }
        return info;
    }

    private VolumeCondition Condition(VolumeRecord record) => record.Phase switch
    {
        VolumePhase.Creating => new VolumeCondition { Abnormal = true, Message = "creation has not finished; EnsureVolume must be retried" },
        VolumePhase.Deleting => new VolumeCondition { Abnormal = true, Message = "deletion has not finished; it completes on retry or at the next reconcile" },
        _ when _health.Problem(record.Key) is { } problem => new VolumeCondition { Abnormal = true, Message = problem },
        _ => new VolumeCondition { Abnormal = false, Message = "exported" },
    };

    private static SnapshotInfo ToInfo(SnapshotRecord record) => new()
    {
        SnapshotKey = record.SnapshotKey,
        VolumeKey = record.VolumeKey,
        Pool = record.Pool,
        Name = record.Name,
        SizeBytes = record.SizeBytes,
        Created = record.Created == default ? null : Timestamp.FromDateTimeOffset(record.Created),
        ReadyToUse = record.Phase == SnapshotPhase.Ready && record.ReadyToUse,
    };

    private static SourceRecord? ToSource(ContentSource? source)
    {
        if (source is null)
        {
            return null;
        }
        return source.TypeCase switch
        {
            ContentSource.TypeOneofCase.Snapshot => new SourceRecord(
                RequireKey(source.Snapshot.VolumeKey, "source.snapshot.volume_key"), RequireKey(source.Snapshot.SnapshotKey, "source.snapshot.snapshot_key")),
            ContentSource.TypeOneofCase.Volume => new SourceRecord(RequireKey(source.Volume.VolumeKey, "source.volume.volume_key"), null),
            _ => null,
        };
    }

    private static VolumeSourceSpec? ToSourceSpec(SourceRecord? source) => source switch
    {
        null => null,
        { SnapshotKey: { } snapshot } => new FromSnapshotSource(source.VolumeKey, snapshot),
        _ => new FromVolumeSource(source.VolumeKey),
    };

    private static ChapRecord? ToChap(ChapCredentials? chap, string key)
    {
        if (chap is null || (chap.User.Length == 0 && chap.Secret.Length == 0 && chap.MutualUser.Length == 0))
        {
            return null;
        }
        if (chap.User.Length == 0 || chap.Secret.Length == 0)
        {
            throw StatusException.InvalidArgument($"CHAP for volume {key} needs both user and secret");
        }
        var mutual = chap.MutualUser.Length > 0 || chap.MutualSecret.Length > 0;
        if (mutual && (chap.MutualUser.Length == 0 || chap.MutualSecret.Length == 0))
        {
            throw StatusException.InvalidArgument($"mutual CHAP for volume {key} needs both mutual_user and mutual_secret");
        }
        foreach (var (field, value) in new[] { ("user", chap.User), ("mutual_user", chap.MutualUser) })
        {
            if (value.Any(c => char.IsWhiteSpace(c) || char.IsControl(c) || c is '=' or ';') || value.Length > 255)
            {
                throw StatusException.InvalidArgument($"CHAP {field} '{value}' must be at most 255 characters without blanks, '=' or ';'");
            }
        }
        foreach (var (field, value) in new[] { ("secret", chap.Secret), ("mutual_secret", chap.MutualSecret) })
        {
            // Never echo a secret: name the field and the rule only.
            if (value.Length > 0 && (value.Length < 12 || value.Length > 255 || value.Any(c => char.IsWhiteSpace(c) || char.IsControl(c) || c is '=' or ';')))
            {
                throw StatusException.InvalidArgument($"CHAP {field} must be 12-255 characters without blanks, '=' or ';'");
            }
        }
        return new ChapRecord(chap.User, chap.Secret, mutual ? chap.MutualUser : null, mutual ? chap.MutualSecret : null);
    }

    // ============================================================================ validation

    internal static string RequireKey(string value, string field)
    {
        if (!Names.IsValidKey(value))
        {
            throw StatusException.InvalidArgument($"{field} '{value}' must be {Names.KeyLength} lowercase hex digits");
        }
        return value;
    }

    private static string RequirePool(string value)
    {
        if (!Names.IsValidPoolName(value))
        {
            throw StatusException.InvalidArgument($"pool '{value}' is not a valid pool name ([a-z0-9][a-z0-9_-]{{0,31}})");
        }
        return value;
    }

    private static void RequireName(string value)
    {
        if (value.Length == 0 || Encoding.UTF8.GetByteCount(value) > 128)
        {
            throw StatusException.InvalidArgument("name is required and must be at most 128 bytes");
        }
    }

    private static void RequireNodeId(string value)
    {
        if (value.Length == 0 || Encoding.UTF8.GetByteCount(value) > 256)
        {
            throw StatusException.InvalidArgument("node_id is required and must be at most 256 bytes");
        }
    }

    private static int PageSize(int maxEntries) => maxEntries switch
    {
        < 0 => throw StatusException.InvalidArgument($"max_entries must not be negative (got {maxEntries})"),
        0 => DefaultPageSize,
        _ => Math.Min(maxEntries, 10 * DefaultPageSize),
    };
}
