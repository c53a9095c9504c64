using CsiScst.Initiator;
using CsiScst.Initiator.Devices;
using CsiScst.Initiator.Iscsi;
using CsiScst.Initiator.Mounts;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using NodeRpc = Csi.V1.NodeServiceCapability.Types.RPC.Types.Type;

namespace CsiScst.Csi.Node;

/// <summary>The node plugin's services, and the node capabilities it really implements.</summary>
public static class NodeServiceCollectionExtensions
{
    public static IServiceCollection AddNodePlugin(this IServiceCollection services, CsiCapabilities capabilities, NodePluginOptions options)
    {
        capabilities.Node.Add(NodeRpc.StageUnstageVolume);
        capabilities.Node.Add(NodeRpc.GetVolumeStats);
        capabilities.Node.Add(NodeRpc.VolumeCondition);
        capabilities.Node.Add(NodeRpc.ExpandVolume);
        capabilities.Node.Add(NodeRpc.VolumeMountGroup);
        // Several pods on this node share one staged volume through bind mounts.
        capabilities.Node.Add(NodeRpc.SingleNodeMultiWriter);

        services.TryAddSingleton(options);
        services.TryAddSingleton(options.Info);
        services.TryAddSingleton(options.Host);
        services.TryAddSingleton(options.Iscsi);
        services.TryAddSingleton(options.Devices);
        services.TryAddSingleton(options.Mounts);
        services.TryAddSingleton<HostTools>();
        services.TryAddSingleton<IscsiAdm>();
        services.TryAddSingleton<SysfsBlockDevices>();
        services.TryAddSingleton<Multipath>();
        services.TryAddSingleton<Mounter>();
        services.TryAddSingleton<Filesystems>();
        services.TryAddSingleton<VolumeOwnership>();
        services.TryAddSingleton<IscsiVolumes>();
        services.TryAddSingleton<NodeLocks>();
        services.TryAddSingleton<NodeMetrics>();
        services.TryAddSingleton<NodeStager>();
        services.TryAddSingleton<NodePublisher>();
        services.TryAddSingleton<NodeVolumeInspector>();
        services.TryAddSingleton<OrphanSessionCleaner>();
        // After NodeStartup (registered first), before the socket serves: no stage races the cleanup.
        services.AddHostedService(sp => sp.GetRequiredService<OrphanSessionCleaner>());
        return services;
    }
}
