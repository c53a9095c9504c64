using System.CommandLine;
using CsiScst.Backends.Pools;
using CsiScst.Core.Errors;
using CsiScst.Core.Grpc;
using CsiScst.Core.Tls;
using CsiScst.Csi;
using CsiScst.Csi.Controller;
using CsiScst.Csi.Controller.Engines;
using CsiScst.Engine;
using CsiScst.Hosting;
using CsiScst.Targets;
using CsiScst.Targets.Tgt;
using Microsoft.Extensions.DependencyInjection;

namespace CsiScst.Commands;

/// <summary>
/// Where the standalone process's own engine API listens and the TLS material to reach it: the controller
/// part of standalone dials this exactly as a cluster controller dials a remote target (mutual TLS).
/// </summary>
internal sealed record StandaloneEngine(string NodeId, EndpointAddress Endpoint, string TlsDirectory)
{
    public string CaPath => Path.Combine(TlsDirectory, "ca.crt");
    public string ClientCertificatePath => Path.Combine(TlsDirectory, "client.crt");
    public string ClientKeyPath => Path.Combine(TlsDirectory, "client.key");
    public string ServerCertificatePath => Path.Combine(TlsDirectory, "server.crt");
    public string ServerKeyPath => Path.Combine(TlsDirectory, "server.key");

    /// <summary>The controller side's credentials (client certificate, the engine's CA).</summary>
    public MutualTls ClientTls() => MutualTls.Load(CaPath, ClientCertificatePath, ClientKeyPath);

    /// <summary>The certificates of a fresh data directory are made on first start (a CA, a server and a client certificate).</summary>
    public void EnsureCertificates()
    {
        if (new[] { CaPath, ClientCertificatePath, ClientKeyPath, ServerCertificatePath, ServerKeyPath }.All(File.Exists))
        {
            return;
        }
        Directory.CreateDirectory(TlsDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        MutualTls.GenerateFiles(TlsDirectory, [Endpoint.Host ?? "127.0.0.1", "127.0.0.1", "localhost"], TimeSpan.FromDays(3650));
    }
}

/// <summary>All roles in one process.</summary>
internal static class StandaloneCommand
{
    public const string DefaultDataDirectory = "/var/lib/csi-scst";

    /// <summary>
    /// tgtd's default control port, so a running tgtd (the packaged service, or one an earlier run started) is
    /// adopted rather than a second daemon started: two tgtds can bind the same portal (SO_REUSEPORT) and the
    /// kernel would then split initiator connections between them. Only our prefixed objects are touched.
    /// </summary>
    public const int DefaultTgtControlPort = 0;

    public static Command Create()
    {
        var common = new CommonOptions("unix:///run/csi-scst/csi.sock");
        var node = new NodeOptionSet();
        var target = new StandaloneTargetOptions();
        var controller = new ControllerOptionSet();
        var command = new Command("standalone", "Run controller, node and target engine in one process on one machine (quick start, tests). The controller still reaches the engine through its gRPC API with mutual TLS.");
        common.AddTo(command);
        node.AddTo(command);
        target.AddTo(command);
        controller.AddPolicyTo(command);
        command.SetAction(async (parse, ct) =>
        {
            var settings = common.Bind(parse);
            ServerPlan targetPlan;
            StandaloneEngine engine;
            try
            {
                (targetPlan, engine) = target.Bind(parse, settings);
            }
            catch (Exception e) when (e is ArgumentException or StatusException or IOException or System.Security.Cryptography.CryptographicException)
            {
                await Console.Error.WriteLineAsync($"error: {e.Message}").ConfigureAwait(false);
                return 2;
            }
            var plan = CsiPlans.Create("standalone", settings);
            var capabilities = new CsiCapabilities();
            var nodeInfo = node.Bind(parse);
            // The controller reaches the local engine exactly as a cluster controller reaches a remote one: mTLS over TCP.
            var setup = controller.Bind(parse, withDiscovery: false);
            setup.Controller.DefaultPool ??= (parse.GetValue(target.Pools) ?? []).Select(p => PoolOptionsParser.Parse(p).Name).FirstOrDefault()
                ?? StandaloneTargetOptions.DefaultPool;
            setup.Controller.Tls = engine.ClientTls();
            setup.StaticEngines.Add(new EngineEndpoint(engine.Endpoint, engine.NodeId, "standalone engine"));
            plan.Services.Add(s => s.AddSingleton(engine).AddCsiScstController(capabilities, setup).AddCsiNode(capabilities, nodeInfo));
            plan.Endpoints.Add(app => app.MapCsiServices(controller: true, node: true));
            // The engine starts first: the controller dials it.
            return await RoleRunner.RunAsync([targetPlan, plan], ct).ConfigureAwait(false);
        });
        return command;
    }
}

/// <summary>The target-engine flags of standalone, with one-machine defaults under --data-dir.</summary>
internal sealed class StandaloneTargetOptions
{
    /// <summary>The pool standalone creates when no --pool is given (and the controller's default pool then).</summary>
    public const string DefaultPool = "files";

    public Option<string> DataDirectory { get; } = new("--data-dir")
    {
        Description = "Everything standalone keeps: tls/ (generated certificates), state/ (desired state), volumes/ (the file pool).",
        DefaultValueFactory = _ => StandaloneCommand.DefaultDataDirectory,
    };

    public Option<int> EngineApiPort { get; } = new("--engine-api-port")
    {
        Description = "Port of the engine API on 127.0.0.1 (mutual TLS, reached by the controller part).",
        DefaultValueFactory = _ => TargetCommand.DefaultPort,
    };

    public Option<string> TargetEngine { get; } = new("--target-engine")
    {
        Description = "Target engine: tgt (default; a tgtd is started when none runs), scst or lio.",
        DefaultValueFactory = _ => TargetEngineFactory.Tgt,
    };

    public Option<string[]> Portals { get; } = new("--portal")
    {
        Description = "iSCSI portal ip:port (repeatable).",
        Arity = ArgumentArity.ZeroOrMore,
        DefaultValueFactory = _ => ["127.0.0.1:3260"],
    };

    public Option<string[]> Pools { get; } = new("--pool")
    {
        Description = "Pools (repeatable, as for `csi-scst target`); default: name=files,backend=file,path=<data-dir>/volumes.",
        Arity = ArgumentArity.ZeroOrMore,
    };

    public Option<int> TgtControlPort { get; } = new("--tgt-control-port")
    {
        Description = "Control port of the tgtd standalone adopts, or starts when none answers there.",
        DefaultValueFactory = _ => StandaloneCommand.DefaultTgtControlPort,
    };

    public Option<TimeSpan> ReconcileInterval { get; } = new("--reconcile-interval")
    {
        Description = "How often the target is reconciled with the desired state (hh:mm:ss).",
        DefaultValueFactory = _ => TimeSpan.FromMinutes(1),
    };

    public Option<string?> TargetMetricsAddress { get; } = new("--target-metrics-address")
    {
        Description = "ip:port serving the engine's /metrics, /healthz, /readyz (off when empty).",
    };

    public void AddTo(Command command)
    {
        TargetEngine.AcceptOnlyFromAmong([.. TargetEngineFactory.Kinds]);
        foreach (var option in new Option[] { DataDirectory, EngineApiPort, TargetEngine, Portals, Pools, TgtControlPort, ReconcileInterval, TargetMetricsAddress })
        {
            command.Options.Add(option);
        }
    }

    public (ServerPlan Plan, StandaloneEngine Engine) Bind(ParseResult parse, CommonSettings common)
    {
        var kind = parse.GetValue(TargetEngine)!;
        if (TargetEngineFactory.Unavailable(kind) is { } reason)
        {
            throw new ArgumentException(reason);
        }
        var dataDirectory = Path.GetFullPath(parse.GetValue(DataDirectory)!);
        var port = parse.GetValue(EngineApiPort);
        if (port is < 1 or > 65535)
        {
            throw new ArgumentException($"--engine-api-port {port} must be 1-65535");
        }
        var portals = (parse.GetValue(Portals) ?? []).ToList();
        foreach (var portal in portals)
        {
            if (!TargetCommand.TryParsePortal(portal, out _))
            {
                throw new ArgumentException($"--portal '{portal}' must be ip:port");
            }
        }
        var pools = (parse.GetValue(Pools) ?? []).Select(PoolOptionsParser.Parse).ToList();
        if (pools.Count == 0)
        {
            pools.Add(PoolOptionsParser.Parse($"name=files,backend=file,path={Path.Combine(dataDirectory, "volumes")}"));
        }
        var engine = new StandaloneEngine(common.Driver.NodeName, EndpointAddress.Tcp("127.0.0.1", port), Path.Combine(dataDirectory, "tls"));
        engine.EnsureCertificates();
        var metrics = parse.GetValue(TargetMetricsAddress);
        var settings = new TargetSettings
        {
            Listen = engine.Endpoint,
            Tls = TargetCommand.LoadTls(engine.CaPath, engine.ServerCertificatePath, engine.ServerKeyPath),
            Engine = new TargetEngineSelection
            {
                Kind = kind,
                Portals = portals,
                Tgt = new TgtOptions { ControlPort = parse.GetValue(TgtControlPort), StartDaemon = true, Portals = portals },
            },
            EngineOptions = new EngineOptions
            {
                StateDirectory = Path.Combine(dataDirectory, "state"),
                Portals = portals,
                ReconcileInterval = parse.GetValue(ReconcileInterval),
            },
            Pools = pools,
        };
        var targetCommon = common with { Endpoint = engine.Endpoint, Metrics = string.IsNullOrEmpty(metrics) ? null : EndpointAddress.Parse(metrics) };
        return (TargetPlan.Create("standalone-target", common.Driver, settings, targetCommon), engine);
    }
}
