using System.Diagnostics;
using CsiScst.Core.Metrics;
using Prometheus;

namespace CsiScst.Engine.Reconcile;

/// <summary>The target-engine role's metrics (csi_scst_engine_*), on the process's own registry.</summary>
public sealed class EngineMetrics
{
    public EngineMetrics(DriverMetrics metrics)
    {
        var factory = metrics.Factory;
        Volumes = factory.CreateGauge("csi_scst_engine_volumes", "Volumes in the desired state, by phase (Creating, Ready, Deleting).",
            new GaugeConfiguration { LabelNames = ["phase"] });
        Exports = factory.CreateGauge("csi_scst_engine_exports", "Exports of this instance found on the target at the last reconcile.");
        Sessions = factory.CreateGauge("csi_scst_engine_sessions", "Live iSCSI sessions on this instance's targets.");
        ReconcileRuns = factory.CreateCounter("csi_scst_engine_reconcile_runs_total", "Reconcile passes, by trigger (startup, periodic, rpc).",
            new CounterConfiguration { LabelNames = ["trigger"] });
        ReconcileFailures = factory.CreateCounter("csi_scst_engine_reconcile_failures_total",
            "Reconcile passes that failed or left at least one export unrepaired.");
        ReconcileDuration = factory.CreateHistogram("csi_scst_engine_reconcile_duration_seconds", "Duration of reconcile passes.",
            new HistogramConfiguration { Buckets = DriverMetrics.Buckets });
        ReconcileRepaired = factory.CreateCounter("csi_scst_engine_reconcile_repaired_total", "Exports reconcile found missing or divergent and repaired.");
        ReconcileOrphans = factory.CreateCounter("csi_scst_engine_reconcile_orphans_removed_total", "Objects of this instance that nothing desired, removed by reconcile.");
        OperationDuration = factory.CreateHistogram("csi_scst_engine_operation_duration_seconds",
            "Duration of engine operations (ensure_volume, delete_volume, ensure_access …), by outcome (ok or the gRPC code).",
            new HistogramConfiguration { LabelNames = ["operation", "outcome"], Buckets = DriverMetrics.Buckets });
        ExportReadBytes = factory.CreateCounter("csi_scst_engine_export_read_bytes_total", "Bytes read through an export (engines that count it).",
            new CounterConfiguration { LabelNames = ["volume"] });
        ExportWrittenBytes = factory.CreateCounter("csi_scst_engine_export_written_bytes_total", "Bytes written through an export (engines that count it).",
            new CounterConfiguration { LabelNames = ["volume"] });
        ExportReadCommands = factory.CreateCounter("csi_scst_engine_export_read_commands_total", "Read commands through an export (engines that count it).",
            new CounterConfiguration { LabelNames = ["volume"] });
        ExportWriteCommands = factory.CreateCounter("csi_scst_engine_export_write_commands_total", "Write commands through an export (engines that count it).",
            new CounterConfiguration { LabelNames = ["volume"] });
        ExportSessions = factory.CreateGauge("csi_scst_engine_export_sessions", "Live sessions per export.",
            new GaugeConfiguration { LabelNames = ["volume"] });
    }

    public Gauge Volumes { get; }
    public Gauge Exports { get; }
    public Gauge Sessions { get; }
    public Counter ReconcileRuns { get; }
    public Counter ReconcileFailures { get; }
    public Histogram ReconcileDuration { get; }
    public Counter ReconcileRepaired { get; }
    public Counter ReconcileOrphans { get; }
    public Histogram OperationDuration { get; }
    public Counter ExportReadBytes { get; }
    public Counter ExportWrittenBytes { get; }
    public Counter ExportReadCommands { get; }
    public Counter ExportWriteCommands { get; }
    public Gauge ExportSessions { get; }

    /// <summary>Times one operation: <c>await metrics.TimeAsync("ensure_volume", () => …)</c>.</summary>
    public async Task<T> TimeAsync<T>(string operation, Func<Task<T>> action)
    {
        var started = Stopwatch.GetTimestamp();
        var outcome = "ok";
        try
        {
            return await action().ConfigureAwait(false);
        }
        catch (Exception e)
        {
            outcome = Core.Grpc.RpcInterceptor.ToStatus(e).StatusCode.ToString();
            throw;
        }
        finally
        {
            OperationDuration.WithLabels(operation, outcome).Observe(Stopwatch.GetElapsedTime(started).TotalSeconds);
        }
    }
}
