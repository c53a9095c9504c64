using System.Diagnostics;
using CsiScst.Core.Errors;
using CsiScst.Core.Faults;
using CsiScst.Engine.Faults;
using CsiScst.Engine.State;
using CsiScst.Engine.Volumes;
using CsiScst.Targets;
using Microsoft.Extensions.Logging;

namespace CsiScst.Engine.Reconcile;

/// <summary>What one reconcile pass did.</summary>
public sealed record ReconcileReport(int Checked, int Repaired, int OrphansRemoved, IReadOnlyList<string> Errors, TimeSpan Duration);

/// <summary>
/// Makes the target match the durable desired state. One pass, run alone (no volume operation in flight):
/// finishes deletions a crash interrupted; attaches every Ready volume's backing device (after a reboot an
/// RBD image must be mapped again, an LV activated) and records a changed device path; hands the whole
/// desired set to the target engine, which repairs missing or divergent exports and removes this
/// instance's exports that nothing wants; then records what it saw as each volume's condition.
/// Volumes being created are neither exported nor protected here: their export, if a crash left one, is
/// removed and recreated when EnsureVolume is retried.
/// </summary>
public sealed class Reconciler
{
    private readonly StateStore _store;
    private readonly PoolRegistry _pools;
    private readonly ITargetEngine _engine;
    private readonly VolumeManager _volumes;
    private readonly OperationGate _gate;
    private readonly VolumeHealth _health;
    private readonly EngineMetrics _metrics;
    private readonly FaultPoints _faults;
    private readonly ILogger<Reconciler> _logger;
    private readonly SemaphoreSlim _oneAtATime = new(1, 1);

    public Reconciler(StateStore store, PoolRegistry pools, ITargetEngine engine, VolumeManager volumes, OperationGate gate,
        VolumeHealth health, EngineMetrics metrics, FaultPoints faults, ILogger<Reconciler> logger)
    {
        _store = store;
        _pools = pools;
        _engine = engine;
        _volumes = volumes;
        _gate = gate;
        _health = health;
        _metrics = metrics;
        _faults = faults;
        _logger = logger;
    }

    public DateTimeOffset? LastRun { get; private set; }

    public async Task<ReconcileReport> RunAsync(string trigger, CancellationToken cancellationToken)
    {
        await _oneAtATime.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            using var exclusive = await _gate.EnterExclusiveAsync(cancellationToken).ConfigureAwait(false);
            var started = Stopwatch.GetTimestamp();
            _metrics.ReconcileRuns.WithLabels(trigger).Inc();
            try
            {
                var report = await PassAsync(cancellationToken).ConfigureAwait(false);
                var elapsed = Stopwatch.GetElapsedTime(started);
                _metrics.ReconcileDuration.Observe(elapsed.TotalSeconds);
                _metrics.ReconcileRepaired.Inc(report.Repaired);
                _metrics.ReconcileOrphans.Inc(report.OrphansRemoved);
                if (report.Errors.Count > 0)
                {
                    _metrics.ReconcileFailures.Inc();
                }
                LastRun = DateTimeOffset.UtcNow;
                var level = report.Errors.Count > 0 ? LogLevel.Warning : report.Repaired + report.OrphansRemoved > 0 ? LogLevel.Information : LogLevel.Debug;
                _logger.Log(level, "Reconcile ({Trigger}): {Checked} exports checked, {Repaired} repaired, {Orphans} orphans removed, {Errors} errors in {Seconds:0.###} s",
                    trigger, report.Checked, report.Repaired, report.OrphansRemoved, report.Errors.Count, elapsed.TotalSeconds);
                return report with { Duration = elapsed };
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                _metrics.ReconcileFailures.Inc();
                _metrics.ReconcileDuration.Observe(Stopwatch.GetElapsedTime(started).TotalSeconds);
                _logger.LogWarning("Reconcile ({Trigger}) failed: {Error}", trigger, e.Message);
                throw;
            }
        }
        finally
        {
            _oneAtATime.Release();
        }
    }

    private async Task<ReconcileReport> PassAsync(CancellationToken cancellationToken)
    {
        var errors = new List<string>();
        var problems = new Dictionary<string, string>(StringComparer.Ordinal);

        // A quarantined record is unreadable, so nothing about its export can be decided: stop rather than
        // let the engine remove an export that may be in use.
        if (_store.QuarantinedVolumeKeys.Count > 0)
        {
            throw StatusException.FailedPrecondition(
                $"state files of volumes {string.Join(", ", _store.QuarantinedVolumeKeys)} are unreadable; reconcile is suspended until they are fixed or removed");
        }

        foreach (var pending in _store.Volumes().Where(v => v.Phase == VolumePhase.Deleting))
        {
            try
            {
                await _volumes.FinishDeleteAsync(pending, cancellationToken).ConfigureAwait(false);
                _logger.LogInformation("Reconcile finished the interrupted deletion of volume {Key}", pending.Key);
            }
            catch (Exception e) when (e is StatusException or IOException or Core.Exec.ToolException)
            {
                errors.Add($"volume {pending.Key}: deletion not finished: {e.Message}");
            }
        }

        var desired = new List<ExportSpec>();
        var ready = _store.Volumes().Where(v => v.Phase == VolumePhase.Ready).ToList();
        _metrics.Volumes.WithLabels(nameof(VolumePhase.Ready)).Set(ready.Count);
        var all = _store.Volumes();
        _metrics.Volumes.WithLabels(nameof(VolumePhase.Creating)).Set(all.Count(v => v.Phase == VolumePhase.Creating));
        _metrics.Volumes.WithLabels(nameof(VolumePhase.Deleting)).Set(all.Count(v => v.Phase == VolumePhase.Deleting));
        foreach (var volume in ready)
        {
            var record = volume;
            if (_pools.Find(record.Pool) is not { } backend)
            {
                problems[record.Key] = $"pool {record.Pool} is not configured on this engine";
                errors.Add($"volume {record.Key}: pool {record.Pool} is not configured");
                if (record.BackingPath is null)
                {
                    continue;
                }
                // Keep exporting what the state says rather than removing a volume the operator may still need.
                desired.Add(_volumes.ToSpec(record, isFile: record.Backend == "file"));
                continue;
            }
            try
            {
                var path = await backend.AttachAsync(record.Key, cancellationToken).ConfigureAwait(false);
                if (path != record.BackingPath)
                {
                    _logger.LogInformation("Volume {Key}: backing device is now {Path} (was {OldPath})", record.Key, path, record.BackingPath);
                    record = await _store.SaveVolumeAsync(record with { BackingPath = path }, cancellationToken).ConfigureAwait(false);
                }
            }
            catch (Exception e) when (e is StatusException or IOException or Core.Exec.ToolException)
            {
                problems[record.Key] = $"the backing device could not be attached: {e.Message}";
                errors.Add($"volume {record.Key}: attach failed: {e.Message}");
            }
            if (record.BackingPath is not null)
            {
                desired.Add(_volumes.ToSpec(record, backend));
            }
        }
        _faults.Hit(EngineFaultPoints.ReconcileAfterAttach);

        // The probe is where an engine gets its target ready (LIO loads its modules and creates the iSCSI
        // fabric): after a reboot nothing else has done it before the start-up pass.
        var health = await _engine.ProbeAsync(cancellationToken).ConfigureAwait(false);
        if (!health.Ready)
        {
            errors.Add($"target engine {_engine.Kind} is not ready: {health.Reason}");
        }

        var result = await _engine.ReconcileAsync(desired, cancellationToken).ConfigureAwait(false);
        errors.AddRange(result.Errors);

        var actual = await _engine.ListExportsAsync(cancellationToken).ConfigureAwait(false);
        _metrics.Exports.Set(actual.Count);
        var byKey = actual.ToDictionary(a => a.Key, StringComparer.Ordinal);
        foreach (var spec in desired)
        {
            if (problems.ContainsKey(spec.Key))
            {
                continue;
            }
            if (!byKey.TryGetValue(spec.Key, out var export))
            {
                problems[spec.Key] = "the export is missing on the target and could not be recreated";
            }
            else if (!export.Enabled)
            {
                problems[spec.Key] = "the export exists but is not enabled";
            }
            else if (export.Serial is { } serial && serial != spec.Serial)
            {
                problems[spec.Key] = $"the export reports serial {serial}, expected {spec.Serial}";
            }
        }
        _health.Replace(problems);
        return new ReconcileReport(result.Checked, result.Repaired, result.OrphansRemoved, errors, TimeSpan.Zero);
    }
}
