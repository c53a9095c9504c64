using Csi.V1;
using CsiScst.IntegrationTests.Infrastructure;
using Grpc.Core;

namespace CsiScst.IntegrationTests.Foundation;

/// <summary>The real binary on a real Unix socket: Identity, socket housekeeping, SIGTERM, metrics.</summary>
public sealed class IdentityAndHostingTests : IClassFixture<StandaloneFixture>
{
    private readonly StandaloneFixture _fixture;

    public IdentityAndHostingTests(StandaloneFixture fixture)
    {
        _fixture = fixture;
    }

    [Fact]
    public async Task GetPluginInfo_reports_driver_name_and_assembly_version()
    {
        var client = new Identity.IdentityClient(_fixture.Channel);
        var info = await client.GetPluginInfoAsync(new GetPluginInfoRequest());
        Assert.Equal("csi-scst.io", info.Name);
        Assert.Equal(typeof(CsiScst.Core.DriverOptions).Assembly.GetName().Version!.ToString(3), info.VendorVersion);
    }

    [Fact]
    public async Task GetPluginCapabilities_advertises_the_controller_service()
    {
        var client = new Identity.IdentityClient(_fixture.Channel);
        var caps = await client.GetPluginCapabilitiesAsync(new GetPluginCapabilitiesRequest());
        Assert.Contains(caps.Capabilities, c => c.Service?.Type == PluginCapability.Types.Service.Types.Type.ControllerService);
        // Topology is off unless zones are configured: volumes are reachable from every node.
        Assert.DoesNotContain(caps.Capabilities, c => c.Service?.Type == PluginCapability.Types.Service.Types.Type.VolumeAccessibilityConstraints);
    }

    [Fact]
    public async Task Probe_answers_ready()
    {
        var client = new Identity.IdentityClient(_fixture.Channel);
        var probe = await client.ProbeAsync(new ProbeRequest());
        Assert.True(probe.Ready);
    }

    [Fact]
    public async Task NodeGetInfo_node_id_carries_node_name_and_initiator_iqn()
    {
        var client = new Node.NodeClient(_fixture.Channel);
        var info = await client.NodeGetInfoAsync(new NodeGetInfoRequest());
        Assert.Equal("node1/" + StandaloneFixture.InitiatorName, info.NodeId);
        Assert.Null(info.AccessibleTopology);
    }

    [Fact]
    public async Task Services_the_plugin_does_not_offer_answer_unimplemented()
    {
        var group = new GroupController.GroupControllerClient(_fixture.Channel);
        var e = await Assert.ThrowsAsync<RpcException>(() => group.GroupControllerGetCapabilitiesAsync(new GroupControllerGetCapabilitiesRequest()).ResponseAsync);
        Assert.Equal(StatusCode.Unimplemented, e.StatusCode);
    }

    [Fact]
    public async Task Metrics_endpoint_counts_real_calls_by_method_and_code()
    {
        var client = new Identity.IdentityClient(_fixture.Channel);
        await client.ProbeAsync(new ProbeRequest());
        await Assert.ThrowsAsync<RpcException>(() => new Controller.ControllerClient(_fixture.Channel).DeleteVolumeAsync(new DeleteVolumeRequest()).ResponseAsync);

        using var http = new HttpClient();
        var text = await http.GetStringAsync($"http://127.0.0.1:{_fixture.MetricsPort}/metrics");
        Assert.Matches("csi_scst_rpc_requests_total\\{service=\"csi.v1.Identity\",method=\"Probe\",code=\"OK\"\\} [1-9]", text);
        Assert.Matches("csi_scst_rpc_requests_total\\{service=\"csi.v1.Controller\",method=\"DeleteVolume\",code=\"InvalidArgument\"\\} [1-9]", text);
        Assert.Contains("csi_scst_rpc_duration_seconds_bucket", text);
        Assert.Equal("ok\n", await http.GetStringAsync($"http://127.0.0.1:{_fixture.MetricsPort}/healthz"));
        Assert.Equal("ready\n", await http.GetStringAsync($"http://127.0.0.1:{_fixture.MetricsPort}/readyz"));
    }
}

/// <summary>Each test runs its own process: these stop or compete for sockets.</summary>
public sealed class SocketLifecycleTests
{
    private static string[] Args(string socket) =>
        ["controller", "--endpoint", "unix://" + socket, "--node-id", "ctrl"];

    [Fact]
    public async Task Sigterm_removes_the_socket_and_exits_zero()
    {
        using var dir = new TempDirectory();
        var socket = dir.Combine("csi.sock");
        await using var driver = DriverProcess.Start(Args(socket));
        await driver.WaitForSocketAsync(socket);

        Assert.Equal(0, await driver.StopAsync());
        Assert.False(File.Exists(socket), "the socket file must be removed on shutdown");
    }

    [Fact]
    public async Task A_leftover_file_at_the_socket_path_is_replaced()
    {
        using var dir = new TempDirectory();
        var socket = dir.Combine("csi.sock");
        await File.WriteAllTextAsync(socket, "left behind");

        await using var driver = DriverProcess.Start(Args(socket));
        await driver.WaitForSocketAsync(socket);
        using var channel = DriverProcess.Channel(socket);
        var info = await new Identity.IdentityClient(channel).GetPluginInfoAsync(new GetPluginInfoRequest());
        Assert.Equal("csi-scst.io", info.Name);
    }

    [Fact]
    public async Task A_socket_another_live_process_serves_is_not_stolen()
    {
        using var dir = new TempDirectory();
        var socket = dir.Combine("csi.sock");
        await using var first = DriverProcess.Start(Args(socket));
        await first.WaitForSocketAsync(socket);

        await using var second = DriverProcess.Start(Args(socket));
        await second.WaitForExitAsync();
        Assert.NotEqual(0, second.ExitCode);
        Assert.Contains("already serving", second.Output);

        // The first one still answers.
        using var channel = DriverProcess.Channel(socket);
        var probe = await new Identity.IdentityClient(channel).ProbeAsync(new ProbeRequest());
        Assert.True(probe.Ready);
    }

    [Fact]
    public async Task Sigkill_leaves_a_stale_socket_that_the_next_start_replaces()
    {
        using var dir = new TempDirectory();
        var socket = dir.Combine("csi.sock");
        var crashed = DriverProcess.Start(Args(socket));
        await crashed.WaitForSocketAsync(socket);
        crashed.Kill();
        await crashed.WaitForExitAsync();
        Assert.True(File.Exists(socket));

        await using var restarted = DriverProcess.Start(Args(socket));
        await restarted.WaitForSocketAsync(socket);
        await crashed.DisposeAsync();
    }

    [Fact]
    public async Task Driver_name_is_configurable_and_validated()
    {
        using var dir = new TempDirectory();
        var socket = dir.Combine("csi.sock");
        await using (var driver = DriverProcess.Start([.. Args(socket), "--driver-name", "iscsi.example.com"]))
        {
            await driver.WaitForSocketAsync(socket);
            using var channel = DriverProcess.Channel(socket);
            Assert.Equal("iscsi.example.com", (await new Identity.IdentityClient(channel).GetPluginInfoAsync(new GetPluginInfoRequest())).Name);
        }

        await using var bad = DriverProcess.Start([.. Args(socket), "--driver-name", "-" + new string('a', 70)]);
        await bad.WaitForExitAsync();
        Assert.Equal(2, bad.ExitCode);
        Assert.Contains("--driver-name", bad.Output);
    }

    [Fact]
    public async Task Csi_endpoint_environment_variable_sets_the_socket()
    {
        using var dir = new TempDirectory();
        var socket = dir.Combine("env.sock");
        await using var driver = DriverProcess.Start(["controller", "--node-id", "ctrl"], new Dictionary<string, string> { ["CSI_ENDPOINT"] = "unix://" + socket });
        await driver.WaitForSocketAsync(socket);
    }
}

/// <summary>SIGTERM lets calls in flight finish before the process exits (kubelet and the sidecars retry nothing).</summary>
public sealed class GracefulShutdownTests
{
    [Fact]
    public async Task Sigterm_drains_a_call_in_flight_then_exits_zero_and_refuses_new_connections()
    {
        using var dir = new TempDirectory();
        var socket = dir.Combine("csi.sock");
        await using var driver = DriverProcess.Start(
            ["controller", "--endpoint", "unix://" + socket, "--node-id", "ctrl"],
            new Dictionary<string, string> { [CsiScst.Core.Faults.DelayPoints.EnvironmentVariable] = "ControllerGetCapabilities:3000" });
        await driver.WaitForSocketAsync(socket);
        using var channel = DriverProcess.Channel(socket);
        var inFlight = new Controller.ControllerClient(channel).ControllerGetCapabilitiesAsync(new ControllerGetCapabilitiesRequest()).ResponseAsync;
        await Task.Delay(500);
        Assert.False(inFlight.IsCompleted);

        var stopping = driver.StopAsync();
        await Task.Delay(500);
        // No new connections while draining.
        using (var late = DriverProcess.Channel(socket))
        {
            var refused = await Assert.ThrowsAsync<RpcException>(() => new Identity.IdentityClient(late).ProbeAsync(new ProbeRequest()).ResponseAsync);
            Assert.Equal(StatusCode.Unavailable, refused.StatusCode);
        }

        var capabilities = await inFlight;
        Assert.NotEmpty(capabilities.Capabilities);
        Assert.Equal(0, await stopping);
        Assert.False(File.Exists(socket));
    }
}
