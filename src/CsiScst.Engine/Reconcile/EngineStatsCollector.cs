using CsiScst.Core.Metrics;
using CsiScst.Targets;
using Microsoft.Extensions.Logging;

namespace CsiScst.Engine.Reconcile;

/// <summary>
/// Refreshes the session and per-export I/O metrics from the target engine when /metrics is scraped, at
/// most once per <see cref="EngineOptions.StatsRefreshInterval"/> (a scrape must stay cheap on a target
/// with thousands of exports).
/// </summary>
public sealed class EngineStatsCollector
{
    private readonly ITargetEngine _engine;
    private readonly EngineMetrics _metrics;
    private readonly EngineOptions _options;
    private readonly ILogger<EngineStatsCollector> _logger;
    private readonly SemaphoreSlim _refreshing = new(1, 1);
    private readonly HashSet<string> _labelled = new(StringComparer.Ordinal);
    private DateTimeOffset _last = DateTimeOffset.MinValue;

    public EngineStatsCollector(DriverMetrics driverMetrics, ITargetEngine engine, EngineMetrics metrics, EngineOptions options, ILogger<EngineStatsCollector> logger)
    {
        _engine = engine;
        _metrics = metrics;
        _options = options;
        _logger = logger;
        driverMetrics.Registry.AddBeforeCollectCallback(RefreshAsync);
    }

    public async Task RefreshAsync(CancellationToken cancellationToken)
    {
        if (DateTimeOffset.UtcNow - _last < _options.StatsRefreshInterval || !await _refreshing.WaitAsync(0, cancellationToken).ConfigureAwait(false))
        {
            return;
        }
        try
        {
            var sessions = await _engine.ListSessionsAsync(cancellationToken).ConfigureAwait(false);
            var stats = await _engine.GetStatsAsync(cancellationToken).ConfigureAwait(false);
            _metrics.Sessions.Set(sessions.Count);
            var perExport = sessions.GroupBy(s => s.Key, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var (key, count) in perExport)
            {
                _metrics.ExportSessions.WithLabels(key).Set(count);
                seen.Add(key);
            }
            foreach (var stat in stats)
            {
                _metrics.ExportReadBytes.WithLabels(stat.Key).IncTo(stat.ReadBytes);
                _metrics.ExportWrittenBytes.WithLabels(stat.Key).IncTo(stat.WrittenBytes);
                _metrics.ExportReadCommands.WithLabels(stat.Key).IncTo(stat.ReadCommands);
                _metrics.ExportWriteCommands.WithLabels(stat.Key).IncTo(stat.WriteCommands);
                seen.Add(stat.Key);
            }
            // Series of exports that are gone are dropped, so label sets do not grow for ever.
            foreach (var key in _labelled.Where(k => !seen.Contains(k)).ToList())
            {
                _metrics.ExportSessions.RemoveLabelled(key);
                _metrics.ExportReadBytes.RemoveLabelled(key);
                _metrics.ExportWrittenBytes.RemoveLabelled(key);
                _metrics.ExportReadCommands.RemoveLabelled(key);
                _metrics.ExportWriteCommands.RemoveLabelled(key);
                _labelled.Remove(key);
            }
            _labelled.UnionWith(seen);
            _last = DateTimeOffset.UtcNow;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            _logger.LogDebug("Could not refresh session metrics: {Error}", e.Message);
        }
        finally
        {
            _refreshing.Release();
        }
    }
}
