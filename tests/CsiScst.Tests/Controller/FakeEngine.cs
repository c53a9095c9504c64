using System.Collections.Concurrent;
using CsiScst.Core.Tls;
using CsiScst.Engine.V1;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using System.Net;

namespace CsiScst.Tests.Controller;

/// <summary>
/// A unit-test double of one target engine: the engine API over real gRPC on 127.0.0.x with mutual TLS,
/// state in memory. It follows engine.proto's contract (idempotent ensure/delete, ALREADY_EXISTS,
/// exclusive access) so the controller's own logic can be tested; the real engine is exercised by the
/// integration tests.
/// </summary>
public sealed class FakeEngine : TargetEngine.TargetEngineBase, IAsyncDisposable
{
    private readonly Lock _gate = new();
    private readonly SortedDictionary<string, VolumeInfo> _volumes = new(StringComparer.Ordinal);
    private readonly SortedDictionary<string, SnapshotInfo> _snapshots = new(StringComparer.Ordinal);
    private WebApplication? _app;

    public FakeEngine(string nodeId, params PoolInfo[] pools)
    {
        NodeId = nodeId;
        foreach (var pool in pools)
        {
            Pools[pool.Name] = pool;
        }
    }

    public string NodeId { get; set; }
    public string ApiVersion { get; set; } = "1";
    public string InstanceId { get; set; } = "csi";
    public bool Ready { get; set; } = true;
    public Dictionary<string, string> Topology { get; } = [];
    public Dictionary<string, PoolInfo> Pools { get; } = new(StringComparer.Ordinal);
    public ConcurrentQueue<(string Method, object Request)> Calls { get; } = new();
    public int Port { get; private set; }
    public string Address { get; private set; } = "";

    public static PoolInfo Pool(string name, long available, long granularity = 1 << 20, string backend = "file", bool thin = false) => new()
    {
        Name = name,
        Backend = backend,
        TotalBytes = available,
        AvailableBytes = available,
        GranularityBytes = granularity,
        Thin = thin,
        Snapshots = true,
        Clones = true,
    };

    public IReadOnlyList<VolumeInfo> Volumes
    {
        get
        {
            lock (_gate)
            {
                return _volumes.Values.Select(v => v.Clone()).ToArray();
            }
        }
    }

    public IReadOnlyList<SnapshotInfo> Snapshots
    {
        get
        {
            lock (_gate)
            {
                return _snapshots.Values.Select(v => v.Clone()).ToArray();
            }
        }
    }

    /// <summary>Serves on <paramref name="ip"/>:<paramref name="port"/> (0: any free port) with the given server TLS.</summary>
    public async Task StartAsync(MutualTls tls, string ip = "127.0.0.1", int port = 0)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddGrpc();
        builder.Services.AddSingleton(this);
        builder.WebHost.UseKestrelHttpsConfiguration();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Parse(ip), port, o =>
        {
            o.Protocols = HttpProtocols.Http2;
            o.UseHttps(new HttpsConnectionAdapterOptions
            {
                ServerCertificate = tls.Certificate,
                ClientCertificateMode = ClientCertificateMode.RequireCertificate,
                ClientCertificateValidation = (certificate, _, _) => tls.ValidateClient(certificate),
            });
        }));
        _app = builder.Build();
        _app.MapGrpcService<FakeEngine>();
        await _app.StartAsync();
        var bound = _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        Port = new Uri(bound).Port;
        Address = $"tcp://{ip}:{Port}";
    }

    public async ValueTask DisposeAsync()
    {
        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
            _app = null;
        }
    }

    private void Log(string method, object request) => Calls.Enqueue((method, request));

    public int CallCount(string method) => Calls.Count(c => c.Method == method);

    public override Task<EngineInfo> GetEngineInfo(GetEngineInfoRequest request, ServerCallContext context)
    {
        Log("GetEngineInfo", request);
        lock (_gate)
        {
            var info = new EngineInfo
            {
                ApiVersion = ApiVersion,
                Version = "test",
                EngineKind = "tgt",
                NodeId = NodeId,
                InstanceId = InstanceId,
                Portals = { "127.0.0.1:3260" },
                Ready = Ready,
                NotReadyReason = Ready ? "" : "tgtd is not running",
            };
            info.Pools.Add(Pools.Values.Select(p => p.Clone()));
            info.Topology.Add(Topology);
            return Task.FromResult(info);
        }
    }

    public override Task<EnsureVolumeResponse> EnsureVolume(EnsureVolumeRequest request, ServerCallContext context)
    {
        Log("EnsureVolume", request);
        lock (_gate)
        {
            if (!Pools.TryGetValue(request.Pool, out var pool))
            {
                throw new RpcException(new Status(StatusCode.InvalidArgument, $"no pool '{request.Pool}'"));
            }
            var size = (request.RequiredBytes + pool.GranularityBytes - 1) / pool.GranularityBytes * pool.GranularityBytes;
            if (_volumes.TryGetValue(request.Key, out var existing))
            {
                if (existing.Pool != request.Pool || existing.CapacityBytes < request.RequiredBytes
                    || (request.LimitBytes > 0 && existing.CapacityBytes > request.LimitBytes) || !Equals(existing.Source, request.Source))
                {
                    throw new RpcException(new Status(StatusCode.AlreadyExists, $"volume {request.Key} exists with other properties"));
                }
                return Task.FromResult(new EnsureVolumeResponse { Volume = existing.Clone() });
            }
            if (request.Source?.Snapshot is { } fromSnapshot && !_snapshots.ContainsKey(fromSnapshot.SnapshotKey))
            {
                throw new RpcException(new Status(StatusCode.NotFound, $"snapshot {fromSnapshot.SnapshotKey} not found"));
            }
            if (request.Source?.Volume is { } fromVolume && !_volumes.ContainsKey(fromVolume.VolumeKey))
            {
                throw new RpcException(new Status(StatusCode.NotFound, $"volume {fromVolume.VolumeKey} not found"));
            }
            if (!pool.Thin && pool.AvailableBytes < size)
            {
                throw new RpcException(new Status(StatusCode.ResourceExhausted, $"pool {pool.Name} has {pool.AvailableBytes} bytes free"));
            }
            pool.AvailableBytes -= size;
            var volume = new VolumeInfo
            {
                Key = request.Key,
                Name = request.Name,
                Pool = request.Pool,
                Backend = pool.Backend,
                CapacityBytes = size,
                TargetIqn = "iqn.2026-11.io.csi-scst:csi." + request.Key,
                Lun = 1,
                Portals = { "127.0.0.1:3260" },
                Serial = "CS" + request.Key,
                Source = request.Source,
                Created = Timestamp.FromDateTime(DateTime.UtcNow),
                Condition = new VolumeCondition { Abnormal = false, Message = "export present" },
                BlockSize = request.Options?.BlockSize ?? 0,
                WriteCache = request.Options?.WriteCache ?? WriteCache.Unspecified,
                ThinProvisioned = request.Options?.ThinProvisioned ?? false,
                ChapEnabled = request.Options?.Chap is not null,
                MutualChapEnabled = request.Options?.Chap?.MutualUser.Length > 0,
            };
            _volumes[request.Key] = volume;
            return Task.FromResult(new EnsureVolumeResponse { Volume = volume.Clone() });
        }
    }

    public override Task<DeleteVolumeResponse> DeleteVolume(DeleteVolumeRequest request, ServerCallContext context)
    {
        Log("DeleteVolume", request);
        lock (_gate)
        {
            if (_snapshots.Values.Any(s => s.VolumeKey == request.Key))
            {
                throw new RpcException(new Status(StatusCode.FailedPrecondition, $"volume {request.Key} has snapshots"));
            }
            if (_volumes.Remove(request.Key, out var removed) && Pools.TryGetValue(removed.Pool, out var pool))
            {
                pool.AvailableBytes += removed.CapacityBytes;
            }
            return Task.FromResult(new DeleteVolumeResponse());
        }
    }

    public override Task<GetVolumeResponse> GetVolume(GetVolumeRequest request, ServerCallContext context)
    {
        Log("GetVolume", request);
        lock (_gate)
        {
            if (!_volumes.TryGetValue(request.Key, out var volume) || volume.Pool != request.Pool)
            {
                throw new RpcException(new Status(StatusCode.NotFound, $"volume {request.Key} not found"));
            }
            return Task.FromResult(new GetVolumeResponse { Volume = volume.Clone() });
        }
    }

    public override Task<ListVolumesResponse> ListVolumes(ListVolumesRequest request, ServerCallContext context)
    {
        Log("ListVolumes", request);
        lock (_gate)
        {
            var after = _volumes.Values.Where(v => string.CompareOrdinal(v.Key, request.StartingToken) > 0).ToArray();
            if (request.StartingToken.Length > 0 && !(request.StartingToken.Length == 16))
            {
                throw new RpcException(new Status(StatusCode.Aborted, "bad token"));
            }
            var page = request.MaxEntries > 0 ? after.Take(request.MaxEntries).ToArray() : after;
            var response = new ListVolumesResponse { NextToken = page.Length < after.Length ? page[^1].Key : "" };
            response.Volumes.Add(page.Select(v => v.Clone()));
            return Task.FromResult(response);
        }
    }

    public override Task<ExpandVolumeResponse> ExpandVolume(ExpandVolumeRequest request, ServerCallContext context)
    {
        Log("ExpandVolume", request);
        lock (_gate)
        {
            if (!_volumes.TryGetValue(request.Key, out var volume))
            {
                throw new RpcException(new Status(StatusCode.NotFound, $"volume {request.Key} not found"));
            }
            volume.CapacityBytes = Math.Max(volume.CapacityBytes, request.RequiredBytes);
            return Task.FromResult(new ExpandVolumeResponse { CapacityBytes = volume.CapacityBytes });
        }
    }

    public override Task<EnsureAccessResponse> EnsureAccess(EnsureAccessRequest request, ServerCallContext context)
    {
        Log("EnsureAccess", request);
        lock (_gate)
        {
            if (!_volumes.TryGetValue(request.Key, out var volume))
            {
                throw new RpcException(new Status(StatusCode.NotFound, $"volume {request.Key} not found"));
            }
            if (request.Exclusive && volume.Access.FirstOrDefault(a => a.NodeId != request.NodeId) is { } other)
            {
                throw new RpcException(new Status(StatusCode.FailedPrecondition, $"volume {request.Key} is published to {other.NodeId}"));
            }
            var existing = volume.Access.FirstOrDefault(a => a.NodeId == request.NodeId);
            if (existing is null)
            {
                volume.Access.Add(new Access { NodeId = request.NodeId, InitiatorIqn = request.InitiatorIqn, ReadOnly = request.ReadOnly });
            }
            return Task.FromResult(new EnsureAccessResponse { Volume = volume.Clone() });
        }
    }

    public override Task<RevokeAccessResponse> RevokeAccess(RevokeAccessRequest request, ServerCallContext context)
    {
        Log("RevokeAccess", request);
        lock (_gate)
        {
            if (_volumes.TryGetValue(request.Key, out var volume))
            {
                foreach (var access in volume.Access.Where(a => a.NodeId == request.NodeId).ToArray())
                {
                    volume.Access.Remove(access);
                }
            }
            return Task.FromResult(new RevokeAccessResponse());
        }
    }

    public override Task<EnsureSnapshotResponse> EnsureSnapshot(EnsureSnapshotRequest request, ServerCallContext context)
    {
        Log("EnsureSnapshot", request);
        lock (_gate)
        {
            if (!_volumes.TryGetValue(request.VolumeKey, out var volume))
            {
                throw new RpcException(new Status(StatusCode.NotFound, $"volume {request.VolumeKey} not found"));
            }
            if (_snapshots.TryGetValue(request.SnapshotKey, out var existing))
            {
                if (existing.VolumeKey != request.VolumeKey)
                {
                    throw new RpcException(new Status(StatusCode.AlreadyExists, "snapshot of another volume"));
                }
                return Task.FromResult(new EnsureSnapshotResponse { Snapshot = existing.Clone() });
            }
            var snapshot = new SnapshotInfo
            {
                SnapshotKey = request.SnapshotKey,
                VolumeKey = request.VolumeKey,
                Pool = request.Pool,
                Name = request.Name,
                SizeBytes = volume.CapacityBytes,
                Created = Timestamp.FromDateTime(DateTime.UtcNow),
                ReadyToUse = true,
            };
            _snapshots[request.SnapshotKey] = snapshot;
            return Task.FromResult(new EnsureSnapshotResponse { Snapshot = snapshot.Clone() });
        }
    }

    public override Task<DeleteSnapshotResponse> DeleteSnapshot(DeleteSnapshotRequest request, ServerCallContext context)
    {
        Log("DeleteSnapshot", request);
        lock (_gate)
        {
            _snapshots.Remove(request.SnapshotKey);
            return Task.FromResult(new DeleteSnapshotResponse());
        }
    }

    public override Task<ListSnapshotsResponse> ListSnapshots(ListSnapshotsRequest request, ServerCallContext context)
    {
        Log("ListSnapshots", request);
        lock (_gate)
        {
            var after = _snapshots.Values
                .Where(s => request.VolumeKey.Length == 0 || s.VolumeKey == request.VolumeKey)
                .Where(s => request.SnapshotKey.Length == 0 || s.SnapshotKey == request.SnapshotKey)
                .Where(s => string.CompareOrdinal(s.SnapshotKey, request.StartingToken) > 0).ToArray();
            var page = request.MaxEntries > 0 ? after.Take(request.MaxEntries).ToArray() : after;
            var response = new ListSnapshotsResponse { NextToken = page.Length < after.Length ? page[^1].SnapshotKey : "" };
            response.Snapshots.Add(page.Select(s => s.Clone()));
            return Task.FromResult(response);
        }
    }

    public override Task<GetCapacityResponse> GetCapacity(GetCapacityRequest request, ServerCallContext context)
    {
        Log("GetCapacity", request);
        lock (_gate)
        {
            var pools = request.Pool.Length == 0 ? Pools.Values.ToArray() : Pools.Values.Where(p => p.Name == request.Pool).ToArray();
            return Task.FromResult(new GetCapacityResponse
            {
                AvailableBytes = pools.Sum(p => p.AvailableBytes),
                MaximumVolumeSize = pools.Length == 0 ? 0 : pools.Max(p => p.AvailableBytes),
            });
        }
    }

    public override Task<ReconcileResponse> Reconcile(ReconcileRequest request, ServerCallContext context) =>
        Task.FromResult(new ReconcileResponse());
}
