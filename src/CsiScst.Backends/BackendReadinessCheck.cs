using CsiScst.Core.Health;

namespace CsiScst.Backends;

/// <summary>A pool's <see cref="IStorageBackend.ProbeAsync"/> as a readiness check, bounded in time.</summary>
public sealed class BackendReadinessCheck : IReadinessCheck
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(10);

    private readonly IStorageBackend _backend;
    private readonly TimeSpan _timeout;

    public BackendReadinessCheck(IStorageBackend backend, TimeSpan? timeout = null)
    {
        _backend = backend;
        _timeout = timeout ?? DefaultTimeout;
    }

    public string Name => $"pool {_backend.PoolName} ({_backend.Kind})";

    public async Task<ReadinessResult> CheckAsync(CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_timeout);
        try
        {
            var health = await _backend.ProbeAsync(timeout.Token).ConfigureAwait(false);
            return health.Ready ? ReadinessResult.Ok : ReadinessResult.NotReady(health.Reason);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return ReadinessResult.NotReady($"no answer within {_timeout.TotalSeconds:0.#} s");
        }
    }
}
