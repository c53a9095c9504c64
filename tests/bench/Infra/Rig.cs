using System.Diagnostics;
using CsiScst.Core.Grpc;
using CsiScst.Core.Tls;
using CsiScst.Engine.Api;
using CsiScst.Engine.V1;
using Grpc.Net.Client;

namespace CsiScst.Bench.Infra;

/// <summary>What the bench was told: which binary, where to work, how many repetitions.</summary>
internal sealed record BenchSettings(string Binary, string WorkRoot, int Runs, bool Quick);

/// <summary>
/// A running csi-scst target engine (tgt or the SCST model) in its own process, with its TLS material, state
/// directory, file pool and metrics port; optionally a csi-scst controller process in front of it. Every
/// process, file and tgtd target it made is removed on disposal.
/// </summary>
internal sealed class Rig : IAsyncDisposable
{
    private readonly List<IAsyncDisposable> _owned = [];

    private Rig(BenchSettings settings, string root)
    {
        Settings = settings;
        Root = root;
        InstanceId = "b" + Tools.RandomSuffix(6);
        NodeId = "bench-storage";
        ApiPort = Tools.FreePort();
        TargetMetricsPort = Tools.FreePort();
        ControllerMetricsPort = Tools.FreePort();
        Directory.CreateDirectory(PoolDirectory);
        MutualTls.GenerateFiles(TlsDirectory, ["127.0.0.1"], TimeSpan.FromDays(1));
    }

    public BenchSettings Settings { get; }
    public string Root { get; }
    public string InstanceId { get; }
    public string NodeId { get; }
    public int ApiPort { get; }
    public int TargetMetricsPort { get; }
    public int ControllerMetricsPort { get; }
    public string StateDirectory => Path.Combine(Root, "state");
    public string PoolDirectory => Path.Combine(Root, "pool");
    public string TlsDirectory => Path.Combine(Root, "tls");
    public string ControllerSocket => Path.Combine(Root, "controller.sock");
    public Tgtd? Tgtd { get; private set; }
    public DriverProcess? Target { get; private set; }
    public DriverProcess? Controller { get; private set; }

    public static Rig Create(BenchSettings settings, string name)
    {
        var root = Path.Combine(settings.WorkRoot, name + "-" + Tools.RandomSuffix(6));
        Directory.CreateDirectory(root);
        return new Rig(settings, root);
    }

    public async Task<Tgtd> StartTgtdAsync()
    {
        Tgtd = await Infra.Tgtd.StartAsync();
        return Tgtd;
    }

    public MutualTls ClientTls() => MutualTls.Load(Path.Combine(TlsDirectory, "ca.crt"), Path.Combine(TlsDirectory, "client.crt"), Path.Combine(TlsDirectory, "client.key"));

    public EngineClient EngineClient() => new(EndpointAddress.Tcp("127.0.0.1", ApiPort), ClientTls());

    public GrpcChannel ControllerChannel() => Channels.ForUnixSocket(ControllerSocket);

    /// <summary>Starts <c>csi-scst target</c>: tgt (with <see cref="StartTgtdAsync"/> first) or scst on a sysfs root.</summary>
    public async Task<DriverProcess> StartTargetAsync(string engine, string? scstSysfsRoot = null, string reconcileInterval = "01:00:00",
        string logLevel = "Warning", TimeSpan? timeout = null)
    {
        var args = new List<string>
        {
            "target",
            "--listen", $"tcp://127.0.0.1:{ApiPort}",
            "--tls-ca", Path.Combine(TlsDirectory, "ca.crt"),
            "--tls-cert", Path.Combine(TlsDirectory, "server.crt"),
            "--tls-key", Path.Combine(TlsDirectory, "server.key"),
            "--engine", engine,
            "--state-dir", StateDirectory,
            "--pool", $"name=files,backend=file,path={PoolDirectory}",
            "--node-id", NodeId,
            "--instance-id", InstanceId,
            "--metrics-address", $"127.0.0.1:{TargetMetricsPort}",
            "--reconcile-interval", reconcileInterval,
            "--log-level", logLevel,
        };
        if (engine == "tgt")
        {
            var tgtd = Tgtd ?? throw new InvalidOperationException("start the tgtd first");
            args.AddRange(["--portal", tgtd.Portal, "--tgt-control-port", tgtd.ControlPort.ToString()]);
        }
        else
        {
            args.AddRange(["--portal", "127.0.0.1:3260", "--scst-sysfs-root", scstSysfsRoot!, "--scst-config-file", Path.Combine(Root, "scst.conf")]);
        }
        var process = new DriverProcess(Settings.Binary, args);
        _owned.Add(process);
        Target = process;
        using var client = EngineClient();
        await Tools.WaitForAsync(async () =>
        {
            if (process.Exited)
            {
                throw new InvalidOperationException($"csi-scst target exited:\n{process.Tail()}");
            }
            try
            {
                await client.Api.GetEngineInfoAsync(new GetEngineInfoRequest(), deadline: DateTime.UtcNow.AddSeconds(10));
                return true;
            }
            catch (Grpc.Core.RpcException)
            {
                return false;
            }
        }, "csi-scst target answering", timeout ?? TimeSpan.FromMinutes(5));
        return process;
    }

    /// <summary>Starts <c>csi-scst controller</c> with this rig's engine as its one static engine.</summary>
    public async Task<DriverProcess> StartControllerAsync(string logLevel = "Warning")
    {
        var process = new DriverProcess(Settings.Binary,
        [
            "controller",
            "--endpoint", "unix://" + ControllerSocket,
            "--engine", $"{NodeId}=tcp://127.0.0.1:{ApiPort}",
            "--tls-ca", Path.Combine(TlsDirectory, "ca.crt"),
            "--tls-cert", Path.Combine(TlsDirectory, "client.crt"),
            "--tls-key", Path.Combine(TlsDirectory, "client.key"),
            "--instance-id", InstanceId,
            "--default-pool", "files",
            "--metrics-address", $"127.0.0.1:{ControllerMetricsPort}",
            "--log-level", logLevel,
        ]);
        _owned.Add(process);
        Controller = process;
        using var channel = ControllerChannel();
        var identity = new Csi.V1.Identity.IdentityClient(channel);
        await Tools.WaitForAsync(async () =>
        {
            if (process.Exited)
            {
                throw new InvalidOperationException($"csi-scst controller exited:\n{process.Tail()}");
            }
            if (!File.Exists(ControllerSocket))
            {
                return false;
            }
            try
            {
                await identity.ProbeAsync(new Csi.V1.ProbeRequest(), deadline: DateTime.UtcNow.AddSeconds(10));
                return true;
            }
            catch (Grpc.Core.RpcException)
            {
                return false;
            }
        }, "csi-scst controller answering", TimeSpan.FromMinutes(2));
        return process;
    }

    /// <summary>Waits until the engine's start-up reconcile finished (its run counter moved and no pass is in progress).</summary>
    public async Task WaitForStartupReconcileAsync(TimeSpan timeout)
    {
        await Tools.WaitForAsync(async () =>
        {
            if (Target!.Exited)
            {
                throw new InvalidOperationException($"csi-scst target exited:\n{Target.Tail()}");
            }
            var prom = await Prom.ScrapeAsync(TargetMetricsPort, CancellationToken.None);
            return prom.Sum("csi_scst_engine_reconcile_duration_seconds_count") >= 1;
        }, "the start-up reconcile", timeout, TimeSpan.FromMilliseconds(250));
    }

    public async ValueTask DisposeAsync()
    {
        for (var i = _owned.Count - 1; i >= 0; i--)
        {
            await _owned[i].DisposeAsync();
        }
        if (Tgtd is not null)
        {
            await Tgtd.DisposeAsync();
        }
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    public static double Seconds(long startedTimestamp) => Stopwatch.GetElapsedTime(startedTimestamp).TotalSeconds;
}
