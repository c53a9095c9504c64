using CsiScst.Core;
using CsiScst.Core.Faults;
using CsiScst.Core.Ids;
using CsiScst.Core.Locking;
using CsiScst.Engine.Api;
using CsiScst.Engine.Reconcile;
using CsiScst.Engine.State;
using CsiScst.Engine.Volumes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace CsiScst.Engine;

/// <summary>Registration of the target-engine role. The ITargetEngine and the pools' IStorageBackends are registered by the caller.</summary>
public static class EngineServiceCollectionExtensions
{
    public static IServiceCollection AddTargetEngineRole(this IServiceCollection services, EngineOptions options)
    {
        services.AddSingleton(options);
        services.TryAddSingleton(sp =>
        {
            var driver = sp.GetRequiredService<DriverOptions>();
            return new ObjectNames(driver.InstanceId, driver.IqnPrefix);
        });
        services.TryAddSingleton<FaultPoints>();
        services.TryAddSingleton<KeyedLocks>();
        services.AddSingleton<StateStore>();
        services.AddSingleton<OperationGate>();
        services.AddSingleton<VolumeHealth>();
        services.AddSingleton<EngineMetrics>();
        services.AddSingleton<PoolRegistry>();
        services.AddSingleton<VolumeManager>();
        services.AddSingleton<Reconciler>();
        services.AddSingleton<EngineStatsCollector>();
        services.AddSingleton<TargetEngineService>();
        services.AddHostedService(sp =>
        {
            // Created here so its /metrics callback is registered before the first scrape.
            _ = sp.GetRequiredService<EngineStatsCollector>();
            return ActivatorUtilities.CreateInstance<ReconcileLoop>(sp);
        });
        return services;
    }

    public static IEndpointRouteBuilder MapTargetEngine(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGrpcService<TargetEngineService>();
        return endpoints;
    }
}
