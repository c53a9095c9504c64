using Prometheus;

namespace CsiScst.Core.Metrics;

/// <summary>
/// The metrics every role shares. One instance per process, over a registry of its own (never the
/// static default one), so tests can host several roles in one process and read each /metrics apart.
/// Components with metrics of their own create them through <see cref="Factory"/>.
/// </summary>
public sealed class DriverMetrics
{
    private static readonly double[] LatencyBuckets =
        [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

    public DriverMetrics()
        : this(Prometheus.Metrics.NewCustomRegistry())
    {
    }

    public DriverMetrics(CollectorRegistry registry)
    {
        Registry = registry;
        Factory = Prometheus.Metrics.WithCustomRegistry(registry);

        RpcRequests = Factory.CreateCounter(
            "csi_scst_rpc_requests_total",
            "gRPC requests served, by service, method and status code.",
            new CounterConfiguration { LabelNames = ["service", "method", "code"] });
        RpcDuration = Factory.CreateHistogram(
            "csi_scst_rpc_duration_seconds",
            "Time to serve a gRPC request, by service and method.",
            new HistogramConfiguration { LabelNames = ["service", "method"], Buckets = LatencyBuckets });
        RpcOwnTime = Factory.CreateHistogram(
            "csi_scst_rpc_own_duration_seconds",
            "The driver's own time per gRPC request: duration minus time spent in external tools, sysfs/configfs I/O, waits on the engine write lock and calls to other roles.",
            new HistogramConfiguration { LabelNames = ["service", "method"], Buckets = LatencyBuckets });
        ToolRuns = Factory.CreateCounter(
            "csi_scst_tool_runs_total",
            "External tool runs, by tool and outcome (success, failure, timeout, not_found).",
            new CounterConfiguration { LabelNames = ["tool", "outcome"] });
        ToolDuration = Factory.CreateHistogram(
            "csi_scst_tool_duration_seconds",
            "Duration of external tool runs, by tool.",
            new HistogramConfiguration { LabelNames = ["tool"], Buckets = LatencyBuckets });
    }

    public CollectorRegistry Registry { get; }
    public IMetricFactory Factory { get; }

    public Counter RpcRequests { get; }
    public Histogram RpcDuration { get; }
    public Histogram RpcOwnTime { get; }
    public Counter ToolRuns { get; }
    public Histogram ToolDuration { get; }

    public static double[] Buckets => (double[])LatencyBuckets.Clone();
}
