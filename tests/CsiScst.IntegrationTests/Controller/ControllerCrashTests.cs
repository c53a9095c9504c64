using System.Net.Security;
using Csi.V1;
using CsiScst.Core.Faults;
using CsiScst.Core.Grpc;
using CsiScst.Core.Tls;
using CsiScst.Csi.Controller;
using CsiScst.Engine.V1;
using CsiScst.IntegrationTests.Infrastructure;
using Grpc.Core;
using static CsiScst.IntegrationTests.CsiController.ControllerCluster;
using DeleteVolumeRequest = Csi.V1.DeleteVolumeRequest;
using ListVolumesRequest = Csi.V1.ListVolumesRequest;
using CsiScst.Csi;

namespace CsiScst.IntegrationTests.CsiController;

/// <summary>
/// The controller process SIGKILLed at its fault points and restarted, targets that vanish, a forgotten
/// target, and mutual TLS refused both ways, all against real `csi-scst target` processes.
/// </summary>
[Collection("controller-cluster")]
public sealed class ControllerCrashTests : IClassFixture<ControllerCluster>
{
    private readonly ControllerCluster _cluster;

    public ControllerCrashTests(ControllerCluster cluster)
    {
        _cluster = cluster;
    }

    private async Task RestartControllerAsync(string? faultPoint = null, params string[] extra)
    {
        await _cluster.StopControllerAsync();
        var environment = faultPoint is null ? null : new Dictionary<string, string> { [FaultPoints.EnvironmentVariable] = faultPoint };
        await _cluster.StartControllerAsync(environment, null, extra);
    }

    /// <summary>Calls, expecting the controller to die at its armed fault point; waits for the process to be gone.</summary>
    private async Task CallIntoFaultAsync(Func<Task> call)
    {
        var e = await Assert.ThrowsAsync<RpcException>(call);
        Assert.True(e.StatusCode is StatusCode.Unavailable or StatusCode.Internal or StatusCode.Unknown, e.ToString());
        await _cluster.ControllerProcess!.WaitForExitAsync();
        Assert.Contains("fault point", _cluster.ControllerProcess.Output);
        await _cluster.StopControllerAsync();
    }

    [Fact]
    public async Task A_controller_killed_inside_create_and_delete_converges_on_retry_with_nothing_orphaned()
    {
        await RestartControllerAsync(ControllerFaults.CreateAfterEnsureVolume);
        var request = Create("crash-create", 8 * MiB);
        await CallIntoFaultAsync(async () => await _cluster.Client.CreateVolumeAsync(request));
        // The engine made the volume on storage-b (most free space) before the kill. Now storage-b fills up so
        // that a fresh placement would choose storage-a: the retry must still find the volume where it is.
        var fillerPath = Path.Combine(_cluster.B.PoolDirectory, "filler");
        var fill = System.Diagnostics.Process.Start("fallocate", ["-l", "260M", fillerPath]);
        await fill.WaitForExitAsync();
        Assert.Equal(0, fill.ExitCode);
        await RestartControllerAsync();
        var created = (await _cluster.Client.CreateVolumeAsync(request)).Volume;
        var again = (await _cluster.Client.CreateVolumeAsync(request)).Volume;
        Assert.Equal(created.VolumeId, again.VolumeId);
        Assert.Contains(":storage-b:", created.VolumeId);
        var fresh = (await _cluster.Client.CreateVolumeAsync(Create("crash-fresh", 8 * MiB))).Volume;
        Assert.Contains(":storage-a:", fresh.VolumeId);
        await _cluster.Client.DeleteVolumeAsync(new DeleteVolumeRequest { VolumeId = fresh.VolumeId });
        File.Delete(fillerPath);
        Assert.Single((await _cluster.Client.ListVolumesAsync(new ListVolumesRequest())).Entries);

        await RestartControllerAsync(ControllerFaults.PublishAfterEnsureAccess);
        var publish = new ControllerPublishVolumeRequest { VolumeId = created.VolumeId, NodeId = NodeX, VolumeCapability = BlockWriter };
        await CallIntoFaultAsync(async () => await _cluster.Client.ControllerPublishVolumeAsync(publish));
        await RestartControllerAsync();
        var context = (await _cluster.Client.ControllerPublishVolumeAsync(publish)).PublishContext;
        Assert.Equal(created.VolumeId.Split(':')[^1], context[VolumeContextKeys.TargetIqn].Split('.')[^1]);
        await _cluster.Client.ControllerUnpublishVolumeAsync(new ControllerUnpublishVolumeRequest { VolumeId = created.VolumeId, NodeId = NodeX });

        await RestartControllerAsync(ControllerFaults.DeleteAfterEngineDelete);
        await CallIntoFaultAsync(async () => await _cluster.Client.DeleteVolumeAsync(new DeleteVolumeRequest { VolumeId = created.VolumeId }));
        await RestartControllerAsync();
        await _cluster.Client.DeleteVolumeAsync(new DeleteVolumeRequest { VolumeId = created.VolumeId });
        _cluster.AssertNothingLeft();
    }

    [Fact]
    public async Task A_vanished_target_makes_its_operations_unavailable_until_it_returns_or_is_forgotten()
    {
        var volume = (await _cluster.Client.CreateVolumeAsync(Create("crash-vanish", 8 * MiB, ("targetNode", "storage-a")))).Volume;
        await _cluster.A.KillTargetAsync();
        try
        {
            foreach (var call in new Func<Task>[]
            {
                async () => await _cluster.Client.DeleteVolumeAsync(new DeleteVolumeRequest { VolumeId = volume.VolumeId }),
                async () => await _cluster.Client.ControllerUnpublishVolumeAsync(new ControllerUnpublishVolumeRequest { VolumeId = volume.VolumeId, NodeId = NodeX }),
                async () => await _cluster.Client.ControllerExpandVolumeAsync(new ControllerExpandVolumeRequest
                {
                    VolumeId = volume.VolumeId, CapacityRange = new CapacityRange { RequiredBytes = 16 * MiB },
                }),
            })
            {
                var e = await Assert.ThrowsAsync<RpcException>(call);
                Assert.Equal(StatusCode.Unavailable, e.StatusCode);
                Assert.Contains("storage-a", e.Status.Detail);
            }
            // New volumes still go to the node that answers.
            var other = (await _cluster.Client.CreateVolumeAsync(Create("crash-other", 4 * MiB))).Volume;
            Assert.Contains(":storage-b:", other.VolumeId);
            await _cluster.Client.DeleteVolumeAsync(new DeleteVolumeRequest { VolumeId = other.VolumeId });

            // Forgotten: Delete says OK and leaves the storage node alone.
            await RestartControllerAsync(null, "--forget-target", "storage-a");
            await _cluster.Client.DeleteVolumeAsync(new DeleteVolumeRequest { VolumeId = volume.VolumeId });
            Assert.Contains("forgotten", _cluster.ControllerProcess!.Output);
            Assert.NotEmpty(_cluster.A.StateFiles());
        }
        finally
        {
            await _cluster.A.StartTargetAsync();
            await RestartControllerAsync();
        }
        await _cluster.Client.DeleteVolumeAsync(new DeleteVolumeRequest { VolumeId = volume.VolumeId });
        _cluster.AssertNothingLeft();
    }

    [Fact]
    public async Task Mutual_tls_is_refused_both_ways()
    {
        using var other = new TempDirectory("csi-scst-ca2");
        MutualTls.GenerateFiles(other.Path, ["127.0.0.1"], TimeSpan.FromDays(1));

        // A controller holding another CA's certificates cannot use the engines.
        await RestartControllerAsync();
        await _cluster.StopControllerAsync();
        await _cluster.StartControllerAsync(null, other.Path);
        try
        {
            var e = await Assert.ThrowsAsync<RpcException>(async () => await _cluster.Client.CreateVolumeAsync(Create("tls-refused", 4 * MiB)));
            Assert.Equal(StatusCode.Unavailable, e.StatusCode);
        }
        finally
        {
            await RestartControllerAsync();
        }

        // An engine refuses a client whose certificate another CA signed, and one with no certificate.
        var trusted = MutualTls.Load(Path.Combine(_cluster.TlsDirectory, "ca.crt"), Path.Combine(other.Path, "client.crt"), Path.Combine(other.Path, "client.key"));
        var endpoint = EndpointAddress.Tcp("127.0.0.1", _cluster.A.ApiPort);
        using (var foreign = Channels.For(endpoint, new MutualTls(MutualTls.Load(Path.Combine(_cluster.TlsDirectory, "ca.crt"),
            Path.Combine(_cluster.TlsDirectory, "client.crt"), Path.Combine(_cluster.TlsDirectory, "client.key")).Authority, trusted.Certificate).ClientOptions()))
        {
            // With TLS 1.3 the server rejects the client certificate after the client finished its handshake,
            // so the refusal surfaces as a reset stream (INTERNAL) or a failed connection (UNAVAILABLE).
            var e = await Assert.ThrowsAsync<RpcException>(async () => await new TargetEngine.TargetEngineClient(foreign).GetEngineInfoAsync(new GetEngineInfoRequest()));
            Assert.True(e.StatusCode is StatusCode.Unavailable or StatusCode.Internal, e.ToString());
        }
        var ours = MutualTls.Load(Path.Combine(_cluster.TlsDirectory, "ca.crt"), Path.Combine(_cluster.TlsDirectory, "client.crt"), Path.Combine(_cluster.TlsDirectory, "client.key"));
        var anonymous = new SslClientAuthenticationOptions { RemoteCertificateValidationCallback = (_, c, _, _) => ours.ValidateServer(c) };
        using (var bare = Channels.For(endpoint, anonymous))
        {
            var e = await Assert.ThrowsAsync<RpcException>(async () => await new TargetEngine.TargetEngineClient(bare).GetEngineInfoAsync(new GetEngineInfoRequest()));
            Assert.True(e.StatusCode is StatusCode.Unavailable or StatusCode.Internal, e.ToString());
        }
        using (var good = Channels.For(endpoint, ours.ClientOptions()))
        {
            var info = await new TargetEngine.TargetEngineClient(good).GetEngineInfoAsync(new GetEngineInfoRequest());
            Assert.Equal("storage-a", info.NodeId);
        }
    }
}
