using System.CommandLine;
using System.Net;
using System.Text.Json;
using CsiScst.Backends;
using CsiScst.Backends.Pools;
using CsiScst.Core;
using CsiScst.Core.Errors;
using CsiScst.Core.Grpc;
using CsiScst.Core.Tls;
using CsiScst.Engine;
using CsiScst.Hosting;
using CsiScst.Targets;
using CsiScst.Targets.Tgt;
using Microsoft.Extensions.DependencyInjection;

namespace CsiScst.Commands;

/// <summary>Everything the target-engine role needs, however it was configured (flags, config file, standalone defaults).</summary>
internal sealed record TargetSettings
{
    public required EndpointAddress Listen { get; init; }
    public required MutualTls Tls { get; init; }
    public required TargetEngineSelection Engine { get; init; }
    public required EngineOptions EngineOptions { get; init; }
    public required IReadOnlyList<PoolOptions> Pools { get; init; }
}

/// <summary>The server plan of the target-engine role (shared by <c>target</c> and <c>standalone</c>).</summary>
internal static class TargetPlan
{
    public static ServerPlan Create(string name, DriverOptions driver, TargetSettings target, CommonSettings common)
    {
        var plan = new ServerPlan
        {
            Name = name,
            Metrics = common.Metrics,
            LogFormat = common.LogFormat,
            LogLevel = common.LogLevel,
            ShutdownTimeout = common.ShutdownTimeout,
        };
        plan.Listeners.Add(new GrpcListener(target.Listen, target.Tls));
        plan.Services.Add(s =>
        {
            s.AddSingleton(driver);
            s.AddStorageBackends(target.Pools);
            s.AddTargetEngine(target.Engine);
            s.AddTargetEngineRole(target.EngineOptions);
        });
        plan.Endpoints.Add(app => app.MapTargetEngine());
        return plan;
    }
}

/// <summary>
/// <c>csi-scst target</c>: the privileged engine on a storage node. Serves the engine API over TCP with
/// mutual TLS, keeps the desired state under --state-dir and reconciles the target engine to it.
/// </summary>
internal static class TargetCommand
{
    public const int DefaultPort = 9820;

    public static Command Create()
    {
        var common = new CommonOptions("tcp://0.0.0.0:9820");
        var listen = new Option<string>("--listen")
        {
            Description = "Where the engine API listens: tcp://ip:port (mutual TLS).",
            DefaultValueFactory = _ => $"tcp://0.0.0.0:{DefaultPort}",
        };
        listen.Validators.Add(r =>
        {
            var value = r.GetValueOrDefault<string>();
            if (!EndpointAddress.TryParse(value, out var endpoint, out var error) || endpoint.IsUnix)
            {
                r.AddError(endpoint?.IsUnix == true ? $"--listen '{value}' must be tcp://ip:port: the engine API is always TCP with mutual TLS" : error);
            }
        });
        var tlsCa = new Option<string>("--tls-ca") { Description = "CA certificate (PEM); clients must present a certificate it signed, with clientAuth.", Required = true };
        var tlsCert = new Option<string>("--tls-cert") { Description = "This engine's server certificate (PEM, serverAuth).", Required = true };
        var tlsKey = new Option<string>("--tls-key") { Description = "Private key (PEM) of --tls-cert.", Required = true };
        var engine = new Option<string>("--engine")
        {
            Description = "Target engine: scst (sysfs), lio (configfs) or tgt (tgtadm).",
            DefaultValueFactory = _ => TargetEngineFactory.Scst,
        };
        engine.AcceptOnlyFromAmong([.. TargetEngineFactory.Kinds]);
        var portals = new Option<string[]>("--portal")
        {
            Description = "iSCSI portal ip:port initiators use (the storage network address; repeatable). Never all addresses unless you say 0.0.0.0.",
            Arity = ArgumentArity.ZeroOrMore,
        };
        portals.Validators.Add(r =>
        {
            foreach (var value in r.GetValueOrDefault<string[]>() ?? [])
            {
                if (!TryParsePortal(value, out _))
                {
                    r.AddError($"--portal '{value}' must be ip:port (e.g. 10.0.0.5:3260)");
                }
            }
        });
        var stateDir = new Option<string>("--state-dir")
        {
            Description = "Directory of the durable desired state (volumes/<key>.json, mode 0600).",
            DefaultValueFactory = _ => EngineOptions.DefaultStateDirectory,
        };
        var pools = new Option<string[]>("--pool")
        {
            Description = "A pool (repeatable): name=files,backend=file,path=DIR | name=vg0,backend=lvm,vg=VG[,thinpool=TP] | name=rbd,backend=rbd,pool=P,user=U,keyring=F,conf=F.",
            Arity = ArgumentArity.ZeroOrMore,
        };
        var config = new Option<string?>("--config")
        {
            Description = "JSON file with {\"pools\": [{\"name\": …, \"backend\": …, …}], \"portals\": [\"ip:port\"]}; flags add to it.",
        };
        var reconcileInterval = new Option<TimeSpan>("--reconcile-interval")
        {
            Description = "How often the target is reconciled with the desired state (hh:mm:ss); also at start-up and on the Reconcile RPC.",
            DefaultValueFactory = _ => TimeSpan.FromMinutes(1),
        };
        var scstSysfsRoot = new Option<string>("--scst-sysfs-root") { Description = "SCST's sysfs root.", DefaultValueFactory = _ => "/sys/kernel/scst_tgt" };
        var scstConfigFile = new Option<string>("--scst-config-file") { Description = "scst.conf kept in step with the exports (empty: not written).", DefaultValueFactory = _ => "/etc/scst.conf" };
        var lioConfigfsRoot = new Option<string>("--lio-configfs-root") { Description = "LIO's configfs root.", DefaultValueFactory = _ => "/sys/kernel/config/target" };
        var tgtControlPort = new Option<int>("--tgt-control-port") { Description = "tgtd control port (tgtd -C N; socket /var/run/tgtd/socket.N).", DefaultValueFactory = _ => 0 };
        var tgtStartDaemon = new Option<bool>("--tgt-start-daemon")
        {
            Description = "Start tgtd (daemonized, on the --portal addresses) when none answers on the control port; it keeps serving when csi-scst stops.",
        };

        var command = new Command("target", "Serve the engine API (TCP, mutual TLS) on a storage node: backing storage from the pools, exports through SCST, LIO or tgt, desired state under --state-dir (privileged DaemonSet).");
        foreach (var option in new Option[] { common.DriverName, common.NodeId, common.InstanceId, common.IqnPrefix, common.Zone, common.LogFormat, common.LogLevel, common.MetricsAddress, common.ShutdownTimeout })
        {
            command.Options.Add(option);
        }
        foreach (var option in new Option[] { listen, tlsCa, tlsCert, tlsKey, engine, portals, stateDir, pools, config, reconcileInterval, scstSysfsRoot, scstConfigFile, lioConfigfsRoot, tgtControlPort, tgtStartDaemon })
        {
            command.Options.Add(option);
        }

        command.SetAction(async (parse, ct) =>
        {
            TargetSettings target;
            CommonSettings settings;
            try
            {
                settings = BindCommon(common, parse, EndpointAddress.Parse(parse.GetValue(listen)!));
                var kind = parse.GetValue(engine)!;
                if (TargetEngineFactory.Unavailable(kind) is { } reason)
                {
                    throw new ArgumentException(reason);
                }
                var (filePools, filePortals) = ReadConfig(parse.GetValue(config));
                var allPools = filePools.Concat((parse.GetValue(pools) ?? []).Select(PoolOptionsParser.Parse)).ToList();
                if (allPools.Count == 0)
                {
                    throw new ArgumentException("no pool is configured: give --pool name=NAME,backend=file|lvm|rbd,… (or pools in --config)");
                }
                var allPortals = filePortals.Concat(parse.GetValue(portals) ?? []).Distinct(StringComparer.Ordinal).ToList();
                if (allPortals.Count == 0)
                {
                    throw new ArgumentException("no iSCSI portal is configured: give --portal ip:port (the storage network address initiators reach)");
                }
                target = new TargetSettings
                {
                    Listen = settings.Endpoint,
                    Tls = LoadTls(parse.GetValue(tlsCa)!, parse.GetValue(tlsCert)!, parse.GetValue(tlsKey)!),
                    Engine = new TargetEngineSelection
                    {
                        Kind = kind,
                        Portals = allPortals,
                        Tgt = new TgtOptions { ControlPort = parse.GetValue(tgtControlPort), StartDaemon = parse.GetValue(tgtStartDaemon), Portals = allPortals },
                        ScstSysfsRoot = parse.GetValue(scstSysfsRoot)!,
                        ScstConfigFile = parse.GetValue(scstConfigFile)!,
                        LioConfigfsRoot = parse.GetValue(lioConfigfsRoot)!,
                    },
                    EngineOptions = new EngineOptions
                    {
                        StateDirectory = parse.GetValue(stateDir)!,
                        Portals = allPortals,
                        ReconcileInterval = parse.GetValue(reconcileInterval),
                    },
                    Pools = allPools,
                };
            }
            catch (Exception e) when (e is ArgumentException or StatusException or FormatException or IOException or JsonException)
            {
                await Console.Error.WriteLineAsync($"error: {e.Message}").ConfigureAwait(false);
                return 2;
            }
            return await RoleRunner.RunAsync([TargetPlan.Create("target", settings.Driver, target, settings)], ct).ConfigureAwait(false);
        });
        return command;
    }

    internal static CommonSettings BindCommon(CommonOptions common, ParseResult parse, EndpointAddress endpoint)
    {
        var metrics = parse.GetValue(common.MetricsAddress);
        return new CommonSettings(
            endpoint,
            new DriverOptions
            {
                DriverName = parse.GetValue(common.DriverName)!,
                NodeName = parse.GetValue(common.NodeId)!,
                InstanceId = parse.GetValue(common.InstanceId)!,
                IqnPrefix = parse.GetValue(common.IqnPrefix)!,
                Zone = parse.GetValue(common.Zone),
            },
            parse.GetValue(common.LogFormat),
            parse.GetValue(common.LogLevel),
            string.IsNullOrEmpty(metrics) ? null : EndpointAddress.Parse(metrics),
            parse.GetValue(common.ShutdownTimeout));
    }

    internal static MutualTls LoadTls(string ca, string cert, string key)
    {
        try
        {
            return MutualTls.Load(ca, cert, key);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException or ArgumentException)
        {
            throw new ArgumentException($"cannot load the engine API TLS material (CA {ca}, certificate {cert}, key {key}): {e.Message}", e);
        }
    }

    internal static bool TryParsePortal(string text, out IPEndPoint? portal)
    {
        portal = null;
        return IPEndPoint.TryParse(text, out var parsed) && text.Contains(':', StringComparison.Ordinal) && parsed.Port > 0
            && (portal = parsed) is not null;
    }

    /// <summary>Pools and portals from the optional JSON config file (read with JsonDocument: no reflection).</summary>
    internal static (List<PoolOptions> Pools, List<string> Portals) ReadConfig(string? path)
    {
        if (string.IsNullOrEmpty(path))
        {
            return ([], []);
        }
        using var document = JsonDocument.Parse(File.ReadAllBytes(path));
        var pools = new List<PoolOptions>();
        var portals = new List<string>();
        if (document.RootElement.ValueKind != JsonValueKind.Object)
        {
            throw new ArgumentException($"--config {path}: the file must hold a JSON object");
        }
        foreach (var property in document.RootElement.EnumerateObject())
        {
            switch (property.Name)
            {
                case "pools":
                    foreach (var pool in property.Value.EnumerateArray())
                    {
                        var pairs = new Dictionary<string, string>(StringComparer.Ordinal);
                        foreach (var field in pool.EnumerateObject())
                        {
                            pairs[field.Name] = field.Value.ValueKind == JsonValueKind.String ? field.Value.GetString()! : field.Value.GetRawText();
                        }
                        pools.Add(PoolOptionsParser.FromPairs(pairs));
                    }
                    break;
                case "portals":
                    foreach (var portal in property.Value.EnumerateArray())
                    {
                        var text = portal.GetString() ?? "";
                        if (!TryParsePortal(text, out _))
                        {
                            throw new ArgumentException($"--config {path}: portal '{text}' must be ip:port");
                        }
                        portals.Add(text);
                    }
                    break;
                default:
                    throw new ArgumentException($"--config {path}: unknown key '{property.Name}' (expected pools, portals)");
            }
        }
        return (pools, portals);
    }
}
