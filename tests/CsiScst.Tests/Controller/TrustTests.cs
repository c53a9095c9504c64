using Csi.V1;
using CsiScst.Csi.Controller;
using Grpc.Core;

namespace CsiScst.Tests.Controller;

/// <summary>Which engines the controller accepts: mutual TLS both ways, known API major, same instance, right node id.</summary>
public sealed class TrustTests : IAsyncLifetime
{
    private readonly TestTls _tls = new();
    private readonly TestTls _otherCa = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public Task DisposeAsync()
    {
        _tls.Dispose();
        _otherCa.Dispose();
        return Task.CompletedTask;
    }

    private static CreateVolumeRequest Create(string node) => new()
    {
        Name = "pvc-trust",
        VolumeCapabilities = { new VolumeCapability { Block = new(), AccessMode = new() { Mode = VolumeCapability.Types.AccessMode.Types.Mode.SingleNodeWriter } } },
        Parameters = { ["pool"] = "files", ["targetNode"] = node },
    };

    private async Task<RpcException> CreateFailsAsync(FakeEngine engine, CsiScst.Core.Tls.MutualTls controllerTls, Action<ControllerSetup>? configure = null)
    {
        await using var harness = await ControllerHarness.StartAsync(controllerTls, [engine], configure);
        var e = await Assert.ThrowsAsync<RpcException>(async () => await harness.Controller.CreateVolumeAsync(Create(engine.NodeId)));
        Assert.Equal(StatusCode.Unavailable, e.StatusCode);
        Assert.Empty(engine.Volumes);
        return e;
    }

    [Fact]
    public async Task An_engine_with_a_certificate_from_another_ca_is_refused()
    {
        await using var engine = new FakeEngine("node-a", FakeEngine.Pool("files", 1L << 34));
        await engine.StartAsync(_otherCa.Server);
        var e = await CreateFailsAsync(engine, _tls.Client);
        Assert.Contains("node-a", e.Status.Detail);
    }

    [Fact]
    public async Task An_engine_refuses_a_controller_whose_certificate_is_from_another_ca()
    {
        await using var engine = new FakeEngine("node-a", FakeEngine.Pool("files", 1L << 34));
        await engine.StartAsync(_tls.Server);
        // The controller trusts the engine's CA but presents a client certificate the engine does not.
        var mixed = new CsiScst.Core.Tls.MutualTls(_tls.Client.Authority, _otherCa.Client.Certificate);
        await CreateFailsAsync(engine, mixed);
        Assert.Equal(0, engine.CallCount("GetEngineInfo"));
    }

    [Fact]
    public async Task An_engine_refuses_a_server_certificate_used_as_client_certificate()
    {
        await using var engine = new FakeEngine("node-a", FakeEngine.Pool("files", 1L << 34));
        await engine.StartAsync(_tls.Server);
        var serverAsClient = new CsiScst.Core.Tls.MutualTls(_tls.Client.Authority, _tls.Server.Certificate);
        await CreateFailsAsync(engine, serverAsClient);
        Assert.Equal(0, engine.CallCount("GetEngineInfo"));
    }

    [Fact]
    public async Task Unknown_api_major_other_instance_and_wrong_node_id_are_refused()
    {
        await using var future = new FakeEngine("node-a", FakeEngine.Pool("files", 1L << 34)) { ApiVersion = "2.0" };
        await future.StartAsync(_tls.Server);
        var e = await CreateFailsAsync(future, _tls.Client);
        Assert.Contains("'2.0'", e.Status.Detail);

        await using var foreign = new FakeEngine("node-a", FakeEngine.Pool("files", 1L << 34)) { InstanceId = "other" };
        await foreign.StartAsync(_tls.Server);
        e = await CreateFailsAsync(foreign, _tls.Client);
        Assert.Contains("instance id 'other'", e.Status.Detail);

        await using var renamed = new FakeEngine("node-a", FakeEngine.Pool("files", 1L << 34));
        await renamed.StartAsync(_tls.Server);
        // The operator says this address is node-a, but the engine now reports another id.
        renamed.NodeId = "node-q";
        await using var harness = await ControllerHarness.StartAsync(_tls.Client, [], replace: s =>
        {
            CsiScst.Csi.Controller.Engines.StaticEngineDiscovery.TryParse($"node-a={renamed.Address}", out var endpoint, out _);
            s.StaticEngines.Add(endpoint!);
            return s;
        });
        var wrong = await Assert.ThrowsAsync<RpcException>(async () => await harness.Controller.CreateVolumeAsync(Create("node-a")));
        Assert.Equal(StatusCode.Unavailable, wrong.StatusCode);
        Assert.Contains("node-q", wrong.Status.Detail);
    }

    [Fact]
    public async Task Without_any_engine_volume_calls_are_unavailable_and_identity_still_answers()
    {
        await using var harness = await ControllerHarness.StartAsync(_tls.Client, []);
        Assert.True((await harness.Identity.ProbeAsync(new ProbeRequest())).Ready);
        var anywhere = Create("node-a");
        anywhere.Parameters.Remove("targetNode");
        var e = await Assert.ThrowsAsync<RpcException>(async () => await harness.Controller.CreateVolumeAsync(anywhere));
        Assert.Equal(StatusCode.Unavailable, e.StatusCode);
        Assert.Contains("--engine", e.Status.Detail);
        var targeted = await Assert.ThrowsAsync<RpcException>(async () => await harness.Controller.CreateVolumeAsync(Create("node-a")));
        Assert.Equal(StatusCode.Unavailable, targeted.StatusCode);
    }

    [Fact]
    public async Task A_forgotten_target_lets_delete_and_unpublish_succeed_without_it()
    {
        var id = "v1:csi:node-gone:file:files:0123456789abcdef";
        await using var engine = new FakeEngine("node-a", FakeEngine.Pool("files", 1L << 34));
        await engine.StartAsync(_tls.Server);
        await using (var strict = await ControllerHarness.StartAsync(_tls.Client, [engine]))
        {
            var e = await Assert.ThrowsAsync<RpcException>(async () => await strict.Controller.DeleteVolumeAsync(new DeleteVolumeRequest { VolumeId = id }));
            Assert.Equal(StatusCode.Unavailable, e.StatusCode);
            Assert.Contains("node-gone", e.Status.Detail);
            Assert.Contains("docs/operations.md", e.Status.Detail);
        }
        await using var forgiving = await ControllerHarness.StartAsync(_tls.Client, [engine], s => s.Controller.ForgottenTargets.Add("node-gone"));
        await forgiving.Controller.DeleteVolumeAsync(new DeleteVolumeRequest { VolumeId = id });
        await forgiving.Controller.ControllerUnpublishVolumeAsync(new ControllerUnpublishVolumeRequest { VolumeId = id, NodeId = "w-1/iqn.2000-01.x:y" });
        await Assert.ThrowsAsync<RpcException>(async () => await forgiving.Controller.ControllerPublishVolumeAsync(new ControllerPublishVolumeRequest
        {
            VolumeId = id, NodeId = "w-1/iqn.2000-01.x:y",
            VolumeCapability = new VolumeCapability { Block = new(), AccessMode = new() { Mode = VolumeCapability.Types.AccessMode.Types.Mode.SingleNodeWriter } },
        }));
    }
}
