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

    public NodeService(CsiCapabilities capabilities, INodeInfoProvider info)
    {
        _capabilities = capabilities;
        _info = info;
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

    public override Task<NodeStageVolumeResponse> NodeStageVolume(NodeStageVolumeRequest request, ServerCallContext context)
    {
        CsiValidation.RequireId(request.VolumeId, "volume_id");
        CsiValidation.RequirePath(request.StagingTargetPath, "staging_target_path");
        CsiValidation.RequireCapability(request.VolumeCapability);
        CsiValidation.CheckMap(request.PublishContext, "publish_context");
        CsiValidation.CheckMap(request.VolumeContext, "volume_context");
        CsiValidation.CheckMap(request.Secrets, "secrets", secret: true);
        Require(Rpc.StageUnstageVolume, "NodeStageVolume");
        throw NotYet("NodeStageVolume");
    }

    public override Task<NodeUnstageVolumeResponse> NodeUnstageVolume(NodeUnstageVolumeRequest request, ServerCallContext context)
    {
        CsiValidation.RequireId(request.VolumeId, "volume_id");
        CsiValidation.RequirePath(request.StagingTargetPath, "staging_target_path");
        Require(Rpc.StageUnstageVolume, "NodeUnstageVolume");
        throw NotYet("NodeUnstageVolume");
    }

    public override Task<NodePublishVolumeResponse> NodePublishVolume(NodePublishVolumeRequest request, ServerCallContext context)
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
        throw NotYet("NodePublishVolume");
    }

    public override Task<NodeUnpublishVolumeResponse> NodeUnpublishVolume(NodeUnpublishVolumeRequest request, ServerCallContext context)
    {
        CsiValidation.RequireId(request.VolumeId, "volume_id");
        CsiValidation.RequirePath(request.TargetPath, "target_path");
        throw NotYet("NodeUnpublishVolume");
    }

    public override Task<NodeGetVolumeStatsResponse> NodeGetVolumeStats(NodeGetVolumeStatsRequest request, ServerCallContext context)
    {
        CsiValidation.RequireId(request.VolumeId, "volume_id");
        CsiValidation.RequirePath(request.VolumePath, "volume_path");
        if (request.StagingTargetPath.Length > 0)
        {
            CsiValidation.RequirePath(request.StagingTargetPath, "staging_target_path");
        }
        Require(Rpc.GetVolumeStats, "NodeGetVolumeStats");
        throw NotYet("NodeGetVolumeStats");
    }

    public override Task<NodeExpandVolumeResponse> NodeExpandVolume(NodeExpandVolumeRequest request, ServerCallContext context)
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
        throw NotYet("NodeExpandVolume");
    }

    private void Require(Rpc rpc, string method)
    {
        if (!_capabilities.Has(rpc))
        {
            throw StatusException.Unimplemented($"{method} is not supported by this plugin (capability {rpc} is not advertised)");
        }
    }

    private static StatusException NotYet(string method) =>
        StatusException.Unimplemented($"{method} is not implemented in this build");
}
