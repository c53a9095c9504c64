using CsiScst.Core.Health;
using CsiScst.Targets.Tgt;
using Microsoft.Extensions.DependencyInjection;

namespace CsiScst.Targets;

/// <summary>Which target engine <c>csi-scst target</c> drives, with each engine's own settings.</summary>
public sealed record TargetEngineSelection
{
    public required string Kind { get; init; }
    public TgtOptions Tgt { get; init; } = new();
    public string ScstSysfsRoot { get; init; } = "/sys/kernel/scst_tgt";
    public string ScstConfigFile { get; init; } = "/etc/scst.conf";
    public string LioConfigfsRoot { get; init; } = "/sys/kernel/config/target";
}

/// <summary>
/// The one place where target engines plug in: registers the selected engine as the process's
/// <see cref="ITargetEngine"/> (with its readiness check).
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
        Tgt => null,
        // ---- SCST plugs in here: return null once src/CsiScst.Targets/Scst (branch scst) is merged.
        Scst => "the SCST engine (--engine scst) is not part of this build yet; use --engine tgt",
        // ---- LIO plugs in here: return null once src/CsiScst.Targets/Lio is merged.
        Lio => "the LIO engine (--engine lio) is not part of this build yet; use --engine tgt",
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
                services.AddSingleton(selection.Tgt);
                services.AddSingleton<TgtEngine>();
                services.AddSingleton<ITargetEngine>(sp => sp.GetRequiredService<TgtEngine>());
                services.AddSingleton<IReadinessCheck, TargetEngineReadinessCheck>();
                return services;
            // ---- SCST plugs in here:
            //   case Scst:
            //       return services.AddScstEngine(o => { o.SysfsRoot = selection.ScstSysfsRoot; o.ConfigFile = selection.ScstConfigFile; });
            // ---- LIO plugs in here:
            //   case Lio:
            //       return services.AddLioEngine(o => o.ConfigfsRoot = selection.LioConfigfsRoot);
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
