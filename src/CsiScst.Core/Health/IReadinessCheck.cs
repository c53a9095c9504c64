namespace CsiScst.Core.Health;

/// <summary>
/// One local dependency of a role (the engine's sysfs, tgtd, iscsiadm, a backend's tools …).
/// Probe and /readyz report ready only when all registered checks pass. Never check a remote node here:
/// one storage node down must not make every controller restart.
/// </summary>
public interface IReadinessCheck
{
    string Name { get; }

    Task<ReadinessResult> CheckAsync(CancellationToken cancellationToken);
}

public sealed record ReadinessResult(bool Ready, string Reason)
{
    public static readonly ReadinessResult Ok = new(true, "");
    public static ReadinessResult NotReady(string reason) => new(false, reason);
}

/// <summary>Runs every registered check; the first failures are named in the reason.</summary>
public sealed class Readiness(IEnumerable<IReadinessCheck> checks)
{
    private readonly IReadinessCheck[] _checks = checks.ToArray();

    public async Task<ReadinessResult> CheckAsync(CancellationToken cancellationToken)
    {
        var results = await Task.WhenAll(_checks.Select(async check =>
        {
            try
            {
                return (check.Name, Result: await check.CheckAsync(cancellationToken).ConfigureAwait(false));
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                return (check.Name, Result: ReadinessResult.NotReady(e.Message));
            }
        })).ConfigureAwait(false);
        var failed = results.Where(r => !r.Result.Ready).Select(r => $"{r.Name}: {r.Result.Reason}").ToArray();
        return failed.Length == 0 ? ReadinessResult.Ok : ReadinessResult.NotReady(string.Join("; ", failed));
    }
}
