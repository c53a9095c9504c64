using System.CommandLine;
using CsiScst.Core.Ids;
using CsiScst.Core.Tls;
using CsiScst.Csi;
using CsiScst.Csi.Controller;
using CsiScst.Csi.Controller.Engines;
using CsiScst.Hosting;

namespace CsiScst.Commands;

/// <summary>Flags of the controller role (standalone reuses the engine-independent ones).</summary>
internal sealed class ControllerOptionSet
{
    private const string ServiceAccountNamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

    public Option<string[]> Engines { get; } = new("--engine")
    {
        Description = "Static engine: NODE=tcp://ip:port, NODE being the storage node id the engine reports (repeatable; with --discovery static).",
        Arity = ArgumentArity.ZeroOrMore,
    };

    public Option<EngineDiscoveryMode> Discovery { get; } = new("--discovery")
    {
        Description = "How engines are found: static (--engine flags) or kubernetes (target pods by --target-selector in --namespace).",
        DefaultValueFactory = _ => EngineDiscoveryMode.Static,
    };

    public Option<string?> Namespace { get; } = new("--namespace")
    {
        Description = "The driver's namespace: where target pods are found and generated CHAP Secrets live. Default: POD_NAMESPACE, the service account's namespace, else 'default'.",
    };

    public Option<string> TargetSelector { get; } = new("--target-selector")
    {
        Description = "Label selector of the target-engine pods (kubernetes discovery).",
        DefaultValueFactory = _ => "app.kubernetes.io/component=target",
    };

    public Option<int> EnginePort { get; } = new("--engine-port")
    {
        Description = "Engine API port on each target pod (kubernetes discovery).",
        DefaultValueFactory = _ => 9820,
    };

    public Option<string?> Kubeconfig { get; } = new("--kubeconfig")
    {
        Description = "kubeconfig for the Kubernetes API (default: the pod's service account when in a cluster; none otherwise).",
    };

    public Option<string?> TlsCa { get; } = new("--tls-ca") { Description = "CA certificate (PEM) every engine's certificate must chain to." };
    public Option<string?> TlsCert { get; } = new("--tls-cert") { Description = "This controller's client certificate (PEM, extended key usage clientAuth)." };
    public Option<string?> TlsKey { get; } = new("--tls-key") { Description = "Private key (PEM) of --tls-cert." };

    public Option<string?> DefaultPool { get; } = new("--default-pool")
    {
        Description = "Pool for StorageClasses without a 'pool' parameter (default: the parameter is required).",
    };

    public Option<string> DefaultVolumeSize { get; } = new("--default-volume-size")
    {
        Description = "Size of volumes requested without a capacity (bytes or 1Gi, 512Mi …).",
        DefaultValueFactory = _ => "1Gi",
    };

    public Option<string[]> ForgetTargets { get; } = new("--forget-target")
    {
        Description = "Storage node id that is gone for good (repeatable): DeleteVolume/ControllerUnpublishVolume of its volumes succeed with a warning instead of waiting for it. See docs/operations.md.",
        Arity = ArgumentArity.ZeroOrMore,
    };

    public Option<bool> Topology { get; } = new("--topology")
    {
        Description = "Advertise VOLUME_ACCESSIBILITY_CONSTRAINTS and place volumes in the zones (topology.csi-scst.io/zone) engines report; set when targets and nodes run with --zone.",
    };

    public Option<TimeSpan> DiscoveryCache { get; } = new("--discovery-cache")
    {
        Description = "How long a discovered engine list is reused (hh:mm:ss).",
        DefaultValueFactory = _ => TimeSpan.FromSeconds(30),
    };

    public ControllerOptionSet()
    {
        Engines.Validators.Add(r =>
        {
            foreach (var value in r.GetValueOrDefault<string[]>() ?? [])
            {
                if (!StaticEngineDiscovery.TryParse(value, out _, out var error))
                {
                    r.AddError(error);
                }
            }
        });
        ForgetTargets.Validators.Add(r =>
        {
            foreach (var value in r.GetValueOrDefault<string[]>() ?? [])
            {
                if (!Names.IsValidNodeName(value))
                {
                    r.AddError($"--forget-target '{value}' must be a storage node id (DNS name)");
                }
            }
        });
        DefaultPool.Validators.Add(r =>
        {
            var value = r.GetValueOrDefault<string?>();
            if (value is not null && !Names.IsValidPoolName(value))
            {
                r.AddError($"--default-pool '{value}' must be 1-32 characters of [a-z0-9_-], starting with a letter or digit");
            }
        });
        DefaultVolumeSize.Validators.Add(r =>
        {
            if (!Parsing.TryParseSize(r.GetValueOrDefault<string>(), out var bytes) || bytes <= 0)
            {
                r.AddError($"--default-volume-size '{r.GetValueOrDefault<string>()}' must be a positive size such as 1Gi");
            }
        });
        EnginePort.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<int>() is < 1 or > 65535)
            {
                r.AddError("--engine-port must be 1-65535");
            }
        });
    }

    /// <summary>All flags (controller role).</summary>
    public void AddTo(Command command)
    {
        foreach (var option in new Option[] { Engines, Discovery, Namespace, TargetSelector, EnginePort, Kubeconfig, TlsCa, TlsCert, TlsKey })
        {
            command.Options.Add(option);
        }
        AddPolicyTo(command);
    }

    /// <summary>The flags that shape volumes rather than find engines (standalone takes only these).</summary>
    public void AddPolicyTo(Command command)
    {
        foreach (var option in new Option[] { DefaultPool, DefaultVolumeSize, ForgetTargets, Topology, DiscoveryCache })
        {
            command.Options.Add(option);
        }
    }

    /// <summary>The controller's configuration; throws ArgumentException with a flag-naming message on bad input.</summary>
    public ControllerSetup Bind(ParseResult parse, bool withDiscovery = true)
    {
        var setup = new ControllerSetup();
        var options = setup.Controller;
        options.DefaultPool = parse.GetValue(DefaultPool);
        Parsing.TryParseSize(parse.GetValue(DefaultVolumeSize)!, out var size);
        options.DefaultVolumeSizeBytes = size;
        foreach (var node in parse.GetValue(ForgetTargets) ?? [])
        {
            options.ForgottenTargets.Add(node);
        }
        options.Topology = parse.GetValue(Topology);
        options.DiscoveryCacheTime = parse.GetValue(DiscoveryCache);
        if (!withDiscovery)
        {
            return setup;
        }

        options.Namespace = parse.GetValue(Namespace) is { Length: > 0 } ns ? ns : DefaultNamespace();
        setup.Discovery = parse.GetValue(Discovery);
        setup.Kubernetes.KubeconfigPath = parse.GetValue(Kubeconfig);
        setup.KubernetesDiscovery.Selector = parse.GetValue(TargetSelector)!;
        setup.KubernetesDiscovery.Port = parse.GetValue(EnginePort);
        foreach (var value in parse.GetValue(Engines) ?? [])
        {
            StaticEngineDiscovery.TryParse(value, out var endpoint, out _);
            setup.StaticEngines.Add(endpoint!);
        }
        if (setup.Discovery == EngineDiscoveryMode.Static && setup.StaticEngines.Count == 0)
        {
            // Identity and Probe still serve (e.g. before any storage node exists); volume calls answer
            // UNAVAILABLE. Nothing is ever dialed, so no TLS material is needed yet.
            Console.Error.WriteLine("warning: no --engine given (static discovery): volume operations will fail until engines are configured");
            return setup;
        }
        var ca = parse.GetValue(TlsCa);
        var cert = parse.GetValue(TlsCert);
        var key = parse.GetValue(TlsKey);
        if (string.IsNullOrEmpty(ca) || string.IsNullOrEmpty(cert) || string.IsNullOrEmpty(key))
        {
            throw new ArgumentException("the engine API is always mutual TLS: give --tls-ca, --tls-cert and --tls-key");
        }
        options.Tls = LoadTls(ca, cert, key);
        return setup;
    }

    public static MutualTls LoadTls(string ca, string cert, string key)
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

    private static string DefaultNamespace()
    {
        if (Environment.GetEnvironmentVariable("POD_NAMESPACE") is { Length: > 0 } env)
        {
            return env;
        }
        try
        {
            return File.Exists(ServiceAccountNamespaceFile) ? File.ReadAllText(ServiceAccountNamespaceFile).Trim() : "default";
        }
        catch (IOException)
        {
            return "default";
        }
    }
}

/// <summary>The controller role.</summary>
internal static class ControllerCommand
{
    public static Command Create()
    {
        var common = new CommonOptions("unix:///csi/csi.sock");
        var controller = new ControllerOptionSet();
        var command = new Command("controller", "Serve CSI Identity + Controller on a Unix socket (Deployment, next to the kubernetes-csi sidecars); reach every target engine over its gRPC API with mutual TLS.");
        common.AddTo(command);
        controller.AddTo(command);
        command.SetAction(async (parse, ct) =>
        {
            var settings = common.Bind(parse);
            ControllerSetup setup;
            try
            {
                setup = controller.Bind(parse);
            }
            catch (ArgumentException e)
            {
                await Console.Error.WriteLineAsync($"error: {e.Message}").ConfigureAwait(false);
                return 2;
            }
            var plan = CsiPlans.Create("controller", settings);
            var capabilities = new CsiCapabilities();
            plan.Services.Add(s => s.AddCsiScstController(capabilities, setup));
            plan.Endpoints.Add(app => app.MapCsiServices(controller: true, node: false));
            return await RoleRunner.RunAsync([plan], ct).ConfigureAwait(false);
        });
        return command;
    }
}
