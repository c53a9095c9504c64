using Csi.V1;
using CsiScst.Core.Errors;
using CsiScst.Csi.Validation;
using Grpc.Core;
using Rpc = Csi.V1.NodeServiceCapability.Types.RPC.Types.Type;

namespace CsiScst.Csi.Node;

/// <summary>
/// CSI Node. Every RPC reads the same way: validate → check the capability → lock the volume → act → answer.
/// </summary>
public sealed class NodeService : global::Csi.V1.Node.NodeBase
{
    private readonly CsiCapabilities _capabilities;
    private readonly INodeInfoProvider _info;
    private readonly NodeStager _stager;
    private readonly NodePublisher _publisher;
    private readonly NodeVolumeInspector _inspector;
    private readonly NodeLocks _locks;
    private readonly NodeMetrics _metrics;

    public NodeService(CsiCapabilities capabilities, INodeInfoProvider info, NodeStager stager, NodePublisher publisher,
        NodeVolumeInspector inspector, NodeLocks locks, NodeMetrics metrics)
    {
        _capabilities = capabilities;
        _info = info;
        _stager = stager;
        _publisher = publisher;
        _inspector = inspector;
        _locks = locks;
        _metrics = metrics;
    }

    public override Task<NodeGetCapabilitiesResponse> NodeGetCapabilities(NodeGetCapabilitiesRequest request, ServerCallContext context)
    {
        var response = new NodeGetCapabilitiesResponse();
        foreach (var rpc in _capabilities.Node.Order())
        {
            response.Capabilities.Add(new NodeServiceCapability { Rpc = new NodeServiceCapability.Types.RPC { Type = rpc } });
        }
        return Task.FromResult(response);
    }

    public override async Task<NodeGetInfoResponse> NodeGetInfo(NodeGetInfoRequest request, ServerCallContext context) =>
        await _info.GetInfoAsync(context.CancellationToken).ConfigureAwait(false);

    public override async Task<NodeStageVolumeResponse> NodeStageVolume(NodeStageVolumeRequest request, ServerCallContext context)
    {
        CsiValidation.RequireId(request.VolumeId, "volume_id");
        CsiValidation.RequirePath(request.StagingTargetPath, "staging_target_path");
        CsiValidation.RequireCapability(request.VolumeCapability);
        CsiValidation.CheckMap(request.PublishContext, "publish_context");
        CsiValidation.CheckMap(request.VolumeContext, "volume_context");
        CsiValidation.CheckMap(request.Secrets, "secrets", secret: true);
        Require(Rpc.StageUnstageVolume, "NodeStageVolume");
        CheckMountGroup(request.VolumeCapability);
        return await _metrics.MeasureAsync("stage", async () =>
        {
            var target = _stager.ParseTarget(request);
            using var volume = _locks.TryAcquireVolume(request.VolumeId);
            using var iscsiTarget = _locks.TryAcquireTarget(target.TargetIqn);
            await _stager.StageAsync(request, target, context.CancellationToken).ConfigureAwait(false);
            return new NodeStageVolumeResponse();
        }).ConfigureAwait(false);
    }

    public override async Task<NodeUnstageVolumeResponse> NodeUnstageVolume(NodeUnstageVolumeRequest request, ServerCallContext context)
    {
        CsiValidation.RequireId(request.VolumeId, "volume_id");
        CsiValidation.RequirePath(request.StagingTargetPath, "staging_target_path");
        Require(Rpc.StageUnstageVolume, "NodeUnstageVolume");
        return await _metrics.MeasureAsync("unstage", async () =>
        {
            using var volume = _locks.TryAcquireVolume(request.VolumeId);
            await _stager.UnstageAsync(request.VolumeId, request.StagingTargetPath, context.CancellationToken).ConfigureAwait(false);
            return new NodeUnstageVolumeResponse();
        }).ConfigureAwait(false);
    }

    public override async Task<NodePublishVolumeResponse> NodePublishVolume(NodePublishVolumeRequest request, ServerCallContext context)
    {
        CsiValidation.RequireId(request.VolumeId, "volume_id");
        CsiValidation.RequirePath(request.TargetPath, "target_path");
        CsiValidation.RequireCapability(request.VolumeCapability);
        CsiValidation.CheckMap(request.PublishContext, "publish_context");
        CsiValidation.CheckMap(request.VolumeContext, "volume_context");
        CsiValidation.CheckMap(request.Secrets, "secrets", secret: true);
        if (_capabilities.Has(Rpc.StageUnstageVolume))
        {
            if (request.StagingTargetPath.Length == 0)
            {
                throw StatusException.FailedPrecondition("staging_target_path is required: this plugin stages volumes (STAGE_UNSTAGE_VOLUME) and NodePublishVolume binds the staged volume");
            }
            CsiValidation.RequirePath(request.StagingTargetPath, "staging_target_path");
        }
        CheckMountGroup(request.VolumeCapability);
        return await _metrics.MeasureAsync("publish", async () =>
        {
            using var volume = _locks.TryAcquireVolume(request.VolumeId);
            await _publisher.PublishAsync(request, context.CancellationToken).ConfigureAwait(false);
            return new NodePublishVolumeResponse();
        }).ConfigureAwait(false);
    }

    public override async Task<NodeUnpublishVolumeResponse> NodeUnpublishVolume(NodeUnpublishVolumeRequest request, ServerCallContext context)
    {
        CsiValidation.RequireId(request.VolumeId, "volume_id");
        CsiValidation.RequirePath(request.TargetPath, "target_path");
        return await _metrics.MeasureAsync("unpublish", async () =>
        {
            using var volume = _locks.TryAcquireVolume(request.VolumeId);
            await _publisher.UnpublishAsync(request.VolumeId, request.TargetPath, context.CancellationToken).ConfigureAwait(false);
            return new NodeUnpublishVolumeResponse();
        }).ConfigureAwait(false);
    }

    public override async Task<NodeGetVolumeStatsResponse> NodeGetVolumeStats(NodeGetVolumeStatsRequest request, ServerCallContext context)
    {
        CsiValidation.RequireId(request.VolumeId, "volume_id");
        CsiValidation.RequirePath(request.VolumePath, "volume_path");
        if (request.StagingTargetPath.Length > 0)
        {
            CsiValidation.RequirePath(request.StagingTargetPath, "staging_target_path");
        }
        Require(Rpc.GetVolumeStats, "NodeGetVolumeStats");
        // Read-only: no lock, so kubelet's periodic stats never make a stage or unstage ABORT.
        return await _metrics.MeasureAsync("stats", () =>
            _inspector.StatsAsync(request.VolumeId, request.VolumePath, context.CancellationToken)).ConfigureAwait(false);
    }

    public override async Task<NodeExpandVolumeResponse> NodeExpandVolume(NodeExpandVolumeRequest request, ServerCallContext context)
    {
        CsiValidation.RequireId(request.VolumeId, "volume_id");
        CsiValidation.RequirePath(request.VolumePath, "volume_path");
        if (request.StagingTargetPath.Length > 0)
        {
            CsiValidation.RequirePath(request.StagingTargetPath, "staging_target_path");
        }
        CsiValidation.CheckCapacityRange(request.CapacityRange);
        if (request.VolumeCapability is not null)
        {
            CsiValidation.CheckCapability(request.VolumeCapability, "volume_capability");
        }
        Require(Rpc.ExpandVolume, "NodeExpandVolume");
        return await _metrics.MeasureAsync("expand", async () =>
        {
            using var volume = _locks.TryAcquireVolume(request.VolumeId);
            var bytes = await _inspector.ExpandAsync(request.VolumeId, request.VolumePath, request.CapacityRange?.RequiredBytes ?? 0, context.CancellationToken).ConfigureAwait(false);
            return new NodeExpandVolumeResponse { CapacityBytes = bytes };
        }).ConfigureAwait(false);
    }

    private void Require(Rpc rpc, string method)
    {
        if (!_capabilities.Has(rpc))
        {
            throw StatusException.Unimplemented($"{method} is not supported by this plugin (capability {rpc} is not advertised)");
        }
    }

    private void CheckMountGroup(VolumeCapability capability)
    {
        if (capability.AccessTypeCase == VolumeCapability.AccessTypeOneofCase.Mount
            && capability.Mount.VolumeMountGroup.Length > 0
            && !_capabilities.Has(Rpc.VolumeMountGroup))
        {
            throw StatusException.InvalidArgument("volume_mount_group is set, but this plugin does not advertise VOLUME_MOUNT_GROUP");
        }
    }
}
