using Csi.V1;
using CsiScst.Core.Errors;
using CsiScst.Csi.Controller.Engines;
using CsiScst.Engine.V1;

namespace CsiScst.Csi.Controller;

/// <summary>
/// Chooses the storage node for a new volume: ready engines offering the pool, in an allowed zone when
/// the operator uses zones, with room for the volume (thin pools may overcommit); of those, the one with
/// the most free bytes in that pool (preferred zones first).
/// </summary>
public static class Placement
{
    public static EngineHandle Choose(EngineView view, string pool, TopologyRequirement? requirement, bool topology,
        Func<PoolInfo, long> sizeIn)
    {
        if (view.Usable.Count == 0 && view.Unusable.Count == 0 && view.DiscoveryError is null)
        {
            throw StatusException.Unavailable("no target engine is known to this controller: configure --engine (static discovery) or start the target pods (kubernetes discovery)");
        }
        var offering = view.Usable.Where(e => e.Pool(pool) is not null).ToArray();
        if (offering.Length == 0)
        {
            var pools = string.Join("; ", view.Usable.Select(e => $"{e.NodeId}: {string.Join(", ", e.Info.Pools.Select(p => p.Name))}"));
            if (view.Unusable.Count > 0 || view.DiscoveryError is not null)
            {
                var problems = string.Join("; ", new[] { view.DescribeProblems(), view.DiscoveryError ?? "" }.Where(p => p.Length > 0));
                throw StatusException.Unavailable(
                    $"no reachable target node offers pool '{pool}' (pools: {(pools.Length > 0 ? pools : "none")}); {problems}");
            }
            throw StatusException.InvalidArgument(
                $"no target node offers pool '{pool}' (pools: {(pools.Length > 0 ? pools : "no engine answers")}); fix the StorageClass parameter pool or the engines' --pool");
        }
        var ready = offering.Where(e => e.Info.Ready).ToArray();
        if (ready.Length == 0)
        {
            throw StatusException.Unavailable(
                $"every target node offering pool '{pool}' is not ready: {string.Join("; ", offering.Select(e => $"{e.NodeId}: {e.Info.NotReadyReason}"))}; retry later");
        }

        var ranked = ready.Select(e => (Engine: e, Rank: 0)).ToArray();
        if (topology && requirement is not null && ready.Any(e => e.Info.Topology.Count > 0))
        {
            var allowed = requirement.Requisite.Count > 0 ? requirement.Requisite : requirement.Preferred;
            if (allowed.Count > 0)
            {
                ranked = ready.Where(e => allowed.Any(t => Matches(e.Info.Topology, t))).Select(e => (e, Rank(e, requirement.Preferred))).ToArray();
                if (ranked.Length == 0)
                {
                    throw StatusException.ResourceExhausted(
                        $"no ready target node offering pool '{pool}' is in an allowed zone ({string.Join(" | ", allowed.Select(Describe))}); nodes: {string.Join(", ", ready.Select(e => $"{e.NodeId} in {Describe(e.Info.Topology)}"))}");
                }
            }
        }

        var fitting = ranked.Where(r =>
        {
            var info = r.Engine.Pool(pool)!;
            return info.Thin || info.AvailableBytes >= sizeIn(info);
        }).ToArray();
        if (fitting.Length == 0)
        {
            var best = ranked.MaxBy(r => r.Engine.Pool(pool)!.AvailableBytes).Engine;
            throw StatusException.ResourceExhausted(
                $"no target node has room for {sizeIn(best.Pool(pool)!)} bytes in pool '{pool}' (most free: {best.Pool(pool)!.AvailableBytes} bytes on {best.NodeId})");
        }
        return fitting
            .OrderBy(r => r.Rank)
            .ThenByDescending(r => r.Engine.Pool(pool)!.AvailableBytes)
            .ThenBy(r => r.Engine.NodeId, StringComparer.Ordinal)
            .First().Engine;
    }

    /// <summary>Whether an engine's segments satisfy a CSI topology (every key of it, same value).</summary>
    public static bool Matches(IDictionary<string, string> segments, Topology topology) =>
        topology.Segments.All(s => segments.TryGetValue(s.Key, out var value) && value == s.Value);

    public static bool Allowed(IDictionary<string, string> segments, TopologyRequirement? requirement)
    {
        if (requirement is null || segments.Count == 0)
        {
            return true;
        }
        var allowed = requirement.Requisite.Count > 0 ? requirement.Requisite : requirement.Preferred;
        return allowed.Count == 0 || allowed.Any(t => Matches(segments, t));
    }

    private static int Rank(EngineHandle engine, IList<Topology> preferred)
    {
        for (var i = 0; i < preferred.Count; i++)
        {
            if (Matches(engine.Info.Topology, preferred[i]))
            {
                return i;
            }
        }
        return preferred.Count;
    }

    private static string Describe(Topology topology) => Describe(topology.Segments);

    private static string Describe(IDictionary<string, string> segments) =>
        segments.Count == 0 ? "no zone" : string.Join(",", segments.OrderBy(s => s.Key, StringComparer.Ordinal).Select(s => $"{s.Key}={s.Value}"));
}
