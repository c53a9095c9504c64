using CsiScst.IntegrationTests.Infrastructure;
using CsiScst.IntegrationTests.Tgt;
using Grpc.Net.Client;

namespace CsiScst.IntegrationTests.Foundation;

/// <summary>One real `csi-scst standalone` process serving a private socket and metrics port.</summary>
public sealed class StandaloneFixture : IAsyncLifetime
{
    public const string InitiatorName = "iqn.2026-11.io.csi-scst.test:node1";

    private readonly TempDirectory _dir = new("csi-scst-sa");

    public string SocketPath => _dir.Combine("csi.sock");
    public int MetricsPort { get; } = Ports.Free();
    public DriverProcess Process { get; private set; } = null!;
    /// <summary>The private tgtd the standalone engine adopts, so no test touches a system tgtd or port 3260.</summary>
    private TgtdInstance? _tgtd;
    public GrpcChannel Channel { get; private set; } = null!;
    public string DataDir => _dir.Combine("data");

    public async Task InitializeAsync()
    {
        _tgtd = await TgtdInstance.CreateAsync();
        Process = DriverProcess.Start(
        [
            "standalone",
            "--endpoint", "unix://" + SocketPath,
            "--data-dir", DataDir,
            "--engine-api-port", Ports.Free().ToString(),
            "--portal", _tgtd.Portal,
            "--tgt-control-port", _tgtd.ControlPort.ToString(),
            "--node-id", "node1",
            "--initiator-name", InitiatorName,
            "--metrics-address", $"127.0.0.1:{MetricsPort}",
        ]);
        await Process.WaitForSocketAsync(SocketPath);
        Channel = DriverProcess.Channel(SocketPath);
    }

    public async Task DisposeAsync()
    {
        Channel?.Dispose();
        if (Process is not null)
        {
            await Process.DisposeAsync();
        }
        if (_tgtd is not null)
        {
            await _tgtd.DisposeAsync();
        }
        _dir.Dispose();
    }
}
