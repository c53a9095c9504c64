using CsiScst.Engine.Faults;
using CsiScst.Engine.V1;
using CsiScst.IntegrationTests.Tgt;
using Grpc.Core;

namespace CsiScst.IntegrationTests.Engine;

/// <summary>
/// Crash safety of the real process: <c>csi-scst target</c> runs with CSI_SCST_FAULT_POINT armed, kills itself
/// with SIGKILL at that point between two steps, is restarted without it, the call is retried, and the
/// result must be exactly what an uninterrupted call gives. Then everything is deleted through the API and
/// nothing may be left: no file, no tgt target, no account, no state file.
/// </summary>
public sealed class EngineCrashTests
{
    private const string Node = "worker-a/iqn.2026-01.io.csi-scst.test:crash";
    private const string Iqn = "iqn.2026-01.io.csi-scst.test:crash";

    public static TheoryData<string> Points()
    {
        var points = new TheoryData<string>();
        foreach (var point in EngineFaultPoints.All)
        {
            points.Add(point);
        }
        // Numbered: the second time the point is reached.
        points.Add(EngineFaultPoints.EnsureVolumeAfterExport + ":2");
        return points;
    }

    [Theory]
    [MemberData(nameof(Points))]
    public async Task Killed_at_a_fault_point_then_restarted_and_retried_converges_with_nothing_orphaned(string point)
    {
        await using var harness = await EngineHarness.CreateAsync();
        var names = harness.Names;
        var volume = Create(harness, "pvc-crash");
        var other = Create(harness, "pvc-crash-other");
        var snapshotKey = names.SnapshotKey("snap-crash");
        var name = point.Split(':')[0];

        // What must exist before the interrupted call, made by an engine without the fault.
        if (name != "ensure-volume")
        {
            await using var setup = await harness.StartAsync();
            using var client = harness.Client();
            await client.Api.EnsureVolumeAsync(volume);
            if (name is "revoke-access" or "reconcile" or "expand-volume")
            {
                await client.Api.EnsureAccessAsync(Access(volume));
            }
            if (name == "delete-snapshot")
            {
                await client.Api.EnsureSnapshotAsync(Snapshot(volume, snapshotKey));
            }
        }

        var faulted = await StartFaultedAsync(harness, point);
        if (name != "reconcile")
        {
            using var client = harness.Client();
            if (point.EndsWith(":2", StringComparison.Ordinal))
            {
                await client.Api.EnsureVolumeAsync(other);
            }
            var call = Act(client.Api, name, volume, snapshotKey);
            var e = await Assert.ThrowsAsync<RpcException>(() => call);
            Assert.Contains(e.StatusCode, new[] { StatusCode.Unavailable, StatusCode.Internal, StatusCode.Cancelled });
        }
        Assert.Equal(137, await faulted.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        Assert.Contains($"fault point {point.Split(":")[0]}:{point.Split(":")[1]} reached", faulted.Output);
        await faulted.DisposeAsync();

        // Restart without the fault and retry: the outcome is that of an uninterrupted call.
        await using (var engine = await harness.StartAsync())
        {
            using var client = harness.Client();
            if (point.EndsWith(":2", StringComparison.Ordinal))
            {
                await client.Api.EnsureVolumeAsync(other);
            }
            if (name != "reconcile")
            {
                await Act(client.Api, name, volume, snapshotKey);
            }
            await VerifyAsync(harness, client.Api, name, volume, snapshotKey);

            // Tear everything down through the API.
            foreach (var key in new[] { volume.Key, other.Key })
            {
                await client.Api.RevokeAccessAsync(new RevokeAccessRequest { Key = key, Pool = "files", NodeId = Node });
            }
            await client.Api.DeleteSnapshotAsync(new DeleteSnapshotRequest { VolumeKey = volume.Key, Pool = "files", SnapshotKey = snapshotKey });
            await client.Api.DeleteVolumeAsync(new DeleteVolumeRequest { Key = volume.Key, Pool = "files" });
            await client.Api.DeleteVolumeAsync(new DeleteVolumeRequest { Key = other.Key, Pool = "files" });
            Assert.Empty((await client.Api.ListVolumesAsync(new ListVolumesRequest())).Volumes);
            Assert.Empty((await client.Api.ListSnapshotsAsync(new ListSnapshotsRequest())).Snapshots);
        }

        Assert.Empty(harness.PoolFiles());
        Assert.Empty(await harness.Tgtd.TargetsAsync());
        Assert.Empty(await harness.Tgtd.AccountsAsync());
        Assert.Empty(harness.StateFiles());
    }

    private static EnsureVolumeRequest Create(EngineHarness harness, string name)
    {
        var key = harness.Names.VolumeKey(name);
        return new EnsureVolumeRequest
        {
            Key = key,
            Name = name,
            Pool = "files",
            RequiredBytes = 16L << 20,
            Options = new ExportOptions
            {
                Chap = new ChapCredentials
                {
                    User = harness.Names.TgtIncomingAccount(key),
                    Secret = "crash-test-secret-1",
                    MutualUser = harness.Names.TgtOutgoingAccount(key),
                    MutualSecret = "crash-test-secret-2",
                },
            },
        };
    }

    private static EnsureAccessRequest Access(EnsureVolumeRequest volume) =>
        new() { Key = volume.Key, Pool = "files", NodeId = Node, InitiatorIqn = Iqn };

    private static EnsureSnapshotRequest Snapshot(EnsureVolumeRequest volume, string snapshotKey) =>
        new() { VolumeKey = volume.Key, Pool = "files", SnapshotKey = snapshotKey, Name = "snap-crash" };

    private static async Task<EngineProcess> StartFaultedAsync(EngineHarness harness, string point)
    {
        if (point.StartsWith("reconcile:", StringComparison.Ordinal))
        {
            // The start-up reconcile reaches it by itself.
            return new EngineProcess(harness.Arguments(), point);
        }
        return await harness.StartAsync(faultPoint: point);
    }

    private static Task Act(TargetEngine.TargetEngineClient api, string name, EnsureVolumeRequest volume, string snapshotKey) => name switch
    {
        "ensure-volume" => api.EnsureVolumeAsync(volume).ResponseAsync,
        "delete-volume" => api.DeleteVolumeAsync(new DeleteVolumeRequest { Key = volume.Key, Pool = "files" }).ResponseAsync,
        "ensure-access" => api.EnsureAccessAsync(Access(volume)).ResponseAsync,
        "revoke-access" => api.RevokeAccessAsync(new RevokeAccessRequest { Key = volume.Key, Pool = "files", NodeId = Node }).ResponseAsync,
        "expand-volume" => api.ExpandVolumeAsync(new ExpandVolumeRequest { Key = volume.Key, Pool = "files", RequiredBytes = 48L << 20 }).ResponseAsync,
        "ensure-snapshot" => api.EnsureSnapshotAsync(Snapshot(volume, snapshotKey)).ResponseAsync,
        "delete-snapshot" => api.DeleteSnapshotAsync(new DeleteSnapshotRequest { VolumeKey = volume.Key, Pool = "files", SnapshotKey = snapshotKey }).ResponseAsync,
        _ => throw new ArgumentException(name),
    };

    private static async Task VerifyAsync(EngineHarness harness, TargetEngine.TargetEngineClient api, string name, EnsureVolumeRequest volume, string snapshotKey)
    {
        var portal = harness.Tgtd.Portal;
        var iqn = harness.Names.TargetIqn(volume.Key);
        var chap = volume.Options.Chap;
        var initiator = new IscsiInitiator(Iqn, chap.User, chap.Secret, chap.MutualUser, chap.MutualSecret);
        switch (name)
        {
            case "delete-volume":
                await Assert.ThrowsAsync<RpcException>(() => api.GetVolumeAsync(new GetVolumeRequest { Key = volume.Key }).ResponseAsync);
                Assert.DoesNotContain(await harness.Tgtd.TargetsAsync(), t => t.Name == iqn);
                Assert.DoesNotContain(harness.PoolFiles(), f => f.Contains(volume.Key, StringComparison.Ordinal));
                Assert.DoesNotContain(await harness.Tgtd.AccountsAsync(), a => a.Contains(volume.Key, StringComparison.Ordinal));
                return;
            case "revoke-access":
                Assert.Empty((await api.GetVolumeAsync(new GetVolumeRequest { Key = volume.Key })).Volume.Access);
                Assert.False((await initiator.LoginAsync(portal, iqn, 1)).Ok, "a revoked initiator must be refused");
                return;
            case "ensure-snapshot":
            case "delete-snapshot":
                var snapshots = (await api.ListSnapshotsAsync(new ListSnapshotsRequest { VolumeKey = volume.Key })).Snapshots;
                if (name == "ensure-snapshot")
                {
                    var snapshot = Assert.Single(snapshots);
                    Assert.True(snapshot.ReadyToUse);
                    Assert.Single(harness.PoolFiles(), f => f.Contains(snapshotKey, StringComparison.Ordinal));
                }
                else
                {
                    Assert.Empty(snapshots);
                    Assert.DoesNotContain(harness.PoolFiles(), f => f.Contains(snapshotKey, StringComparison.Ordinal));
                }
                return;
        }
        // ensure-volume, ensure-access, expand-volume, reconcile: the volume is ready and serves its initiator.
        var info = (await api.GetVolumeAsync(new GetVolumeRequest { Key = volume.Key })).Volume;
        Assert.False(info.Condition.Abnormal, info.Condition.Message);
        if (name == "ensure-volume")
        {
            Assert.False((await initiator.LoginAsync(portal, iqn, 1)).Ok, "nobody has access yet");
            await api.EnsureAccessAsync(Access(volume));
        }
        Assert.Equal(info.Serial, (await initiator.SerialAsync(portal, iqn, 1)).Serial);
        var capacity = await initiator.CapacityAsync(portal, iqn, 1);
        Assert.Equal(info.CapacityBytes, capacity?.Bytes);
        if (name == "expand-volume")
        {
            Assert.True(info.CapacityBytes >= 48L << 20);
        }
        Assert.Single(await harness.Tgtd.TargetsAsync(), t => t.Name == iqn);
        Assert.Single(harness.PoolFiles(), f => f.Contains(volume.Key, StringComparison.Ordinal));
    }
}
