using CsiScst.Csi.Controller.Chap;
using CsiScst.Csi.Controller.Engines;
using CsiScst.Csi.Controller.Kubernetes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using ExpansionType = Csi.V1.PluginCapability.Types.VolumeExpansion.Types.Type;
using Rpc = Csi.V1.ControllerServiceCapability.Types.RPC.Types.Type;
using ServiceType = Csi.V1.PluginCapability.Types.Service.Types.Type;

namespace CsiScst.Csi.Controller;

public enum EngineDiscoveryMode
{
    /// <summary>Engines from --engine flags.</summary>
    Static,
    /// <summary>Target pods found through the Kubernetes API.</summary>
    Kubernetes,
}

/// <summary>Everything the controller role is configured with (bound from the command line).</summary>
public sealed class ControllerSetup
{
    public ControllerOptions Controller { get; } = new();
    public EngineDiscoveryMode Discovery { get; set; } = EngineDiscoveryMode.Static;
    public List<EngineEndpoint> StaticEngines { get; } = [];
    public KubernetesAccessOptions Kubernetes { get; } = new();
    public KubernetesDiscoveryOptions KubernetesDiscovery { get; } = new();
}

public static class ControllerRegistration
{
    /// <summary>The capabilities this controller really implements (each is exercised by tests against real engines).</summary>
    public static readonly Rpc[] Capabilities =
    [
        Rpc.CreateDeleteVolume, Rpc.PublishUnpublishVolume, Rpc.ListVolumes, Rpc.GetCapacity,
        Rpc.CreateDeleteSnapshot, Rpc.ListSnapshots, Rpc.CloneVolume, Rpc.PublishReadonly, Rpc.ExpandVolume,
        Rpc.ListVolumesPublishedNodes, Rpc.VolumeCondition, Rpc.GetVolume, Rpc.SingleNodeMultiWriter, Rpc.GetSnapshot,
    ];

    /// <summary>The CSI Controller of csi-scst: engine discovery, the engine registry, CHAP secrets, the service.</summary>
    public static IServiceCollection AddCsiScstController(this IServiceCollection services, CsiCapabilities capabilities, ControllerSetup setup)
    {
        foreach (var rpc in Capabilities)
        {
            capabilities.Controller.Add(rpc);
        }
        capabilities.VolumeExpansion = ExpansionType.Online;
        if (setup.Controller.Topology)
        {
            capabilities.PluginServices.Add(ServiceType.VolumeAccessibilityConstraints);
        }
        services.TryAddSingleton(setup.Controller);
        services.TryAddSingleton(setup.Kubernetes);
        services.TryAddSingleton(setup.KubernetesDiscovery);
        services.TryAddSingleton<KubernetesAccess>();
        services.TryAddSingleton<ControllerMetrics>();
        services.TryAddSingleton<EngineCaller>();
        services.TryAddSingleton<ChapSecrets>();
        services.TryAddSingleton<ControllerFaults>();
        if (setup.Discovery == EngineDiscoveryMode.Kubernetes)
        {
            services.TryAddSingleton<IEngineDiscovery, KubernetesEngineDiscovery>();
        }
        else
        {
            services.TryAddSingleton<IEngineDiscovery>(new StaticEngineDiscovery(setup.StaticEngines));
        }
        services.TryAddSingleton<EngineRegistry>();
        services.AddCsiController(capabilities);
        return services;
    }
}
