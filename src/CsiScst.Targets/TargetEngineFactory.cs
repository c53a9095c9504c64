using CsiScst.Core;
using CsiScst.Core.Health;
using CsiScst.Core.Ids;
using CsiScst.Targets.Lio;
using CsiScst.Targets.Scst;
using CsiScst.Targets.Tgt;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace CsiScst.Targets;

/// <summary>Which target engine <c>csi-scst target</c> drives, with each engine's own settings.</summary>
public sealed record TargetEngineSelection
{
    public required string Kind { get; init; }
    /// <summary>"ip:port" portals initiators use (every engine listens there; tgt and LIO add missing ones).</summary>
    public IReadOnlyList<string> Portals { get; init; } = [];
    public TgtOptions Tgt { get; init; } = new();
    public string ScstSysfsRoot { get; init; } = "/sys/kernel/scst_tgt";
    public string ScstConfigFile { get; init; } = "/etc/scst.conf";
    public string LioConfigfsRoot { get; init; } = "/sys/kernel/config/target";
}

/// <summary>
/// The one place where target engines plug in: registers the selected engine (SCST, LIO or tgt) as the
/// process's <see cref="ITargetEngine"/>, with its readiness check.
/// </summary>
public static class TargetEngineFactory
{
    public const string Scst = "scst";
    public const string Lio = "lio";
    public const string Tgt = TgtEngine.EngineKind;

    public static IReadOnlyList<string> Kinds { get; } = [Scst, Lio, Tgt];

    /// <summary>Null when <paramref name="kind"/> can run in this build; otherwise why not (said at start-up, before anything is touched).</summary>
    public static string? Unavailable(string kind) => kind switch
    {
        Tgt or Scst or Lio => null,
        _ => $"unknown engine '{kind}'; expected {string.Join(", ", Kinds)}",
    };

    public static IServiceCollection AddTargetEngine(this IServiceCollection services, TargetEngineSelection selection)
    {
        if (Unavailable(selection.Kind) is { } reason)
        {
            throw new InvalidOperationException(reason);
        }
        switch (selection.Kind)
        {
            case Tgt:
                services.TryAddSingleton(sp =>
                {
                    var driver = sp.GetRequiredService<DriverOptions>();
                    return new ObjectNames(driver.InstanceId, driver.IqnPrefix);
                });
                services.AddSingleton(selection.Tgt);
                services.AddSingleton<TgtEngine>();
                services.AddSingleton<ITargetEngine>(sp => sp.GetRequiredService<TgtEngine>());
                services.AddSingleton<IReadinessCheck, TargetEngineReadinessCheck>();
                return services;
            case Scst:
                // Registers its own readiness check.
                return services.AddScstEngine(o =>
                {
                    o.SysfsRoot = selection.ScstSysfsRoot;
                    o.ConfigFile = selection.ScstConfigFile;
                });
            case Lio:
                services.AddLioTargetEngine(o =>
                {
                    o.ConfigfsRoot = selection.LioConfigfsRoot;
                    if (selection.Portals.Count > 0)
                    {
                        o.DefaultPortals = [.. selection.Portals];
                    }
                });
                services.AddSingleton<IReadinessCheck, TargetEngineReadinessCheck>();
                return services;
            default:
                throw new InvalidOperationException($"engine '{selection.Kind}' has no registration");
        }
    }
}

/// <summary>Probe / readyz: the target engine answers (tgtd up, SCST sysfs / LIO configfs present).</summary>
public sealed class TargetEngineReadinessCheck(ITargetEngine engine) : IReadinessCheck
{
    public string Name => "target engine " + engine.Kind;

    public async Task<ReadinessResult> CheckAsync(CancellationToken cancellationToken)
    {
        var health = await engine.ProbeAsync(cancellationToken).ConfigureAwait(false);
        return health.Ready ? ReadinessResult.Ok : ReadinessResult.NotReady(health.Reason);
    }
}
