using CsiScst.Core.Metrics;
using Prometheus;

namespace CsiScst.Csi.Controller.Engines;

/// <summary>The controller's own metrics: calls to engines and what discovery sees.</summary>
public sealed class ControllerMetrics
{
    public ControllerMetrics(DriverMetrics metrics)
    {
        EngineCalls = metrics.Factory.CreateCounter(
            "csi_scst_controller_engine_calls_total",
            "Calls from the controller to target engines, by storage node, method and gRPC status code.",
            new CounterConfiguration { LabelNames = ["node", "method", "code"] });
        EngineCallDuration = metrics.Factory.CreateHistogram(
            "csi_scst_controller_engine_call_duration_seconds",
            "Duration of calls from the controller to target engines, by method.",
            new HistogramConfiguration { LabelNames = ["method"], Buckets = DriverMetrics.Buckets });
        Engines = metrics.Factory.CreateGauge(
            "csi_scst_controller_engines",
            "Engines seen by the last discovery, by state (ready, not_ready, unreachable, refused).",
            new GaugeConfiguration { LabelNames = ["state"] });
        Discoveries = metrics.Factory.CreateCounter(
            "csi_scst_controller_discoveries_total",
            "Engine discovery runs, by outcome (success, failure).",
            new CounterConfiguration { LabelNames = ["outcome"] });
    }

    public Counter EngineCalls { get; }
    public Histogram EngineCallDuration { get; }
    public Gauge Engines { get; }
    public Counter Discoveries { get; }
}
