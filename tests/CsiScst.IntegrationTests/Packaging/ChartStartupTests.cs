extern alias k8sfull;

using CsiScst.Core.Grpc;
using CsiScst.Core.Tls;
using CsiScst.Engine.Api;
using CsiScst.IntegrationTests.Infrastructure;
using Grpc.Core;
using k8sfull::k8s.Models;

namespace CsiScst.IntegrationTests.Packaging;

/// <summary>
/// The real binary started with the chart's own arguments and the chart's generated (genCA/genSignedCert)
/// certificates: the controller serves CSI on its socket, the target engine serves its API over mutual TLS
/// to the chart's controller certificate and refuses a certificate from another installation's CA.
/// </summary>
[Collection(PackagingCollection.Name)]
public sealed class ChartStartupTests(PackagingFixture fixture)
{
    [Fact]
    public async Task Controller_starts_with_the_chart_arguments_and_serves_csi()
    {
        var chart = fixture.Default;
        var pod = chart.Typed<V1Deployment>("Deployment", $"{HelmTools.Release}-controller").Spec.Template.Spec;
        using var sandbox = new PodSandbox(chart, pod);
        await using var process = sandbox.Start();
        var socket = Path.Combine(sandbox.LocalPath("/csi"), "csi.sock");
        await process.WaitForSocketAsync(socket);
        using var channel = DriverProcess.Channel(socket);
        var identity = new global::Csi.V1.Identity.IdentityClient(channel);
        var info = await identity.GetPluginInfoAsync(new global::Csi.V1.GetPluginInfoRequest());
        Assert.Equal("csi-scst.io", info.Name);
        var controller = new global::Csi.V1.Controller.ControllerClient(channel);
        var capabilities = await controller.ControllerGetCapabilitiesAsync(new global::Csi.V1.ControllerGetCapabilitiesRequest());
        Assert.Contains(capabilities.Capabilities, c => c.Rpc.Type == global::Csi.V1.ControllerServiceCapability.Types.RPC.Types.Type.PublishUnpublishVolume);

        // The metrics port of the chart answers, and every csi-scst series there is documented.
        var metricsPort = sandbox.Ports[pod.Containers.Single(c => c.Name == "csi-scst").Ports.Single(p => p.Name == "metrics").ContainerPort];
        using var http = new HttpClient();
        var metrics = await http.GetStringAsync($"http://127.0.0.1:{metricsPort}/metrics");
        Assert.Contains("csi_scst_rpc_requests_total{", metrics);
        MetricsDocumentation.AssertDocumented(metrics);
        Assert.Equal(0, await process.StopAsync());
    }

    [Fact]
    public async Task Node_plugin_starts_with_the_chart_arguments_and_registers_its_initiator()
    {
        // The chart's default runs the host's iscsiadm through nsenter into PID 1's mount namespace, which
        // this sandbox does not allow; the image's own iscsiadm (hostIscsiadm=false) takes every other flag as is.
        var chart = await fixture.Tools.RenderAsync("--set", "node.hostIscsiadm=false");
        var pod = chart.Typed<V1DaemonSet>("DaemonSet", $"{HelmTools.Release}-node").Spec.Template.Spec;
        using var sandbox = new PodSandbox(chart, pod);
        await using var process = sandbox.Start();
        var socket = Path.Combine(sandbox.LocalPath("/csi"), "csi.sock");
        await process.WaitForSocketAsync(socket);
        using var channel = DriverProcess.Channel(socket);
        var info = await new global::Csi.V1.Node.NodeClient(channel).NodeGetInfoAsync(new global::Csi.V1.NodeGetInfoRequest());
        // The node id carries the initiator IQN, generated into the (host's) /etc/iscsi when it was missing.
        var nameFile = File.ReadAllText(Path.Combine(sandbox.LocalPath("/etc/iscsi"), "initiatorname.iscsi")).Trim();
        Assert.StartsWith("InitiatorName=", nameFile);
        Assert.Equal($"{PodSandbox.NodeName}/{nameFile["InitiatorName=".Length..]}", info.NodeId);
        var capabilities = await new global::Csi.V1.Node.NodeClient(channel).NodeGetCapabilitiesAsync(new global::Csi.V1.NodeGetCapabilitiesRequest());
        Assert.Contains(capabilities.Capabilities, c => c.Rpc.Type == global::Csi.V1.NodeServiceCapability.Types.RPC.Types.Type.VolumeMountGroup);

        var metricsPort = sandbox.Ports[pod.Containers.Single(c => c.Name == "csi-scst").Ports.Single(p => p.Name == "metrics").ContainerPort];
        using var http = new HttpClient();
        MetricsDocumentation.AssertDocumented(await http.GetStringAsync($"http://127.0.0.1:{metricsPort}/metrics"));
        Assert.Equal(0, await process.StopAsync());
    }

    /// <summary>
    /// tgt without a tgtd, and SCST (the chart's default) without its kernel modules: the engine serves its API
    /// and says on /readyz why it is not ready, naming what the chart pointed it at. (LIO is left out: its
    /// probe loads kernel modules and mounts configfs.)
    /// </summary>
    [Theory]
    [InlineData("tgt", "tgtd does not answer on control port")]
    [InlineData("scst", "SCST is not loaded")]
    public async Task Target_starts_with_the_chart_arguments_and_trusts_only_the_chart_controller_certificate(string engine, string notReady)
    {
        var controlPort = Ports.Free();
        var chart = await fixture.Tools.RenderAsync("--set", $"target.engine={engine}", "--set", "target.tgt.startDaemon=false",
            "--set", $"target.tgt.controlPort={controlPort}");
        var pod = chart.Typed<V1DaemonSet>("DaemonSet", $"{HelmTools.Release}-target").Spec.Template.Spec;
        using var sandbox = new PodSandbox(chart, pod);
        await using var process = sandbox.Start();
        var container = pod.Containers.Single(c => c.Name == "csi-scst");
        var apiPort = sandbox.Ports[container.Ports.Single(p => p.Name == "engine-api").ContainerPort];
        await process.WaitForPortAsync("127.0.0.1", apiPort);

        using var controllerCert = new TempDirectory("csi-scst-ctl-tls");
        var controllerTls = WriteTls(chart, $"{HelmTools.Release}-engine-tls-controller", controllerCert);
        using (var client = new EngineClient(EndpointAddress.Tcp("127.0.0.1", apiPort), controllerTls))
        {
            var info = await client.Api.GetEngineInfoAsync(new CsiScst.Engine.V1.GetEngineInfoRequest(), deadline: DateTime.UtcNow.AddSeconds(30));
            Assert.Equal(PodSandbox.NodeName, info.NodeId);
            Assert.Contains(info.Pools, p => p.Name == "files");
        }

        // Another installation's CA (a second render generates a fresh one): refused during the handshake.
        var other = await fixture.Tools.RenderAsync();
        using var otherCert = new TempDirectory("csi-scst-other-tls");
        var otherTls = WriteTls(other, $"{HelmTools.Release}-engine-tls-controller", otherCert);
        using (var stranger = new EngineClient(EndpointAddress.Tcp("127.0.0.1", apiPort), otherTls))
        {
            var refused = await Assert.ThrowsAsync<RpcException>(async () =>
                await stranger.Api.GetEngineInfoAsync(new CsiScst.Engine.V1.GetEngineInfoRequest(), deadline: DateTime.UtcNow.AddSeconds(30)));
            Assert.True(refused.StatusCode is StatusCode.Unavailable or StatusCode.Internal, refused.ToString());
            Assert.Contains("SSL", refused.Status.DebugException?.ToString() ?? refused.Status.Detail, StringComparison.OrdinalIgnoreCase);
        }

        var metricsPort = sandbox.Ports[container.Ports.Single(p => p.Name == "metrics").ContainerPort];
        using var http = new HttpClient();
        var metrics = await http.GetStringAsync($"http://127.0.0.1:{metricsPort}/metrics");
        Assert.Contains("csi_scst_engine_volumes", metrics);
        MetricsDocumentation.AssertDocumented(metrics);
        var ready = await http.GetAsync($"http://127.0.0.1:{metricsPort}/readyz");
        Assert.Equal(System.Net.HttpStatusCode.ServiceUnavailable, ready.StatusCode);
        var reason = await ready.Content.ReadAsStringAsync();
        Assert.Contains(notReady, reason);
        if (engine == "scst")
        {
            // The sysfs root the chart passes (/sys/kernel/scst_tgt in the pod's /sys mount).
            Assert.Contains(Path.Combine(sandbox.LocalPath("/sys"), "kernel", "scst_tgt"), reason);
        }
        Assert.Equal(0, await process.StopAsync());
    }

    private static MutualTls WriteTls(RenderedChart chart, string secretName, TempDirectory directory)
    {
        var data = chart.Single("Secret", secretName).Json["data"]!.AsObject();
        foreach (var key in new[] { "ca.crt", "tls.crt", "tls.key" })
        {
            File.WriteAllBytes(directory.Combine(key), Convert.FromBase64String((string)data[key]!));
        }
        return MutualTls.Load(directory.Combine("ca.crt"), directory.Combine("tls.crt"), directory.Combine("tls.key"));
    }
}
