using CsiScst.Csi.Controller;
using CsiScst.Csi.Identity;
using CsiScst.Csi.Node;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using ServiceType = Csi.V1.PluginCapability.Types.Service.Types.Type;

namespace CsiScst.Csi;

/// <summary>Registration of the CSI services for the roles that host them.</summary>
public static class CsiServiceCollectionExtensions
{
    /// <summary>Identity, served on every CSI socket.</summary>
    public static IServiceCollection AddCsiIdentity(this IServiceCollection services, CsiCapabilities capabilities)
    {
        services.TryAddSingleton(capabilities);
        services.TryAddSingleton<IdentityService>();
        return services;
    }

    public static IServiceCollection AddCsiController(this IServiceCollection services, CsiCapabilities capabilities)
    {
        capabilities.PluginServices.Add(ServiceType.ControllerService);
        services.AddCsiIdentity(capabilities);
        services.TryAddSingleton<ControllerService>();
        return services;
    }

    public static IServiceCollection AddCsiNode(this IServiceCollection services, CsiCapabilities capabilities, NodePluginOptions node)
    {
        services.AddCsiIdentity(capabilities);
        services.TryAddSingleton<NodeInfoProvider>();
        services.TryAddSingleton<INodeInfoProvider>(sp => sp.GetRequiredService<NodeInfoProvider>());
        services.AddHostedService<NodeStartup>();
        services.AddNodePlugin(capabilities, node);
        services.TryAddSingleton<NodeService>();
        return services;
    }

    public static IEndpointRouteBuilder MapCsiServices(this IEndpointRouteBuilder endpoints, bool controller, bool node)
    {
        endpoints.MapGrpcService<IdentityService>();
        if (controller)
        {
            endpoints.MapGrpcService<ControllerService>();
        }
        if (node)
        {
            endpoints.MapGrpcService<NodeService>();
        }
        return endpoints;
    }
}
