using CsiScst.Core.Errors;
using CsiScst.Engine.V1;
using Grpc.Core;

namespace CsiScst.Csi.Controller.Engines;

/// <summary>A usable engine: its validated info and typed calls. Engine failures arrive as StatusException.</summary>
public sealed class EngineHandle
{
    private readonly EngineConnection _connection;
    private readonly ControllerOptions _options;

    internal EngineHandle(EngineConnection connection, EngineInfo info, ControllerOptions options)
    {
        _connection = connection;
        Info = info;
        _options = options;
    }

    public EngineInfo Info { get; }
    public string NodeId => Info.NodeId;
    public string Address => _connection.Endpoint.Address.Authority;

    public PoolInfo? Pool(string name) => Info.Pools.FirstOrDefault(p => p.Name == name);

    public Task<EngineInfo> GetEngineInfoAsync(CancellationToken ct) =>
        Read("GetEngineInfo", (c, o) => c.GetEngineInfoAsync(new GetEngineInfoRequest(), o), ct);

    public async Task<VolumeInfo> EnsureVolumeAsync(EnsureVolumeRequest request, CancellationToken ct) =>
        (await Write("EnsureVolume", (c, o) => c.EnsureVolumeAsync(request, o), ct).ConfigureAwait(false)).Volume;

    public Task DeleteVolumeAsync(string key, string pool, CancellationToken ct) =>
        Write("DeleteVolume", (c, o) => c.DeleteVolumeAsync(new DeleteVolumeRequest { Key = key, Pool = pool }, o), ct);

    /// <summary>The volume, or null when the engine does not have it.</summary>
    public async Task<VolumeInfo?> GetVolumeAsync(string key, string pool, CancellationToken ct)
    {
        try
        {
            return (await Read("GetVolume", (c, o) => c.GetVolumeAsync(new GetVolumeRequest { Key = key, Pool = pool }, o), ct).ConfigureAwait(false)).Volume;
        }
        catch (StatusException e) when (e.Code == StatusCode.NotFound)
        {
            return null;
        }
    }

    public Task<ListVolumesResponse> ListVolumesAsync(int maxEntries, string token, CancellationToken ct) =>
        Read("ListVolumes", (c, o) => c.ListVolumesAsync(new ListVolumesRequest { MaxEntries = maxEntries, StartingToken = token }, o), ct);

    public async Task<long> ExpandVolumeAsync(string key, string pool, long required, long limit, CancellationToken ct) =>
        (await Write("ExpandVolume", (c, o) => c.ExpandVolumeAsync(
            new ExpandVolumeRequest { Key = key, Pool = pool, RequiredBytes = required, LimitBytes = limit }, o), ct).ConfigureAwait(false)).CapacityBytes;

    public async Task<VolumeInfo> EnsureAccessAsync(EnsureAccessRequest request, CancellationToken ct) =>
        (await Write("EnsureAccess", (c, o) => c.EnsureAccessAsync(request, o), ct).ConfigureAwait(false)).Volume;

    public Task RevokeAccessAsync(string key, string pool, string nodeId, string initiatorIqn, CancellationToken ct) =>
        Write("RevokeAccess", (c, o) => c.RevokeAccessAsync(
            new RevokeAccessRequest { Key = key, Pool = pool, NodeId = nodeId, InitiatorIqn = initiatorIqn }, o), ct);

    public async Task<SnapshotInfo> EnsureSnapshotAsync(EnsureSnapshotRequest request, CancellationToken ct) =>
        (await Write("EnsureSnapshot", (c, o) => c.EnsureSnapshotAsync(request, o), ct).ConfigureAwait(false)).Snapshot;

    public Task DeleteSnapshotAsync(string volumeKey, string pool, string snapshotKey, CancellationToken ct) =>
        Write("DeleteSnapshot", (c, o) => c.DeleteSnapshotAsync(
            new DeleteSnapshotRequest { VolumeKey = volumeKey, Pool = pool, SnapshotKey = snapshotKey }, o), ct);

    public Task<ListSnapshotsResponse> ListSnapshotsAsync(ListSnapshotsRequest request, CancellationToken ct) =>
        Read("ListSnapshots", (c, o) => c.ListSnapshotsAsync(request, o), ct);

    public Task<GetCapacityResponse> GetCapacityAsync(string pool, CancellationToken ct) =>
        Read("GetCapacity", (c, o) => c.GetCapacityAsync(new GetCapacityRequest { Pool = pool }, o), ct);

    private Task<T> Read<T>(string method, Func<TargetEngine.TargetEngineClient, CallOptions, AsyncUnaryCall<T>> call, CancellationToken ct) =>
        _connection.CallAsync(method, _options.EngineInfoTimeout, call, ct);

    private Task<T> Write<T>(string method, Func<TargetEngine.TargetEngineClient, CallOptions, AsyncUnaryCall<T>> call, CancellationToken ct) =>
        _connection.CallAsync(method, _options.EngineCallTimeout, call, ct);
}
