using CsiScst.Core.Health;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace CsiScst.Targets.Scst;

public static class ScstServiceCollectionExtensions
{
    /// <summary>
    /// Registers the SCST engine as the process's ITargetEngine, with its readiness check.
    /// Needs DriverOptions and ExternalTime registered (every role host does).
    /// </summary>
    public static IServiceCollection AddScstEngine(this IServiceCollection services, Action<ScstOptions>? configure = null)
    {
        var options = services.AddOptions<ScstOptions>();
        if (configure is not null)
        {
            options.Configure(configure);
        }
        services.TryAddSingleton<ScstSysfs>();
        services.TryAddSingleton<ScstConfigWriter>();
        services.TryAddSingleton<ScstEngine>();
        services.TryAddSingleton<ITargetEngine>(sp => sp.GetRequiredService<ScstEngine>());
        services.AddSingleton<IReadinessCheck, ScstReadinessCheck>();
        return services;
    }
}

/// <summary>Probe / readyz: SCST loaded and iscsi-scstd connected.</summary>
public sealed class ScstReadinessCheck(ScstEngine engine) : IReadinessCheck
{
    public string Name => "scst";

    public async Task<ReadinessResult> CheckAsync(CancellationToken cancellationToken)
    {
        var health = await engine.ProbeAsync(cancellationToken).ConfigureAwait(false);
        return health.Ready ? ReadinessResult.Ok : ReadinessResult.NotReady(health.Reason);
    }
}
