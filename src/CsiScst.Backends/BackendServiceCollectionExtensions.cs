using CsiScst.Backends.Pools;
using CsiScst.Core;
using CsiScst.Core.Health;
using CsiScst.Core.Ids;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace CsiScst.Backends;

public static class BackendServiceCollectionExtensions
{
    /// <summary>
    /// Registers <see cref="StorageBackends"/> with one backend per configured pool and one readiness check per pool.
    /// Needs IToolRunner, ExternalTime, DriverOptions (for the instance id) and logging in the container.
    /// </summary>
    public static IServiceCollection AddStorageBackends(this IServiceCollection services, IReadOnlyList<PoolOptions> pools)
    {
        services.TryAddSingleton(sp =>
        {
            var driver = sp.GetRequiredService<DriverOptions>();
            return new ObjectNames(driver.InstanceId, driver.IqnPrefix);
        });
        services.TryAddSingleton<StorageBackendFactory>();
        services.TryAddSingleton(sp =>
        {
            var factory = sp.GetRequiredService<StorageBackendFactory>();
            return new StorageBackends(pools.Select(factory.Create));
        });
        foreach (var pool in pools)
        {
            var name = pool.Name;
            services.AddSingleton<IReadinessCheck>(sp => new BackendReadinessCheck(sp.GetRequiredService<StorageBackends>().Get(name)));
        }
        return services;
    }
}
