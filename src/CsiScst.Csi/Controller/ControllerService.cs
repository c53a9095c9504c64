using Csi.V1;
using CsiScst.Core.Errors;
using CsiScst.Csi.Validation;
using Grpc.Core;
using Rpc = Csi.V1.ControllerServiceCapability.Types.RPC.Types.Type;

namespace CsiScst.Csi.Controller;

/// <summary>
/// CSI Controller. Every RPC reads the same way: validate → check the capability is advertised →
/// lock → act → answer. Validation is complete for every RPC; an RPC whose capability this process
/// does not advertise returns UNIMPLEMENTED.
/// </summary>
public sealed class ControllerService : global::Csi.V1.Controller.ControllerBase
{
    private readonly CsiCapabilities _capabilities;

    public ControllerService(CsiCapabilities capabilities)
    {
        _capabilities = capabilities;
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

    public override Task<CreateVolumeResponse> CreateVolume(CreateVolumeRequest request, ServerCallContext context)
    {
        CsiValidation.RequireName(request.Name, "name");
        CsiValidation.RequireCapabilities(request.VolumeCapabilities);
        CsiValidation.CheckCapacityRange(request.CapacityRange);
        CsiValidation.CheckMap(request.Parameters, "parameters");
        CsiValidation.CheckMap(request.MutableParameters, "mutable_parameters");
        CsiValidation.CheckMap(request.Secrets, "secrets", secret: true);
        CsiValidation.CheckContentSource(request.VolumeContentSource);
        Require(Rpc.CreateDeleteVolume, "CreateVolume");
        throw NotYet("CreateVolume");
    }

    public override Task<DeleteVolumeResponse> DeleteVolume(DeleteVolumeRequest request, ServerCallContext context)
    {
        CsiValidation.RequireId(request.VolumeId, "volume_id");
        CsiValidation.CheckMap(request.Secrets, "secrets", secret: true);
        Require(Rpc.CreateDeleteVolume, "DeleteVolume");
        throw NotYet("DeleteVolume");
    }

    public override Task<ControllerPublishVolumeResponse> ControllerPublishVolume(ControllerPublishVolumeRequest request, ServerCallContext context)
    {
        CsiValidation.RequireId(request.VolumeId, "volume_id");
        CsiValidation.RequireId(request.NodeId, "node_id", CsiValidation.MaxNodeIdBytes);
        CsiValidation.RequireCapability(request.VolumeCapability);
        CsiValidation.CheckMap(request.VolumeContext, "volume_context");
        CsiValidation.CheckMap(request.Secrets, "secrets", secret: true);
        Require(Rpc.PublishUnpublishVolume, "ControllerPublishVolume");
        throw NotYet("ControllerPublishVolume");
    }

    public override Task<ControllerUnpublishVolumeResponse> ControllerUnpublishVolume(ControllerUnpublishVolumeRequest request, ServerCallContext context)
    {
        CsiValidation.RequireId(request.VolumeId, "volume_id");
        if (request.NodeId.Length > 0)
        {
            CsiValidation.RequireId(request.NodeId, "node_id", CsiValidation.MaxNodeIdBytes);
        }
        CsiValidation.CheckMap(request.Secrets, "secrets", secret: true);
        Require(Rpc.PublishUnpublishVolume, "ControllerUnpublishVolume");
        throw NotYet("ControllerUnpublishVolume");
    }

    public override Task<ValidateVolumeCapabilitiesResponse> ValidateVolumeCapabilities(ValidateVolumeCapabilitiesRequest request, ServerCallContext context)
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
        throw NotYet("ValidateVolumeCapabilities");
    }

    public override Task<ListVolumesResponse> ListVolumes(ListVolumesRequest request, ServerCallContext context)
    {
        CsiValidation.CheckMaxEntries(request.MaxEntries);
        Require(Rpc.ListVolumes, "ListVolumes");
        throw NotYet("ListVolumes");
    }

    public override Task<GetCapacityResponse> GetCapacity(GetCapacityRequest request, ServerCallContext context)
    {
        for (var i = 0; i < request.VolumeCapabilities.Count; i++)
        {
            CsiValidation.CheckCapability(request.VolumeCapabilities[i], $"volume_capabilities[{i}]");
        }
        CsiValidation.CheckMap(request.Parameters, "parameters");
        Require(Rpc.GetCapacity, "GetCapacity");
        throw NotYet("GetCapacity");
    }

    public override Task<CreateSnapshotResponse> CreateSnapshot(CreateSnapshotRequest request, ServerCallContext context)
    {
        CsiValidation.RequireId(request.SourceVolumeId, "source_volume_id");
        CsiValidation.RequireName(request.Name, "name");
        CsiValidation.CheckMap(request.Parameters, "parameters");
        CsiValidation.CheckMap(request.Secrets, "secrets", secret: true);
        Require(Rpc.CreateDeleteSnapshot, "CreateSnapshot");
        throw NotYet("CreateSnapshot");
    }

    public override Task<DeleteSnapshotResponse> DeleteSnapshot(DeleteSnapshotRequest request, ServerCallContext context)
    {
        CsiValidation.RequireId(request.SnapshotId, "snapshot_id");
        CsiValidation.CheckMap(request.Secrets, "secrets", secret: true);
        Require(Rpc.CreateDeleteSnapshot, "DeleteSnapshot");
        throw NotYet("DeleteSnapshot");
    }

    public override Task<ListSnapshotsResponse> ListSnapshots(ListSnapshotsRequest request, ServerCallContext context)
    {
        CsiValidation.CheckMaxEntries(request.MaxEntries);
        CsiValidation.CheckMap(request.Secrets, "secrets", secret: true);
        Require(Rpc.ListSnapshots, "ListSnapshots");
        throw NotYet("ListSnapshots");
    }

    public override Task<GetSnapshotResponse> GetSnapshot(GetSnapshotRequest request, ServerCallContext context)
    {
        CsiValidation.RequireId(request.SnapshotId, "snapshot_id");
        CsiValidation.CheckMap(request.Secrets, "secrets", secret: true);
        Require(Rpc.GetSnapshot, "GetSnapshot");
        throw NotYet("GetSnapshot");
    }

    public override Task<ControllerExpandVolumeResponse> ControllerExpandVolume(ControllerExpandVolumeRequest request, ServerCallContext context)
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
        throw NotYet("ControllerExpandVolume");
    }

    public override Task<ControllerGetVolumeResponse> ControllerGetVolume(ControllerGetVolumeRequest request, ServerCallContext context)
    {
        CsiValidation.RequireId(request.VolumeId, "volume_id");
        Require(Rpc.GetVolume, "ControllerGetVolume");
        throw NotYet("ControllerGetVolume");
    }

    public override Task<ControllerModifyVolumeResponse> ControllerModifyVolume(ControllerModifyVolumeRequest request, ServerCallContext context)
    {
        CsiValidation.RequireId(request.VolumeId, "volume_id");
        CsiValidation.CheckMap(request.MutableParameters, "mutable_parameters");
        CsiValidation.CheckMap(request.Secrets, "secrets", secret: true);
        Require(Rpc.ModifyVolume, "ControllerModifyVolume");
        throw NotYet("ControllerModifyVolume");
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
