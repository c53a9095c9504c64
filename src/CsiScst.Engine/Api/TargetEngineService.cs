using CsiScst.Core;
using CsiScst.Core.Errors;
using CsiScst.Core.Health;
using CsiScst.Engine.Reconcile;
using CsiScst.Engine.State;
using CsiScst.Engine.V1;
using CsiScst.Engine.Volumes;
using Grpc.Core;

namespace CsiScst.Engine.Api;

/// <summary>
/// The engine API (proto/csiscst/engine/v1/engine.proto) the controller calls over mutual TLS. A thin
/// adapter: the work is in <see cref="VolumeManager"/> and <see cref="Reconciler"/>; errors are
/// StatusException, mapped to gRPC codes by the shared interceptor. No response ever carries a secret.
/// </summary>
public sealed class TargetEngineService : TargetEngine.TargetEngineBase
{
    private readonly VolumeManager _volumes;
    private readonly Reconciler _reconciler;
    private readonly StateStore _store;
    private readonly DriverOptions _driver;
    private readonly Readiness _readiness;

    public TargetEngineService(VolumeManager volumes, Reconciler reconciler, StateStore store, DriverOptions driver, Readiness readiness)
    {
        _volumes = volumes;
        _reconciler = reconciler;
        _store = store;
        _driver = driver;
        _readiness = readiness;
    }

    public override Task<EngineInfo> GetEngineInfo(GetEngineInfoRequest request, ServerCallContext context) =>
        _volumes.GetEngineInfoAsync(_driver, _readiness, context.CancellationToken);

    public override async Task<EnsureVolumeResponse> EnsureVolume(EnsureVolumeRequest request, ServerCallContext context)
    {
        RequireLoaded();
        return new EnsureVolumeResponse { Volume = await _volumes.EnsureVolumeAsync(request, context.CancellationToken).ConfigureAwait(false) };
    }

    public override async Task<DeleteVolumeResponse> DeleteVolume(DeleteVolumeRequest request, ServerCallContext context)
    {
        RequireLoaded();
        await _volumes.DeleteVolumeAsync(request, context.CancellationToken).ConfigureAwait(false);
        return new DeleteVolumeResponse();
    }

    public override async Task<GetVolumeResponse> GetVolume(GetVolumeRequest request, ServerCallContext context)
    {
        RequireLoaded();
        return new GetVolumeResponse { Volume = await _volumes.GetVolumeAsync(request, context.CancellationToken).ConfigureAwait(false) };
    }

    public override Task<ListVolumesResponse> ListVolumes(ListVolumesRequest request, ServerCallContext context)
    {
        RequireLoaded();
        return Task.FromResult(_volumes.ListVolumes(request));
    }

    public override async Task<ExpandVolumeResponse> ExpandVolume(ExpandVolumeRequest request, ServerCallContext context)
    {
        RequireLoaded();
        return new ExpandVolumeResponse { CapacityBytes = await _volumes.ExpandVolumeAsync(request, context.CancellationToken).ConfigureAwait(false) };
    }

    public override async Task<EnsureAccessResponse> EnsureAccess(EnsureAccessRequest request, ServerCallContext context)
    {
        RequireLoaded();
        return new EnsureAccessResponse { Volume = await _volumes.EnsureAccessAsync(request, context.CancellationToken).ConfigureAwait(false) };
    }

    public override async Task<RevokeAccessResponse> RevokeAccess(RevokeAccessRequest request, ServerCallContext context)
    {
        RequireLoaded();
        await _volumes.RevokeAccessAsync(request, context.CancellationToken).ConfigureAwait(false);
        return new RevokeAccessResponse();
    }

    public override async Task<EnsureSnapshotResponse> EnsureSnapshot(EnsureSnapshotRequest request, ServerCallContext context)
    {
        RequireLoaded();
        return new EnsureSnapshotResponse { Snapshot = await _volumes.EnsureSnapshotAsync(request, context.CancellationToken).ConfigureAwait(false) };
    }

    public override async Task<DeleteSnapshotResponse> DeleteSnapshot(DeleteSnapshotRequest request, ServerCallContext context)
    {
        RequireLoaded();
        await _volumes.DeleteSnapshotAsync(request, context.CancellationToken).ConfigureAwait(false);
        return new DeleteSnapshotResponse();
    }

    public override Task<ListSnapshotsResponse> ListSnapshots(ListSnapshotsRequest request, ServerCallContext context)
    {
        RequireLoaded();
        return Task.FromResult(_volumes.ListSnapshots(request));
    }

    public override Task<GetCapacityResponse> GetCapacity(GetCapacityRequest request, ServerCallContext context) =>
        _volumes.GetCapacityAsync(request, context.CancellationToken);

    public override async Task<ReconcileResponse> Reconcile(ReconcileRequest request, ServerCallContext context)
    {
        RequireLoaded();
        var report = await _reconciler.RunAsync("rpc", context.CancellationToken).ConfigureAwait(false);
        var response = new ReconcileResponse
        {
            ExportsChecked = report.Checked,
            ExportsRepaired = report.Repaired,
            OrphansRemoved = report.OrphansRemoved,
            Seconds = report.Duration.TotalSeconds,
        };
        response.Errors.Add(report.Errors);
        return response;
    }

    private void RequireLoaded()
    {
        if (!_store.Loaded)
        {
            throw StatusException.Unavailable("the engine is still loading its state; retry");
        }
    }
}
