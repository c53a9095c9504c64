using System.Globalization;
using Csi.V1;
using CsiScst.Core;
using CsiScst.Core.Errors;
using CsiScst.Core.Ids;
using CsiScst.Core.Locking;
using CsiScst.Csi.Controller.Chap;
using CsiScst.Csi.Controller.Engines;
using CsiScst.Csi.Validation;
using CsiScst.Engine.V1;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.Extensions.Logging;
using Rpc = Csi.V1.ControllerServiceCapability.Types.RPC.Types.Type;
using CsiListVolumesResponse = Csi.V1.ListVolumesResponse;
using CsiListSnapshotsResponse = Csi.V1.ListSnapshotsResponse;
using CsiGetCapacityResponse = Csi.V1.GetCapacityResponse;
using CsiDeleteVolumeResponse = Csi.V1.DeleteVolumeResponse;
using CsiDeleteSnapshotResponse = Csi.V1.DeleteSnapshotResponse;
using CsiVolumeCondition = Csi.V1.VolumeCondition;
using EngineVolumeInfo = CsiScst.Engine.V1.VolumeInfo;
using EngineSnapshotInfo = CsiScst.Engine.V1.SnapshotInfo;
using EngineListSnapshotsRequest = CsiScst.Engine.V1.ListSnapshotsRequest;
using CsiScst.Csi;

namespace CsiScst.Csi.Controller;

/// <summary>
/// CSI Controller. Every RPC reads the same way: validate → check the capability is advertised →
/// lock → look up → act → answer. The controller keeps no state: the volume id names the storage node,
/// pool and key, and each engine is declarative, so a retried or interrupted call converges.
/// </summary>
public sealed class ControllerService : global::Csi.V1.Controller.ControllerBase
{
    /// <summary>Entries asked from one engine per call while paging or scanning.</summary>
    private const int EnginePage = 1000;

    private readonly CsiCapabilities _capabilities;
    private readonly ControllerOptions _options;
    private readonly ObjectNames _names;
    private readonly EngineRegistry _engines;
    private readonly ChapSecrets _chap;
    private readonly ControllerFaults _faults;
    private readonly ILogger<ControllerService> _logger;
    private readonly KeyedLocks _locks = new();

    public ControllerService(CsiCapabilities capabilities, ControllerOptions options, DriverOptions driver, EngineRegistry engines,
        ChapSecrets chap, ControllerFaults faults, ILogger<ControllerService> logger)
    {
        _capabilities = capabilities;
        _options = options;
        _names = new ObjectNames(driver.InstanceId, driver.IqnPrefix);
        _engines = engines;
        _chap = chap;
        _faults = faults;
        _logger = logger;
    }

    public override Task<ControllerGetCapabilitiesResponse> ControllerGetCapabilities(ControllerGetCapabilitiesRequest request, ServerCallContext context)
    {
        var response = new ControllerGetCapabilitiesResponse();
        foreach (var rpc in _capabilities.Controller.Order())
        {
            response.Capabilities.Add(new ControllerServiceCapability { Rpc = new ControllerServiceCapability.Types.RPC { Type = rpc } });
        }
        return Task.FromResult(response);
    }

    // ------------------------------------------------------------------------------------------ volumes

    public override async Task<CreateVolumeResponse> CreateVolume(CreateVolumeRequest request, ServerCallContext context)
    {
        CsiValidation.RequireName(request.Name, "name");
        CsiValidation.RequireCapabilities(request.VolumeCapabilities);
        CsiValidation.CheckCapacityRange(request.CapacityRange);
        CsiValidation.CheckMap(request.Parameters, "parameters");
        CsiValidation.CheckMap(request.MutableParameters, "mutable_parameters");
        CsiValidation.CheckMap(request.Secrets, "secrets", secret: true);
        CsiValidation.CheckContentSource(request.VolumeContentSource);
        Require(Rpc.CreateDeleteVolume, "CreateVolume");
        if (request.MutableParameters.Count > 0)
        {
            throw StatusException.InvalidArgument(
                $"mutable_parameters ({string.Join(", ", request.MutableParameters.Keys)}) are not supported: this plugin does not offer ControllerModifyVolume");
        }
        var parameters = VolumeParameters.Parse(request.Parameters);
        var ct = context.CancellationToken;
        var key = _names.VolumeKey(request.Name);
        using var held = _locks.TryAcquire("volume-name:" + key, $"volume name '{request.Name}'");

        var source = await ResolveSourceAsync(request.VolumeContentSource, ct).ConfigureAwait(false);
        var poolName = source?.Pool ?? parameters.Pool ?? _options.DefaultPool
            ?? throw StatusException.InvalidArgument("StorageClass parameter 'pool' is required: no default pool is configured (controller flag --default-pool)");
        if (source is not null)
        {
            if (parameters.Pool is { } askedPool && askedPool != source.Pool)
            {
                throw StatusException.InvalidArgument(
                    $"the content source lives in pool '{source.Pool}' on target node {source.Engine.NodeId}, but parameter pool='{askedPool}': a copy is made by the storage backend next to its source, so it can only be created in the same pool on the same node (use a StorageClass for that pool)");
            }
            if (parameters.TargetNode is { } askedNode && askedNode != source.Engine.NodeId)
            {
                throw StatusException.InvalidArgument(
                    $"the content source lives on target node {source.Engine.NodeId}, but parameter targetNode='{askedNode}': snapshots and clones are made by the storage backend on the source's node and cannot be created on another one");
            }
        }

        EngineHandle engine;
        if (source is not null)
        {
            engine = source.Engine;
            if (_options.Topology && !Placement.Allowed(engine.Info.Topology, request.AccessibilityRequirements))
            {
                throw StatusException.InvalidArgument(
                    $"the content source lives on target node {engine.NodeId}, outside the zones the accessibility requirements allow; a copy can only be made on its source's node");
            }
        }
        else if (parameters.TargetNode is { } targetNode)
        {
            if (_options.ForgottenTargets.Contains(targetNode))
            {
                throw StatusException.InvalidArgument($"parameter targetNode='{targetNode}' names a storage node this controller was told to forget (--forget-target)");
            }
            engine = await _engines.ForNodeAsync(targetNode, ct).ConfigureAwait(false);
            if (_options.Topology && !Placement.Allowed(engine.Info.Topology, request.AccessibilityRequirements))
            {
                throw StatusException.ResourceExhausted(
                    $"parameter targetNode='{targetNode}' names a node outside the zones the accessibility requirements allow");
            }
        }
        else
        {
            var view = await _engines.GetAsync(fresh: true, ct).ConfigureAwait(false);
            engine = await FindExistingAsync(view, key, poolName, ct).ConfigureAwait(false)
                ?? Placement.Choose(view, poolName, request.AccessibilityRequirements, _options.Topology,
                    p => Capacity.Choose(request.CapacityRange, _options.DefaultVolumeSizeBytes, p.GranularityBytes));
        }

        var pool = engine.Pool(poolName) ?? throw StatusException.InvalidArgument(
            $"target node {engine.NodeId} has no pool '{poolName}' (its pools: {string.Join(", ", engine.Info.Pools.Select(p => p.Name))})");
        parameters.CheckBackend(pool.Backend, poolName);
        var size = Capacity.Choose(request.CapacityRange, _options.DefaultVolumeSizeBytes, pool.GranularityBytes, source?.MinimumBytes ?? 0);
        var volumeId = new VolumeId(_names.InstanceId, engine.NodeId, pool.Backend, poolName, key);
        if (volumeId.ToString().Length > VolumeId.MaxLength)
        {
            throw StatusException.InvalidArgument(
                $"the volume id '{volumeId}' would be {volumeId.ToString().Length} bytes, above the CSI limit of {VolumeId.MaxLength}: shorten the storage node id '{engine.NodeId}' or the pool name '{poolName}'");
        }

        var chap = parameters.Chap switch
        {
            ChapMode.Static => ChapSecrets.FromSecrets(request.Secrets),
            ChapMode.Generated => await _chap.EnsureGeneratedAsync(
                parameters.PvName ?? throw StatusException.InvalidArgument(
                    $"parameter chap=generated names the Secret after the PersistentVolume, but CreateVolume has no parameter {VolumeParameters.PvNameKey}: run the external-provisioner with --extra-create-metadata"),
                key, ct).ConfigureAwait(false),
            _ => null,
        };
        if (parameters.Chap == ChapMode.Generated)
        {
            _faults.Reach(ControllerFaults.CreateAfterChapSecret);
        }

        var ensure = new EnsureVolumeRequest
        {
            Key = key,
            Name = request.Name,
            Pool = poolName,
            RequiredBytes = size,
            LimitBytes = request.CapacityRange?.LimitBytes ?? 0,
            Source = source?.Content,
            Options = new ExportOptions
            {
                BlockSize = parameters.BlockSize,
                WriteCache = parameters.WriteCache,
                ThinProvisioned = parameters.ThinProvisioned,
                Chap = chap,
            },
        };
        foreach (var (k, v) in parameters.BackendParameters)
        {
            ensure.Parameters[k] = v;
        }
        var info = await engine.EnsureVolumeAsync(ensure, ct).ConfigureAwait(false);
        _faults.Reach(ControllerFaults.CreateAfterEnsureVolume);
        _logger.LogInformation("Volume {VolumeId} ({Name}) is on target node {TargetNode}, pool {Pool}, {CapacityBytes} bytes",
            volumeId, request.Name, engine.NodeId, poolName, info.CapacityBytes);

        var volume = new Volume
        {
            VolumeId = volumeId.ToString(),
            CapacityBytes = info.CapacityBytes,
            ContentSource = request.VolumeContentSource,
        };
        volume.VolumeContext.Add(VolumeContext(engine, key, info, parameters, chap, source?.Kind));
        if (Topology(engine) is { } topology)
        {
            volume.AccessibleTopology.Add(topology);
        }
        return new CreateVolumeResponse { Volume = volume };
    }

    public override async Task<CsiDeleteVolumeResponse> DeleteVolume(global::Csi.V1.DeleteVolumeRequest request, ServerCallContext context)
    {
        CsiValidation.RequireId(request.VolumeId, "volume_id");
        CsiValidation.CheckMap(request.Secrets, "secrets", secret: true);
        Require(Rpc.CreateDeleteVolume, "DeleteVolume");
        var ct = context.CancellationToken;
        if (ParseVolume(request.VolumeId) is not { } id)
        {
            _logger.LogInformation("DeleteVolume: {VolumeId} is not a volume of this instance; nothing to delete", request.VolumeId);
            return new CsiDeleteVolumeResponse();
        }
        using var held = _locks.TryAcquire("volume:" + id, $"volume {id}");
        if (_options.ForgottenTargets.Contains(id.TargetNode))
        {
            _logger.LogWarning("DeleteVolume {VolumeId}: target node {TargetNode} was forgotten (--forget-target); reporting success without touching it",
                id, id.TargetNode);
            await _chap.DeleteGeneratedAsync(id.Key, ct).ConfigureAwait(false);
            return new CsiDeleteVolumeResponse();
        }
        var engine = await _engines.ForNodeAsync(id.TargetNode, ct).ConfigureAwait(false);
        // A volume without CHAP has no generated Secret; one already gone may be a retry after a crash
        // between the two steps below, so its Secret is looked for too.
        var existing = await engine.GetVolumeAsync(id.Key, id.Pool, ct).ConfigureAwait(false);
        await engine.DeleteVolumeAsync(id.Key, id.Pool, ct).ConfigureAwait(false);
        _faults.Reach(ControllerFaults.DeleteAfterEngineDelete);
        if (existing is null || existing.ChapEnabled)
        {
            await _chap.DeleteGeneratedAsync(id.Key, ct).ConfigureAwait(false);
        }
        _logger.LogInformation("Volume {VolumeId} deleted", id);
        return new CsiDeleteVolumeResponse();
    }

    public override async Task<ControllerPublishVolumeResponse> ControllerPublishVolume(ControllerPublishVolumeRequest request, ServerCallContext context)
    {
        CsiValidation.RequireId(request.VolumeId, "volume_id");
        CsiValidation.RequireId(request.NodeId, "node_id", CsiValidation.MaxNodeIdBytes);
        CsiValidation.RequireCapability(request.VolumeCapability);
        CsiValidation.CheckMap(request.VolumeContext, "volume_context");
        CsiValidation.CheckMap(request.Secrets, "secrets", secret: true);
        Require(Rpc.PublishUnpublishVolume, "ControllerPublishVolume");
        var ct = context.CancellationToken;
        var id = ParseVolume(request.VolumeId) ?? throw VolumeNotFound(request.VolumeId);
        if (!NodeId.TryParse(request.NodeId, out var node))
        {
            throw StatusException.NotFound(
                $"node '{request.NodeId}' is not a csi-scst node id (<node-name>/<initiator-iqn>, as the node plugin reports in NodeGetInfo)");
        }
        if (_options.ForgottenTargets.Contains(id.TargetNode))
        {
            throw StatusException.NotFound($"volume {id} lives on target node {id.TargetNode}, which this controller was told to forget (--forget-target)");
        }
        using var held = _locks.TryAcquire("volume:" + id, $"volume {id}");
        var mode = request.VolumeCapability.AccessMode.Mode;
        var readOnly = request.Readonly || CsiValidation.IsReadOnlyMode(mode);
        var engine = await _engines.ForNodeAsync(id.TargetNode, ct).ConfigureAwait(false);
        var current = await engine.GetVolumeAsync(id.Key, id.Pool, ct).ConfigureAwait(false) ?? throw VolumeNotFound(request.VolumeId);
        if (current.Access.FirstOrDefault(a => a.NodeId == node.ToString()) is { } existing && existing.ReadOnly != readOnly)
        {
            throw StatusException.AlreadyExists(
                $"volume {id} is already published to node {node} {(existing.ReadOnly ? "read-only" : "read-write")}; unpublish it before publishing it {(readOnly ? "read-only" : "read-write")}");
        }
        var info = await engine.EnsureAccessAsync(new EnsureAccessRequest
        {
            Key = id.Key,
            Pool = id.Pool,
            NodeId = node.ToString(),
            InitiatorIqn = node.InitiatorIqn,
            ReadOnly = readOnly,
            Exclusive = CsiValidation.IsSingleNode(mode),
        }, ct).ConfigureAwait(false);
        _faults.Reach(ControllerFaults.PublishAfterEnsureAccess);
        var portals = info.Portals.Count > 0 ? info.Portals : engine.Info.Portals;
        if (portals.Count == 0 || string.IsNullOrEmpty(info.TargetIqn))
        {
            throw StatusException.Internal($"target node {engine.NodeId} exported volume {id} but reported no portal or target IQN; check its --portal flags");
        }
        _logger.LogInformation("Volume {VolumeId} published to node {NodeName} (initiator {InitiatorIqn}, {Access})",
            id, node.NodeName, node.InitiatorIqn, readOnly ? "read-only" : "read-write");
        return new ControllerPublishVolumeResponse
        {
            PublishContext =
            {
                [VolumeContextKeys.Portals] = string.Join(',', portals),
                [VolumeContextKeys.TargetIqn] = info.TargetIqn,
                [VolumeContextKeys.Lun] = info.Lun.ToString(CultureInfo.InvariantCulture),
            },
        };
    }

    public override async Task<ControllerUnpublishVolumeResponse> ControllerUnpublishVolume(ControllerUnpublishVolumeRequest request, ServerCallContext context)
    {
        CsiValidation.RequireId(request.VolumeId, "volume_id");
        if (request.NodeId.Length > 0)
        {
            CsiValidation.RequireId(request.NodeId, "node_id", CsiValidation.MaxNodeIdBytes);
        }
        CsiValidation.CheckMap(request.Secrets, "secrets", secret: true);
        Require(Rpc.PublishUnpublishVolume, "ControllerUnpublishVolume");
        var ct = context.CancellationToken;
        if (ParseVolume(request.VolumeId) is not { } id)
        {
            // Never published: Publish refuses ids that are not ours.
            return new ControllerUnpublishVolumeResponse();
        }
        NodeId? node = null;
        if (request.NodeId.Length > 0 && !NodeId.TryParse(request.NodeId, out node))
        {
            return new ControllerUnpublishVolumeResponse();
        }
        using var held = _locks.TryAcquire("volume:" + id, $"volume {id}");
        if (_options.ForgottenTargets.Contains(id.TargetNode))
        {
            _logger.LogWarning("ControllerUnpublishVolume {VolumeId}: target node {TargetNode} was forgotten (--forget-target); reporting success without touching it",
                id, id.TargetNode);
            return new ControllerUnpublishVolumeResponse();
        }
        var engine = await _engines.ForNodeAsync(id.TargetNode, ct).ConfigureAwait(false);
        if (node is not null)
        {
            await RevokeAsync(engine, id, node.ToString(), node.InitiatorIqn, ct).ConfigureAwait(false);
        }
        else if (await engine.GetVolumeAsync(id.Key, id.Pool, ct).ConfigureAwait(false) is { } volume)
        {
            foreach (var access in volume.Access)
            {
                await RevokeAsync(engine, id, access.NodeId, access.InitiatorIqn, ct).ConfigureAwait(false);
            }
        }
        _logger.LogInformation("Volume {VolumeId} unpublished from {Node}", id, node?.ToString() ?? "every node");
        return new ControllerUnpublishVolumeResponse();
    }

    public override async Task<ValidateVolumeCapabilitiesResponse> ValidateVolumeCapabilities(ValidateVolumeCapabilitiesRequest request, ServerCallContext context)
    {
        CsiValidation.RequireId(request.VolumeId, "volume_id");
        // Capabilities are checked here for presence only: an unsupported one is an answer ("not confirmed"), not an error.
        if (request.VolumeCapabilities.Count == 0)
        {
            throw StatusException.InvalidArgument("volume_capabilities is required and must not be empty");
        }
        CsiValidation.CheckMap(request.VolumeContext, "volume_context");
        CsiValidation.CheckMap(request.Parameters, "parameters");
        CsiValidation.CheckMap(request.Secrets, "secrets", secret: true);
        Require(Rpc.CreateDeleteVolume, "ValidateVolumeCapabilities");
        var id = ParseVolume(request.VolumeId) ?? throw VolumeNotFound(request.VolumeId);
        if (_options.ForgottenTargets.Contains(id.TargetNode))
        {
            throw VolumeNotFound(request.VolumeId);
        }
        var engine = await _engines.ForNodeAsync(id.TargetNode, context.CancellationToken).ConfigureAwait(false);
        var volume = await engine.GetVolumeAsync(id.Key, id.Pool, context.CancellationToken).ConfigureAwait(false)
            ?? throw VolumeNotFound(request.VolumeId);
        try
        {
            for (var i = 0; i < request.VolumeCapabilities.Count; i++)
            {
                CsiValidation.CheckCapability(request.VolumeCapabilities[i], $"volume_capabilities[{i}]");
            }
            VolumeParameters.Parse(request.Parameters);
            if (request.VolumeContext.TryGetValue(VolumeContextKeys.Serial, out var serial) && volume.Serial.Length > 0 && serial != volume.Serial)
            {
                throw StatusException.InvalidArgument($"volume_context {VolumeContextKeys.Serial}='{serial}' does not match the volume's serial '{volume.Serial}'");
            }
        }
        catch (StatusException e) when (e.Code == StatusCode.InvalidArgument)
        {
            return new ValidateVolumeCapabilitiesResponse { Message = e.Message };
        }
        var confirmed = new ValidateVolumeCapabilitiesResponse.Types.Confirmed();
        confirmed.VolumeCapabilities.Add(request.VolumeCapabilities);
        confirmed.VolumeContext.Add(request.VolumeContext);
        confirmed.Parameters.Add(request.Parameters);
        return new ValidateVolumeCapabilitiesResponse { Confirmed = confirmed };
    }

    public override async Task<CsiListVolumesResponse> ListVolumes(global::Csi.V1.ListVolumesRequest request, ServerCallContext context)
    {
        CsiValidation.CheckMaxEntries(request.MaxEntries);
        Require(Rpc.ListVolumes, "ListVolumes");
        var ct = context.CancellationToken;
        var view = await _engines.GetAsync(fresh: false, ct).ConfigureAwait(false);
        WarnSkipped(view, "ListVolumes");
        var (items, next) = await PageAsync<EngineVolumeInfo>(view.Usable, request.MaxEntries, request.StartingToken, async (engine, max, token) =>
        {
            var page = await engine.ListVolumesAsync(max, token, ct).ConfigureAwait(false);
            return ((IList<EngineVolumeInfo>)page.Volumes, page.NextToken);
        }).ConfigureAwait(false);
        var response = new CsiListVolumesResponse { NextToken = next };
        foreach (var (engine, info) in items)
        {
            if (!Names.IsValidPoolName(info.Pool) || !Names.IsValidBackend(info.Backend) || !Names.IsValidKey(info.Key))
            {
                _logger.LogWarning("ListVolumes: target node {TargetNode} reports a volume with key '{Key}', pool '{Pool}', backend '{Backend}' that cannot form a volume id; skipped",
                    engine.NodeId, info.Key, info.Pool, info.Backend);
                continue;
            }
            var id = new VolumeId(_names.InstanceId, engine.NodeId, info.Backend, info.Pool, info.Key);
            response.Entries.Add(new global::Csi.V1.ListVolumesResponse.Types.Entry
            {
                Volume = ListedVolume(engine, id, info),
                Status = Status(info),
            });
        }
        return response;
    }

    public override async Task<ControllerGetVolumeResponse> ControllerGetVolume(ControllerGetVolumeRequest request, ServerCallContext context)
    {
        CsiValidation.RequireId(request.VolumeId, "volume_id");
        Require(Rpc.GetVolume, "ControllerGetVolume");
        var id = ParseVolume(request.VolumeId) ?? throw VolumeNotFound(request.VolumeId);
        if (_options.ForgottenTargets.Contains(id.TargetNode))
        {
            throw VolumeNotFound(request.VolumeId);
        }
        EngineHandle engine;
        try
        {
            engine = await _engines.ForNodeAsync(id.TargetNode, context.CancellationToken).ConfigureAwait(false);
        }
        catch (StatusException e) when (e.Code == StatusCode.Unavailable)
        {
            // An unreachable storage node is exactly what the volume condition is for.
            return new ControllerGetVolumeResponse
            {
                Volume = new Volume { VolumeId = id.ToString() },
                Status = new ControllerGetVolumeResponse.Types.VolumeStatus
                {
                    VolumeCondition = new CsiVolumeCondition { Abnormal = true, Message = e.Message },
                },
            };
        }
        var info = await engine.GetVolumeAsync(id.Key, id.Pool, context.CancellationToken).ConfigureAwait(false)
            ?? throw VolumeNotFound(request.VolumeId);
        var status = Status(info);
        return new ControllerGetVolumeResponse
        {
            Volume = ListedVolume(engine, id, info),
            Status = new ControllerGetVolumeResponse.Types.VolumeStatus
            {
                PublishedNodeIds = { status.PublishedNodeIds },
                VolumeCondition = status.VolumeCondition,
            },
        };
    }

    public override async Task<CsiGetCapacityResponse> GetCapacity(global::Csi.V1.GetCapacityRequest request, ServerCallContext context)
    {
        for (var i = 0; i < request.VolumeCapabilities.Count; i++)
        {
            CsiValidation.CheckCapability(request.VolumeCapabilities[i], $"volume_capabilities[{i}]");
        }
        CsiValidation.CheckMap(request.Parameters, "parameters");
        Require(Rpc.GetCapacity, "GetCapacity");
        var parameters = VolumeParameters.Parse(request.Parameters);
        var pool = parameters.Pool ?? _options.DefaultPool;
        var ct = context.CancellationToken;
        var view = await _engines.GetAsync(fresh: false, ct).ConfigureAwait(false);
        var engines = view.Usable
            .Where(e => parameters.TargetNode is null || e.NodeId == parameters.TargetNode)
            .Where(e => pool is null || e.Pool(pool) is not null)
            .Where(e => !_options.Topology || request.AccessibleTopology is null || e.Info.Topology.Count == 0
                || Placement.Matches(e.Info.Topology, request.AccessibleTopology))
            .ToArray();
        var answers = await Task.WhenAll(engines.Select(async e =>
        {
            try
            {
                return await e.GetCapacityAsync(pool ?? "", ct).ConfigureAwait(false);
            }
            catch (StatusException ex) when (ex.Code == StatusCode.Unavailable)
            {
                _logger.LogDebug("GetCapacity: {TargetNode} did not answer: {Error}", e.NodeId, ex.Message);
                return null;
            }
        })).ConfigureAwait(false);
        var response = new CsiGetCapacityResponse();
        foreach (var answer in answers.OfType<CsiScst.Engine.V1.GetCapacityResponse>())
        {
            response.AvailableCapacity += answer.AvailableBytes;
            if (answer.MaximumVolumeSize > (response.MaximumVolumeSize ?? 0))
            {
                response.MaximumVolumeSize = answer.MaximumVolumeSize;
            }
            if (answer.MinimumVolumeSize > 0 && (response.MinimumVolumeSize is null || answer.MinimumVolumeSize < response.MinimumVolumeSize))
            {
                response.MinimumVolumeSize = answer.MinimumVolumeSize;
            }
        }
        return response;
    }

    public override async Task<ControllerExpandVolumeResponse> ControllerExpandVolume(ControllerExpandVolumeRequest request, ServerCallContext context)
    {
        CsiValidation.RequireId(request.VolumeId, "volume_id");
        if (request.CapacityRange is null)
        {
            throw StatusException.InvalidArgument("capacity_range is required");
        }
        CsiValidation.CheckCapacityRange(request.CapacityRange);
        if (request.VolumeCapability is not null)
        {
            CsiValidation.CheckCapability(request.VolumeCapability, "volume_capability");
        }
        CsiValidation.CheckMap(request.Secrets, "secrets", secret: true);
        Require(Rpc.ExpandVolume, "ControllerExpandVolume");
        if (request.CapacityRange.RequiredBytes == 0)
        {
            throw StatusException.InvalidArgument("capacity_range.required_bytes must be set to the new size");
        }
        var id = ParseVolume(request.VolumeId) ?? throw VolumeNotFound(request.VolumeId);
        if (_options.ForgottenTargets.Contains(id.TargetNode))
        {
            throw StatusException.NotFound($"volume {id} lives on target node {id.TargetNode}, which this controller was told to forget (--forget-target)");
        }
        using var held = _locks.TryAcquire("volume:" + id, $"volume {id}");
        var engine = await _engines.ForNodeAsync(id.TargetNode, context.CancellationToken).ConfigureAwait(false);
        var granularity = engine.Pool(id.Pool)?.GranularityBytes ?? 1;
        var size = Capacity.Choose(request.CapacityRange, request.CapacityRange.RequiredBytes, granularity);
        var capacity = await engine.ExpandVolumeAsync(id.Key, id.Pool, size, request.CapacityRange.LimitBytes, context.CancellationToken)
            .ConfigureAwait(false);
        _logger.LogInformation("Volume {VolumeId} expanded to {CapacityBytes} bytes", id, capacity);
        // Block volumes need the node too: the initiator sees the new size only after it rescans its iSCSI
        // session, and NodeExpandVolume is where the node plugin does that (filesystems are grown there as well).
        return new ControllerExpandVolumeResponse { CapacityBytes = capacity, NodeExpansionRequired = true };
    }

    public override Task<ControllerModifyVolumeResponse> ControllerModifyVolume(ControllerModifyVolumeRequest request, ServerCallContext context)
    {
        CsiValidation.RequireId(request.VolumeId, "volume_id");
        CsiValidation.CheckMap(request.MutableParameters, "mutable_parameters");
        CsiValidation.CheckMap(request.Secrets, "secrets", secret: true);
        Require(Rpc.ModifyVolume, "ControllerModifyVolume");
        throw StatusException.Unimplemented("ControllerModifyVolume is not implemented");
    }

    // ---------------------------------------------------------------------------------------- snapshots

    public override async Task<CreateSnapshotResponse> CreateSnapshot(CreateSnapshotRequest request, ServerCallContext context)
    {
        CsiValidation.RequireId(request.SourceVolumeId, "source_volume_id");
        CsiValidation.RequireName(request.Name, "name");
        CsiValidation.CheckMap(request.Parameters, "parameters");
        CsiValidation.CheckMap(request.Secrets, "secrets", secret: true);
        Require(Rpc.CreateDeleteSnapshot, "CreateSnapshot");
        var ct = context.CancellationToken;
        var source = ParseVolume(request.SourceVolumeId) ?? throw VolumeNotFound(request.SourceVolumeId);
        if (_options.ForgottenTargets.Contains(source.TargetNode))
        {
            throw VolumeNotFound(request.SourceVolumeId);
        }
        var snapshotKey = _names.SnapshotKey(request.Name);
        using var held = _locks.TryAcquire("snapshot-name:" + snapshotKey, $"snapshot name '{request.Name}'");
        var engine = await _engines.ForNodeAsync(source.TargetNode, ct).ConfigureAwait(false);

        // The key comes from the name alone, so the same name used for another volume shows up anywhere.
        var view = await _engines.GetAsync(fresh: false, ct).ConfigureAwait(false);
        foreach (var other in view.Usable)
        {
            var found = await ScanSnapshotsAsync(other, new EngineListSnapshotsRequest { SnapshotKey = snapshotKey }, ct).ConfigureAwait(false);
            var clash = found.FirstOrDefault(s => other.NodeId != source.TargetNode || s.VolumeKey != source.Key || s.Pool != source.Pool);
            if (clash is not null)
            {
                throw StatusException.AlreadyExists(
                    $"snapshot name '{request.Name}' is already used for volume key {clash.VolumeKey} in pool {clash.Pool} on target node {other.NodeId}, not for {source}");
            }
        }

        var ensure = new EnsureSnapshotRequest { VolumeKey = source.Key, Pool = source.Pool, SnapshotKey = snapshotKey, Name = request.Name };
        foreach (var (k, v) in request.Parameters.Where(p => !p.Key.StartsWith(VolumeParameters.ProvisionerPrefix, StringComparison.Ordinal)))
        {
            ensure.Parameters[k] = v;
        }
        var info = await engine.EnsureSnapshotAsync(ensure, ct).ConfigureAwait(false);
        _logger.LogInformation("Snapshot {SnapshotName} of volume {VolumeId} is {SnapshotKey}, ready {Ready}", request.Name, source, snapshotKey, info.ReadyToUse);
        return new CreateSnapshotResponse { Snapshot = Snapshot(source, info) };
    }

    public override async Task<CsiDeleteSnapshotResponse> DeleteSnapshot(global::Csi.V1.DeleteSnapshotRequest request, ServerCallContext context)
    {
        CsiValidation.RequireId(request.SnapshotId, "snapshot_id");
        CsiValidation.CheckMap(request.Secrets, "secrets", secret: true);
        Require(Rpc.CreateDeleteSnapshot, "DeleteSnapshot");
        if (ParseSnapshot(request.SnapshotId) is not { } id)
        {
            return new CsiDeleteSnapshotResponse();
        }
        using var held = _locks.TryAcquire("snapshot:" + id, $"snapshot {id}");
        if (_options.ForgottenTargets.Contains(id.TargetNode))
        {
            _logger.LogWarning("DeleteSnapshot {SnapshotId}: target node {TargetNode} was forgotten (--forget-target); reporting success without touching it",
                id, id.TargetNode);
            return new CsiDeleteSnapshotResponse();
        }
        var engine = await _engines.ForNodeAsync(id.TargetNode, context.CancellationToken).ConfigureAwait(false);
        await engine.DeleteSnapshotAsync(id.VolumeKey, id.Pool, id.SnapshotKey, context.CancellationToken).ConfigureAwait(false);
        _logger.LogInformation("Snapshot {SnapshotId} deleted", id);
        return new CsiDeleteSnapshotResponse();
    }

    public override async Task<CsiListSnapshotsResponse> ListSnapshots(global::Csi.V1.ListSnapshotsRequest request, ServerCallContext context)
    {
        CsiValidation.CheckMaxEntries(request.MaxEntries);
        CsiValidation.CheckMap(request.Secrets, "secrets", secret: true);
        Require(Rpc.ListSnapshots, "ListSnapshots");
        var ct = context.CancellationToken;
        var response = new CsiListSnapshotsResponse();
        IReadOnlyList<EngineHandle> engines;
        var filter = new EngineListSnapshotsRequest();
        if (request.SnapshotId.Length > 0)
        {
            if (ParseSnapshot(request.SnapshotId) is not { } sid || _options.ForgottenTargets.Contains(sid.TargetNode)
                || (request.SourceVolumeId.Length > 0 && request.SourceVolumeId != sid.SourceVolume.ToString()))
            {
                return response;
            }
            engines = [await _engines.ForNodeAsync(sid.TargetNode, ct).ConfigureAwait(false)];
            filter.VolumeKey = sid.VolumeKey;
            filter.SnapshotKey = sid.SnapshotKey;
        }
        else if (request.SourceVolumeId.Length > 0)
        {
            if (ParseVolume(request.SourceVolumeId) is not { } vid || _options.ForgottenTargets.Contains(vid.TargetNode))
            {
                return response;
            }
            engines = [await _engines.ForNodeAsync(vid.TargetNode, ct).ConfigureAwait(false)];
            filter.VolumeKey = vid.Key;
        }
        else
        {
            var view = await _engines.GetAsync(fresh: false, ct).ConfigureAwait(false);
            WarnSkipped(view, "ListSnapshots");
            engines = view.Usable;
        }
        var (items, next) = await PageAsync<EngineSnapshotInfo>(engines, request.MaxEntries, request.StartingToken, async (engine, max, token) =>
        {
            var page = filter.Clone();
            page.MaxEntries = max;
            page.StartingToken = token;
            var answer = await engine.ListSnapshotsAsync(page, ct).ConfigureAwait(false);
            return ((IList<EngineSnapshotInfo>)answer.Snapshots, answer.NextToken);
        }).ConfigureAwait(false);
        response.NextToken = next;
        foreach (var (engine, info) in items)
        {
            if (engine.Pool(info.Pool)?.Backend is not { } backend || !Names.IsValidKey(info.VolumeKey) || !Names.IsValidKey(info.SnapshotKey))
            {
                _logger.LogWarning("ListSnapshots: target node {TargetNode} reports snapshot {SnapshotKey} in unknown pool '{Pool}'; skipped",
                    engine.NodeId, info.SnapshotKey, info.Pool);
                continue;
            }
            // Filters are applied by the engine; checked again so a lenient engine never widens the answer.
            if ((filter.VolumeKey.Length > 0 && info.VolumeKey != filter.VolumeKey) || (filter.SnapshotKey.Length > 0 && info.SnapshotKey != filter.SnapshotKey))
            {
                continue;
            }
            var volume = new VolumeId(_names.InstanceId, engine.NodeId, backend, info.Pool, info.VolumeKey);
            response.Entries.Add(new global::Csi.V1.ListSnapshotsResponse.Types.Entry { Snapshot = Snapshot(volume, info) });
        }
        return response;
    }

    public override async Task<GetSnapshotResponse> GetSnapshot(GetSnapshotRequest request, ServerCallContext context)
    {
        CsiValidation.RequireId(request.SnapshotId, "snapshot_id");
        CsiValidation.CheckMap(request.Secrets, "secrets", secret: true);
        Require(Rpc.GetSnapshot, "GetSnapshot");
        var id = ParseSnapshot(request.SnapshotId) ?? throw SnapshotNotFound(request.SnapshotId);
        if (_options.ForgottenTargets.Contains(id.TargetNode))
        {
            throw SnapshotNotFound(request.SnapshotId);
        }
        var engine = await _engines.ForNodeAsync(id.TargetNode, context.CancellationToken).ConfigureAwait(false);
        var found = await ScanSnapshotsAsync(engine, new EngineListSnapshotsRequest { VolumeKey = id.VolumeKey, SnapshotKey = id.SnapshotKey },
            context.CancellationToken).ConfigureAwait(false);
        var info = found.FirstOrDefault(s => s.VolumeKey == id.VolumeKey && s.SnapshotKey == id.SnapshotKey && s.Pool == id.Pool)
            ?? throw SnapshotNotFound(request.SnapshotId);
        return new GetSnapshotResponse { Snapshot = Snapshot(id.SourceVolume, info) };
    }

    // ------------------------------------------------------------------------------------------ helpers

    private sealed record SourcePlan(EngineHandle Engine, string Pool, ContentSource Content, long MinimumBytes, string Kind);

    /// <summary>The engine, pool and size of a content source; NOT_FOUND when it does not exist.</summary>
    private async Task<SourcePlan?> ResolveSourceAsync(VolumeContentSource? source, CancellationToken ct)
    {
        switch (source?.TypeCase)
        {
            case VolumeContentSource.TypeOneofCase.Snapshot:
            {
                var id = ParseSnapshot(source.Snapshot.SnapshotId);
                if (id is null || _options.ForgottenTargets.Contains(id.TargetNode))
                {
                    throw SnapshotNotFound(source.Snapshot.SnapshotId);
                }
                var engine = await _engines.ForNodeAsync(id.TargetNode, ct).ConfigureAwait(false);
                var found = await ScanSnapshotsAsync(engine, new EngineListSnapshotsRequest { VolumeKey = id.VolumeKey, SnapshotKey = id.SnapshotKey }, ct)
                    .ConfigureAwait(false);
                var snapshot = found.FirstOrDefault(s => s.SnapshotKey == id.SnapshotKey && s.VolumeKey == id.VolumeKey && s.Pool == id.Pool)
                    ?? throw SnapshotNotFound(source.Snapshot.SnapshotId);
                if (!snapshot.ReadyToUse)
                {
                    throw StatusException.Unavailable($"snapshot {id} is not ready to use yet; retry");
                }
                return new SourcePlan(engine, id.Pool,
                    new ContentSource { Snapshot = new ContentSource.Types.FromSnapshot { VolumeKey = id.VolumeKey, SnapshotKey = id.SnapshotKey } },
                    snapshot.SizeBytes, "snapshot");
            }
            case VolumeContentSource.TypeOneofCase.Volume:
            {
                var id = ParseVolume(source.Volume.VolumeId);
                if (id is null || _options.ForgottenTargets.Contains(id.TargetNode))
                {
                    throw VolumeNotFound(source.Volume.VolumeId);
                }
                var engine = await _engines.ForNodeAsync(id.TargetNode, ct).ConfigureAwait(false);
                var volume = await engine.GetVolumeAsync(id.Key, id.Pool, ct).ConfigureAwait(false) ?? throw VolumeNotFound(source.Volume.VolumeId);
                return new SourcePlan(engine, id.Pool,
                    new ContentSource { Volume = new ContentSource.Types.FromVolume { VolumeKey = id.Key } },
                    volume.CapacityBytes, "volume");
            }
            default:
                return null;
        }
    }

    /// <summary>
    /// Where an earlier attempt of this CreateVolume already put the volume (a retry after a lost answer or a
    /// controller restart must land on the same node, whatever free capacity says now).
    /// </summary>
    private async Task<EngineHandle?> FindExistingAsync(EngineView view, string key, string pool, CancellationToken ct)
    {
        var candidates = view.Usable.Where(e => e.Pool(pool) is not null).ToArray();
        var found = await Task.WhenAll(candidates.Select(async e =>
        {
            try
            {
                return await e.GetVolumeAsync(key, pool, ct).ConfigureAwait(false) is null ? null : e;
            }
            catch (StatusException ex) when (ex.Code == StatusCode.Unavailable)
            {
                _logger.LogWarning("CreateVolume: could not ask {TargetNode} whether volume key {Key} exists: {Error}", e.NodeId, key, ex.Message);
                return null;
            }
        })).ConfigureAwait(false);
        var holders = found.OfType<EngineHandle>().ToArray();
        if (holders.Length > 1)
        {
            throw StatusException.Internal(
                $"volume key {key} exists on several target nodes ({string.Join(", ", holders.Select(h => h.NodeId))}); delete the extra one by hand");
        }
        if (holders.Length == 0 && view.Unusable.Count > 0)
        {
            // A node that is down may hold an earlier attempt; placing elsewhere could leave that copy behind.
            _logger.LogWarning("CreateVolume: volume key {Key} is on no reachable target node; placing it although these cannot be asked: {Problems}",
                key, view.DescribeProblems());
        }
        return holders.FirstOrDefault();
    }

    private async Task RevokeAsync(EngineHandle engine, VolumeId id, string nodeId, string initiator, CancellationToken ct)
    {
        try
        {
            await engine.RevokeAccessAsync(id.Key, id.Pool, nodeId, initiator, ct).ConfigureAwait(false);
        }
        catch (StatusException e) when (e.Code == StatusCode.NotFound)
        {
            // The volume is gone, so nothing is attached.
        }
    }

    /// <summary>Pages across engines in node-id order; the token names the engine to continue on and its own token.</summary>
    private static async Task<(List<(EngineHandle Engine, T Item)> Items, string Next)> PageAsync<T>(
        IReadOnlyList<EngineHandle> engines, int maxEntries, string startingToken,
        Func<EngineHandle, int, string, Task<(IList<T> Items, string Next)>> fetch)
    {
        var start = ListToken.Decode(startingToken);
        var items = new List<(EngineHandle, T)>();
        var ordered = engines.OrderBy(e => e.NodeId, StringComparer.Ordinal).ToArray();
        var index = start is null ? 0 : Array.FindIndex(ordered, e => string.CompareOrdinal(e.NodeId, start.NodeId) >= 0);
        if (index < 0)
        {
            return (items, "");
        }
        var token = start is not null && ordered[index].NodeId == start.NodeId ? start.EngineToken : "";
        for (; index < ordered.Length; index++, token = "")
        {
            var engine = ordered[index];
            while (true)
            {
                var want = maxEntries > 0 ? Math.Min(EnginePage, maxEntries - items.Count) : EnginePage;
                var (page, next) = await fetch(engine, want, token).ConfigureAwait(false);
                items.AddRange(page.Take(want).Select(i => (engine, i)));
                if (string.IsNullOrEmpty(next))
                {
                    break;
                }
                if (maxEntries > 0 && items.Count >= maxEntries)
                {
                    return (items, new ListToken(engine.NodeId, next).Encode());
                }
                token = next;
            }
            if (maxEntries > 0 && items.Count >= maxEntries)
            {
                return (items, index + 1 < ordered.Length ? new ListToken(ordered[index + 1].NodeId, "").Encode() : "");
            }
        }
        return (items, "");
    }

    private static async Task<List<EngineSnapshotInfo>> ScanSnapshotsAsync(EngineHandle engine, EngineListSnapshotsRequest filter, CancellationToken ct)
    {
        var all = new List<EngineSnapshotInfo>();
        var token = "";
        do
        {
            var request = filter.Clone();
            request.MaxEntries = EnginePage;
            request.StartingToken = token;
            var page = await engine.ListSnapshotsAsync(request, ct).ConfigureAwait(false);
            all.AddRange(page.Snapshots);
            token = page.NextToken;
        }
        while (token.Length > 0);
        return all;
    }

    private Dictionary<string, string> VolumeContext(EngineHandle engine, string key, EngineVolumeInfo info, VolumeParameters parameters,
        ChapCredentials? chap, string? sourceKind)
    {
        var context = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            [VolumeContextKeys.Serial] = info.Serial.Length > 0 ? info.Serial : Names.Serial(key),
            [VolumeContextKeys.TargetNode] = engine.NodeId,
            [VolumeContextKeys.BlockSize] = (info.BlockSize == 0 ? 512u : info.BlockSize).ToString(CultureInfo.InvariantCulture),
            [VolumeContextKeys.Chap] = chap is null ? VolumeContextKeys.ChapNone : chap.MutualUser.Length > 0 ? VolumeContextKeys.ChapMutual : VolumeContextKeys.ChapOneWay,
        };
        if (parameters.FsType is { } fsType)
        {
            context[VolumeContextKeys.FsType] = fsType;
        }
        if (sourceKind is not null)
        {
            context[VolumeContextKeys.ContentSource] = sourceKind;
        }
        foreach (var (k, v) in parameters.NodeContext)
        {
            context[k] = v;
        }
        return context;
    }

    private Volume ListedVolume(EngineHandle engine, VolumeId id, EngineVolumeInfo info)
    {
        var volume = new Volume { VolumeId = id.ToString(), CapacityBytes = info.CapacityBytes };
        volume.VolumeContext[VolumeContextKeys.Serial] = info.Serial.Length > 0 ? info.Serial : Names.Serial(id.Key);
        volume.VolumeContext[VolumeContextKeys.TargetNode] = engine.NodeId;
        volume.VolumeContext[VolumeContextKeys.BlockSize] = (info.BlockSize == 0 ? 512u : info.BlockSize).ToString(CultureInfo.InvariantCulture);
        volume.VolumeContext[VolumeContextKeys.Chap] = !info.ChapEnabled ? VolumeContextKeys.ChapNone : info.MutualChapEnabled ? VolumeContextKeys.ChapMutual : VolumeContextKeys.ChapOneWay;
        switch (info.Source?.TypeCase)
        {
            case ContentSource.TypeOneofCase.Snapshot:
                volume.VolumeContext[VolumeContextKeys.ContentSource] = VolumeContextKeys.ContentSourceSnapshot;
                volume.ContentSource = new VolumeContentSource
                {
                    Snapshot = new VolumeContentSource.Types.SnapshotSource
                    {
                        SnapshotId = new SnapshotId(id.Instance, id.TargetNode, id.Backend, id.Pool, info.Source.Snapshot.VolumeKey, info.Source.Snapshot.SnapshotKey).ToString(),
                    },
                };
                break;
            case ContentSource.TypeOneofCase.Volume:
                volume.VolumeContext[VolumeContextKeys.ContentSource] = VolumeContextKeys.ContentSourceVolume;
                volume.ContentSource = new VolumeContentSource
                {
                    Volume = new VolumeContentSource.Types.VolumeSource
                    {
                        VolumeId = new VolumeId(id.Instance, id.TargetNode, id.Backend, id.Pool, info.Source.Volume.VolumeKey).ToString(),
                    },
                };
                break;
        }
        if (Topology(engine) is { } topology)
        {
            volume.AccessibleTopology.Add(topology);
        }
        return volume;
    }

    private static global::Csi.V1.ListVolumesResponse.Types.VolumeStatus Status(EngineVolumeInfo info)
    {
        var status = new global::Csi.V1.ListVolumesResponse.Types.VolumeStatus
        {
            VolumeCondition = new CsiVolumeCondition
            {
                Abnormal = info.Condition?.Abnormal ?? false,
                Message = info.Condition is { } c && c.Message.Length > 0 ? c.Message : info.Condition?.Abnormal == true ? "abnormal" : "export present, backing storage healthy",
            },
        };
        status.PublishedNodeIds.Add(info.Access.Select(a => a.NodeId).Distinct(StringComparer.Ordinal));
        return status;
    }

    private static global::Csi.V1.Snapshot Snapshot(VolumeId source, EngineSnapshotInfo info) => new()
    {
        SnapshotId = new SnapshotId(source.Instance, source.TargetNode, source.Backend, source.Pool, source.Key, info.SnapshotKey).ToString(),
        SourceVolumeId = source.ToString(),
        SizeBytes = info.SizeBytes,
        CreationTime = info.Created ?? Timestamp.FromDateTime(DateTime.UtcNow),
        ReadyToUse = info.ReadyToUse,
    };

    private Topology? Topology(EngineHandle engine)
    {
        if (!_options.Topology || engine.Info.Topology.Count == 0)
        {
            return null;
        }
        var topology = new Topology();
        topology.Segments.Add(engine.Info.Topology);
        return topology;
    }

    private void WarnSkipped(EngineView view, string method)
    {
        if (view.Unusable.Count > 0)
        {
            _logger.LogWarning("{Method}: leaving out target nodes that cannot be asked: {Problems}", method, view.DescribeProblems());
        }
    }

    private VolumeId? ParseVolume(string text) =>
        VolumeId.TryParse(text, out var id) && id.Instance == _names.InstanceId ? id : null;

    private SnapshotId? ParseSnapshot(string text) =>
        SnapshotId.TryParse(text, out var id) && id.Instance == _names.InstanceId ? id : null;

    private StatusException VolumeNotFound(string id) =>
        StatusException.NotFound($"volume '{id}' does not exist (it is not a volume id of csi-scst instance '{_names.InstanceId}', or its target node no longer has it)");

    private StatusException SnapshotNotFound(string id) =>
        StatusException.NotFound($"snapshot '{id}' does not exist (it is not a snapshot id of csi-scst instance '{_names.InstanceId}', or its target node no longer has it)");

    private void Require(Rpc rpc, string method)
    {
        if (!_capabilities.Has(rpc))
        {
            throw StatusException.Unimplemented($"{method} is not supported by this plugin (capability {rpc} is not advertised)");
        }
    }
}
