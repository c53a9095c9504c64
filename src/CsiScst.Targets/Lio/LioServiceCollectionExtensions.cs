using CsiScst.Core;
using CsiScst.Core.Ids;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;

namespace CsiScst.Targets.Lio;

public static class LioServiceCollectionExtensions
{
    /// <summary>
    /// Registers the LIO engine as the <see cref="ITargetEngine"/>. Object names come from the registered
    /// <see cref="ObjectNames"/>, or else from <see cref="DriverOptions"/> (instance id and IQN prefix).
    /// </summary>
    public static IServiceCollection AddLioTargetEngine(this IServiceCollection services, Action<LioOptions>? configure = null)
    {
        var options = new LioOptions();
        configure?.Invoke(options);
        services.TryAddSingleton(options);
        services.TryAddSingleton<IConfigfs, LinuxConfigfs>();
        services.TryAddSingleton(sp => new LioEngine(
            sp.GetRequiredService<IConfigfs>(),
            sp.GetRequiredService<Core.Exec.IToolRunner>(),
            sp.GetRequiredService<LioOptions>(),
            sp.GetService<ObjectNames>() ?? NamesFrom(sp.GetRequiredService<DriverOptions>()),
            sp.GetRequiredService<ILogger<LioEngine>>()));
        services.TryAddSingleton<ITargetEngine>(sp => sp.GetRequiredService<LioEngine>());
        return services;
    }

    private static ObjectNames NamesFrom(DriverOptions driver) => new(driver.InstanceId, driver.IqnPrefix);
}
