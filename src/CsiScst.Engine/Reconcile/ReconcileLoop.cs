using CsiScst.Engine.State;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace CsiScst.Engine.Reconcile;

/// <summary>
/// Loads the desired state before the engine API serves its first call, reconciles at start-up and then
/// every <see cref="EngineOptions.ReconcileInterval"/>. Stopping does nothing to the target: exports keep
/// serving while the engine is stopped, upgraded or uninstalled.
/// </summary>
public sealed class ReconcileLoop : BackgroundService
{
    private readonly StateStore _store;
    private readonly Reconciler _reconciler;
    private readonly EngineOptions _options;
    private readonly ILogger<ReconcileLoop> _logger;

    public ReconcileLoop(StateStore store, Reconciler reconciler, EngineOptions options, ILogger<ReconcileLoop> logger)
    {
        _store = store;
        _reconciler = reconciler;
        _options = options;
        _logger = logger;
    }

    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        // Hosted services start before Kestrel: no RPC sees an empty index.
        try
        {
            await _store.LoadAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (UnauthorizedAccessException e)
        {
            // Said at start-up as a plain error (the role runner reports IOExceptions), not a stack trace.
            throw new IOException($"cannot use the state directory {_store.Directory}: {e.Message}", e);
        }
        await base.StartAsync(cancellationToken).ConfigureAwait(false);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var trigger = "startup";
        using var timer = new PeriodicTimer(_options.ReconcileInterval);
        do
        {
            try
            {
                await _reconciler.RunAsync(trigger, stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                // Logged by the reconciler; keep the loop alive (the target may come back).
                _logger.LogDebug(e, "Reconcile pass failed");
            }
            trigger = "periodic";
        }
        while (await WaitAsync(timer, stoppingToken).ConfigureAwait(false));
    }

    private static async Task<bool> WaitAsync(PeriodicTimer timer, CancellationToken stoppingToken)
    {
        try
        {
            return await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }
}
