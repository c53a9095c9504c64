using CsiScst.Core.Health;
using CsiScst.Engine.Volumes;
using CsiScst.Targets;

namespace CsiScst.Engine.Health;

/// <summary>The target engine answers (tgtd up, SCST sysfs / LIO configfs present).</summary>
public sealed class TargetEngineReadinessCheck(ITargetEngine engine) : IReadinessCheck
{
    public string Name => "target engine " + engine.Kind;

    public async Task<ReadinessResult> CheckAsync(CancellationToken cancellationToken)
    {
        var health = await engine.ProbeAsync(cancellationToken).ConfigureAwait(false);
        return health.Ready ? ReadinessResult.Ok : ReadinessResult.NotReady(health.Reason);
    }
}

/// <summary>Every configured pool answers its local checks (directory writable, VG present, cluster reachable).</summary>
public sealed class PoolsReadinessCheck(PoolRegistry pools) : IReadinessCheck
{
    public string Name => "pools";

    public async Task<ReadinessResult> CheckAsync(CancellationToken cancellationToken)
    {
        if (pools.All.Count == 0)
        {
            return ReadinessResult.NotReady("no pool is configured (--pool)");
        }
        var failed = new List<string>();
        foreach (var pool in pools.All)
        {
            var health = await pool.ProbeAsync(cancellationToken).ConfigureAwait(false);
            if (!health.Ready)
            {
                failed.Add($"{pool.PoolName}: {health.Reason}");
            }
        }
        return failed.Count == 0 ? ReadinessResult.Ok : ReadinessResult.NotReady(string.Join("; ", failed));
    }
}
