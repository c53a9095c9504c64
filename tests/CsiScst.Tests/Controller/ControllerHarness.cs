using System.Net;
using System.Net.Sockets;
using CsiScst.Commands;
using CsiScst.Core;
using CsiScst.Core.Grpc;
using CsiScst.Core.Metrics;
using CsiScst.Core.Tls;
using CsiScst.Csi;
using CsiScst.Csi.Controller;
using CsiScst.Csi.Controller.Engines;
using CsiScst.Hosting;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Logging;

namespace CsiScst.Tests.Controller;

/// <summary>A CA with a server and a client certificate in a private directory, loaded both ways.</summary>
public sealed class TestTls : IDisposable
{
    public TestTls()
    {
        Directory = System.IO.Directory.CreateTempSubdirectory("csi-scst-tls-").FullName;
        MutualTls.GenerateFiles(Directory, ["127.0.0.1", "localhost"], TimeSpan.FromDays(1));
        Server = MutualTls.Load(Path.Combine(Directory, "ca.crt"), Path.Combine(Directory, "server.crt"), Path.Combine(Directory, "server.key"));
        Client = MutualTls.Load(Path.Combine(Directory, "ca.crt"), Path.Combine(Directory, "client.crt"), Path.Combine(Directory, "client.key"));
    }

    public string Directory { get; }
    public MutualTls Server { get; }
    public MutualTls Client { get; }

    public void Dispose() => System.IO.Directory.Delete(Directory, recursive: true);
}

/// <summary>
/// The real controller role (the same hosting as <c>csi-scst controller</c>) on a Unix socket in a private
/// directory, with /metrics on a free loopback port, dialing the given engines over mTLS.
/// </summary>
public sealed class ControllerHarness : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly string _directory;

    private ControllerHarness(WebApplication app, string directory, string socket, int metricsPort)
    {
        _app = app;
        _directory = directory;
        Socket = socket;
        MetricsUrl = $"http://127.0.0.1:{metricsPort}/metrics";
        Channel = Channels.ForUnixSocket(socket);
        Controller = new global::Csi.V1.Controller.ControllerClient(Channel);
        Identity = new global::Csi.V1.Identity.IdentityClient(Channel);
    }

    public string Socket { get; }
    public string MetricsUrl { get; }
    public GrpcChannel Channel { get; }
    public global::Csi.V1.Controller.ControllerClient Controller { get; }
    public global::Csi.V1.Identity.IdentityClient Identity { get; }

    public static async Task<ControllerHarness> StartAsync(MutualTls clientTls, IEnumerable<FakeEngine> engines, Action<ControllerSetup>? configure = null,
        Func<ControllerSetup, ControllerSetup>? replace = null)
    {
        var directory = Directory.CreateTempSubdirectory("csi-scst-ctl-").FullName;
        var socket = Path.Combine(directory, "csi.sock");
        var metricsPort = Ports.Free();
        var setup = new ControllerSetup();
        setup.Controller.Tls = clientTls;
        setup.Controller.DiscoveryCacheTime = TimeSpan.FromSeconds(30);
        setup.Controller.EngineInfoCacheTime = TimeSpan.FromSeconds(2);
        setup.Controller.EngineInfoTimeout = TimeSpan.FromSeconds(5);
        foreach (var engine in engines)
        {
            StaticEngineDiscovery.TryParse($"{engine.NodeId}={engine.Address}", out var endpoint, out var error);
            setup.StaticEngines.Add(endpoint ?? throw new InvalidOperationException(error));
        }
        configure?.Invoke(setup);
        if (replace is not null)
        {
            setup = replace(setup);
        }
        var settings = new CommonSettings(EndpointAddress.Unix(socket), new DriverOptions { NodeName = "controller-test" }, LogFormat.Text,
            LogLevel.Warning, EndpointAddress.Tcp("127.0.0.1", metricsPort), TimeSpan.FromSeconds(5));
        var plan = CsiPlans.Create("controller", settings);
        var capabilities = new CsiCapabilities();
        plan.Services.Add(s => s.AddCsiScstController(capabilities, setup));
        plan.Endpoints.Add(app => app.MapCsiServices(controller: true, node: false));
        var app = ServerHost.Build(plan, new DriverMetrics(), new ExternalTime());
        await app.StartAsync();
        return new ControllerHarness(app, directory, socket, metricsPort);
    }

    public async Task<string> MetricsAsync()
    {
        using var http = new HttpClient();
        return await http.GetStringAsync(MetricsUrl);
    }

    public async ValueTask DisposeAsync()
    {
        Channel.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
        Directory.Delete(_directory, recursive: true);
    }
}
