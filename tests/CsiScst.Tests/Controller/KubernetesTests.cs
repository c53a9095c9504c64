using System.Text;
using System.Text.Json.Nodes;
using Csi.V1;
using CsiScst.Core.Ids;
using CsiScst.Csi.Controller;
using CsiScst.Csi.Controller.Chap;
using EnsureVolumeRequest = CsiScst.Engine.V1.EnsureVolumeRequest;
using Grpc.Core;
using CsiScst.Csi;

namespace CsiScst.Tests.Controller;

/// <summary>CHAP (static and generated into a Kubernetes Secret) and engine discovery through the Kubernetes API.</summary>
public sealed class KubernetesTests : IAsyncLifetime
{
    private const long GiB = 1L << 30;
    private readonly TestTls _tls = new();
    private FakeKubernetesApi _api = null!;

    public async Task InitializeAsync() => _api = await FakeKubernetesApi.StartAsync();

    public async Task DisposeAsync()
    {
        await _api.DisposeAsync();
        _tls.Dispose();
    }

    private static CreateVolumeRequest Create(string name, string chap, string? pv = null)
    {
        var request = new CreateVolumeRequest
        {
            Name = name,
            VolumeCapabilities = { new VolumeCapability { Block = new(), AccessMode = new() { Mode = VolumeCapability.Types.AccessMode.Types.Mode.SingleNodeWriter } } },
            Parameters = { ["pool"] = "files", ["chap"] = chap },
        };
        if (pv is not null)
        {
            request.Parameters[VolumeParameters.PvNameKey] = pv;
        }
        return request;
    }

    private async Task<(FakeEngine Engine, ControllerHarness Harness)> StartAsync(bool kubernetes = true)
    {
        var engine = new FakeEngine("node-a", FakeEngine.Pool("files", 10 * GiB));
        await engine.StartAsync(_tls.Server);
        var harness = await ControllerHarness.StartAsync(_tls.Client, [engine], s =>
        {
            if (kubernetes)
            {
                s.Kubernetes.KubeconfigPath = _api.KubeconfigPath;
                s.Controller.Namespace = _api.Namespace;
            }
        });
        return (engine, harness);
    }

    private static string Everything(CreateVolumeResponse response) =>
        response.Volume.ToString();

    [Fact]
    public async Task Static_chap_comes_from_the_secrets_and_never_shows_in_contexts_or_errors()
    {
        var (engine, harness) = await StartAsync(kubernetes: false);
        await using var _ = engine;
        await using var __ = harness;

        var request = Create("pvc-static", "static");
        request.Secrets.Add(new Dictionary<string, string> { ["username"] = "alice", ["password"] = "TwelveChars!x", ["username_in"] = "target", ["password_in"] = "OtherSecret99" });
        var response = await harness.Controller.CreateVolumeAsync(request);
        Assert.Equal("mutual", response.Volume.VolumeContext[VolumeContextKeys.Chap]);
        Assert.DoesNotContain("TwelveChars", Everything(response));
        var sent = ((EnsureVolumeRequest)engine.Calls.Single(c => c.Method == "EnsureVolume").Request).Options.Chap;
        Assert.Equal(("alice", "TwelveChars!x", "target", "OtherSecret99"), (sent.User, sent.Secret, sent.MutualUser, sent.MutualSecret));

        var publish = await harness.Controller.ControllerPublishVolumeAsync(new ControllerPublishVolumeRequest
        {
            VolumeId = response.Volume.VolumeId, NodeId = "w-1/iqn.2000-01.org.x:y", VolumeCapability = request.VolumeCapabilities[0], Secrets = { request.Secrets },
        });
        Assert.DoesNotContain("TwelveChars", publish.ToString());

        var shortSecret = Create("pvc-short", "static");
        shortSecret.Secrets.Add(new Dictionary<string, string> { ["username"] = "alice", ["password"] = "short=1" });
        var e = await Assert.ThrowsAsync<RpcException>(async () => await harness.Controller.CreateVolumeAsync(shortSecret));
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.DoesNotContain("short=1", e.Status.Detail);

        var missing = await Assert.ThrowsAsync<RpcException>(async () => await harness.Controller.CreateVolumeAsync(Create("pvc-nosecret", "static")));
        Assert.Equal(StatusCode.InvalidArgument, missing.StatusCode);
        Assert.Contains("provisioner-secret-name", missing.Status.Detail);

        var generated = await Assert.ThrowsAsync<RpcException>(async () => await harness.Controller.CreateVolumeAsync(Create("pvc-gen", "generated", "pv-1")));
        Assert.Equal(StatusCode.InvalidArgument, generated.StatusCode);
        Assert.Contains("--kubeconfig", generated.Status.Detail);
    }

    [Fact]
    public async Task Generated_chap_lives_in_a_labelled_secret_reused_on_retry_and_deleted_with_the_volume()
    {
        var (engine, harness) = await StartAsync();
        await using var _ = engine;
        await using var __ = harness;

        var first = await harness.Controller.CreateVolumeAsync(Create("pvc-gen", "generated", "pv-gen"));
        Assert.Equal("mutual", first.Volume.VolumeContext[VolumeContextKeys.Chap]);
        var secret = _api.Secrets["pv-gen-chap"];
        var key = new ObjectNames("csi").VolumeKey("pvc-gen");
        Assert.Equal(key, secret["metadata"]!["labels"]![ChapSecrets.VolumeKeyLabel]!.GetValue<string>());
        string Data(string k) => Encoding.UTF8.GetString(Convert.FromBase64String(secret["data"]![k]!.GetValue<string>()));
        var sent = ((EnsureVolumeRequest)engine.Calls.Single(c => c.Method == "EnsureVolume").Request).Options.Chap;
        Assert.Equal((Data("username"), Data("password"), Data("username_in"), Data("password_in")), (sent.User, sent.Secret, sent.MutualUser, sent.MutualSecret));
        Assert.True(sent.Secret.Length >= 12 && sent.MutualSecret.Length >= 12 && sent.Secret != sent.MutualSecret);
        Assert.DoesNotContain(sent.Secret, first.Volume.ToString());

        var second = await harness.Controller.CreateVolumeAsync(Create("pvc-gen", "generated", "pv-gen"));
        Assert.Equal(first.Volume.VolumeId, second.Volume.VolumeId);
        Assert.Single(_api.Requests, r => r.StartsWith("POST", StringComparison.Ordinal));
        var again = ((EnsureVolumeRequest)engine.Calls.Last(c => c.Method == "EnsureVolume").Request).Options.Chap;
        Assert.Equal(sent, again);

        await harness.Controller.DeleteVolumeAsync(new DeleteVolumeRequest { VolumeId = first.Volume.VolumeId });
        Assert.Empty(_api.Secrets);
        Assert.Empty(engine.Volumes);
        Assert.Contains(_api.Requests, r => r.Contains("labelSelector=csi-scst.io%2Finstance%3Dcsi%2Ccsi-scst.io%2Fvolume-key%3D" + key, StringComparison.Ordinal)
            || r.Contains($"labelSelector=csi-scst.io/instance=csi,csi-scst.io/volume-key={key}", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Generated_chap_failures_are_clear()
    {
        var (engine, harness) = await StartAsync();
        await using var _ = engine;
        await using var __ = harness;

        var noPv = await Assert.ThrowsAsync<RpcException>(async () => await harness.Controller.CreateVolumeAsync(Create("pvc-nopv", "generated")));
        Assert.Equal(StatusCode.InvalidArgument, noPv.StatusCode);
        Assert.Contains("--extra-create-metadata", noPv.Status.Detail);

        _api.Secrets["pv-taken-chap"] = new JsonObject { ["metadata"] = new JsonObject { ["name"] = "pv-taken-chap" }, ["data"] = new JsonObject() };
        var taken = await Assert.ThrowsAsync<RpcException>(async () => await harness.Controller.CreateVolumeAsync(Create("pvc-taken", "generated", "pv-taken")));
        Assert.Equal(StatusCode.FailedPrecondition, taken.StatusCode);

        _api.FailWith = 403;
        var forbidden = await Assert.ThrowsAsync<RpcException>(async () => await harness.Controller.CreateVolumeAsync(Create("pvc-forbidden", "generated", "pv-f")));
        Assert.Equal(StatusCode.FailedPrecondition, forbidden.StatusCode);
        Assert.Contains("service account", forbidden.Status.Detail);
        _api.FailWith = 503;
        var down = await Assert.ThrowsAsync<RpcException>(async () => await harness.Controller.CreateVolumeAsync(Create("pvc-down", "generated", "pv-d")));
        Assert.Equal(StatusCode.Unavailable, down.StatusCode);
        Assert.Empty(engine.Volumes);
    }

    [Fact]
    public async Task Without_a_first_discovery_creating_is_unavailable_not_a_bad_request()
    {
        _api.FailWith = 503;
        await using var harness = await ControllerHarness.StartAsync(_tls.Client, [], s =>
        {
            s.Discovery = EngineDiscoveryMode.Kubernetes;
            s.Kubernetes.KubeconfigPath = _api.KubeconfigPath;
            s.Controller.Namespace = _api.Namespace;
        });
        var e = await Assert.ThrowsAsync<RpcException>(async () => await harness.Controller.CreateVolumeAsync(Create("pvc-early", "none")));
        Assert.Equal(StatusCode.Unavailable, e.StatusCode);
        Assert.Contains("discovery", e.Status.Detail);
    }

    [Fact]
    public async Task Engines_are_discovered_from_running_target_pods()
    {
        var port = Ports.Free();
        await using var a = new FakeEngine("storage-a", FakeEngine.Pool("files", 10 * GiB));
        await using var b = new FakeEngine("storage-b", FakeEngine.Pool("files", 20 * GiB));
        await a.StartAsync(_tls.Server, "127.0.0.2", port);
        await b.StartAsync(_tls.Server, "127.0.0.3", port);
        var labels = new Dictionary<string, string> { ["app.kubernetes.io/name"] = "csi-scst", ["app.kubernetes.io/component"] = "target" };
        _api.AddPod("target-a", "127.0.0.2", "Running", labels, "storage-a");
        _api.AddPod("target-b", "127.0.0.3", "Running", labels, "storage-b");
        _api.AddPod("target-c", "", "Pending", labels, "storage-c");
        _api.AddPod("node-plugin", "127.0.0.4", "Running", new Dictionary<string, string> { ["app.kubernetes.io/component"] = "node" }, "storage-a");

        await using var harness = await ControllerHarness.StartAsync(_tls.Client, [], s =>
        {
            s.Discovery = EngineDiscoveryMode.Kubernetes;
            s.Kubernetes.KubeconfigPath = _api.KubeconfigPath;
            s.Controller.Namespace = _api.Namespace;
            s.KubernetesDiscovery.Selector = "app.kubernetes.io/name=csi-scst,app.kubernetes.io/component=target";
            s.KubernetesDiscovery.Port = port;
            s.Controller.DiscoveryCacheTime = TimeSpan.Zero;
        });
        var onB = await harness.Controller.CreateVolumeAsync(Create("pvc-d1", "none"));
        Assert.Contains(":storage-b:", onB.Volume.VolumeId);
        var onA = Create("pvc-d2", "none");
        onA.Parameters["targetNode"] = "storage-a";
        Assert.Contains(":storage-a:", (await harness.Controller.CreateVolumeAsync(onA)).Volume.VolumeId);
        Assert.Contains(_api.Requests, r => r.StartsWith("GET /api/v1/namespaces/csi-scst/pods?labelSelector=", StringComparison.Ordinal));

        // The API going away does not stop work on engines already known.
        _api.FailWith = 503;
        await harness.Controller.DeleteVolumeAsync(new DeleteVolumeRequest { VolumeId = onB.Volume.VolumeId });
        Assert.Empty(b.Volumes);
        var metrics = await harness.MetricsAsync();
        Assert.Contains("csi_scst_controller_discoveries_total{outcome=\"failure\"}", metrics);
    }
}
