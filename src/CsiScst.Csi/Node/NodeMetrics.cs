using System.Diagnostics;
using CsiScst.Core.Errors;
using CsiScst.Core.Metrics;
using Grpc.Core;
using Prometheus;

namespace CsiScst.Csi.Node;

/// <summary>The node plugin's own metrics: stage/unstage/publish/unpublish/expand timings and outcomes, orphan cleanup.</summary>
public sealed class NodeMetrics
{
    public NodeMetrics(DriverMetrics metrics)
    {
        Operations = metrics.Factory.CreateCounter(
            "csi_scst_node_operations_total",
            "Node volume operations (stage, unstage, publish, unpublish, expand, stats) by outcome (the gRPC status code).",
            new CounterConfiguration { LabelNames = ["operation", "code"] });
        Duration = metrics.Factory.CreateHistogram(
            "csi_scst_node_operation_duration_seconds",
            "Duration of node volume operations by operation and outcome.",
            new HistogramConfiguration { LabelNames = ["operation", "code"], Buckets = DriverMetrics.Buckets });
        OrphanSessions = metrics.Factory.CreateCounter(
            "csi_scst_node_orphan_sessions_logged_out_total",
            "iSCSI sessions of this instance that backed no staged volume and were logged out at start-up.");
    }

    public Counter Operations { get; }
    public Histogram Duration { get; }
    public Counter OrphanSessions { get; }

    public async Task<T> MeasureAsync<T>(string operation, Func<Task<T>> action)
    {
        var started = Stopwatch.GetTimestamp();
        var code = StatusCode.Unknown;
        try
        {
            var result = await action().ConfigureAwait(false);
            code = StatusCode.OK;
            return result;
        }
        catch (StatusException e)
        {
            code = e.Code;
            throw;
        }
        catch (RpcException e)
        {
            code = e.StatusCode;
            throw;
        }
        catch (CsiScst.Core.Exec.ToolException e)
        {
            code = e.SuggestedStatus;
            throw;
        }
        catch (OperationCanceledException)
        {
            code = StatusCode.Cancelled;
            throw;
        }
        catch (Exception)
        {
            code = StatusCode.Internal;
            throw;
        }
        finally
        {
            var label = code.ToString();
            Operations.WithLabels(operation, label).Inc();
            Duration.WithLabels(operation, label).Observe(Stopwatch.GetElapsedTime(started).TotalSeconds);
        }
    }
}
