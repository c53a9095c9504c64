using System.Diagnostics;
using CsiScst.Core.Errors;
using CsiScst.Core.Grpc;
using CsiScst.Core.Metrics;
using Grpc.Core;

namespace CsiScst.Csi.Controller.Engines;

/// <summary>
/// Makes one engine call: deadline, metrics, the time counted as external (not the controller's own),
/// and the translation of engine failures into what the CO should see. The engine answers with CSI
/// codes already; a transport failure becomes UNAVAILABLE naming the storage node, so the CO retries
/// and an operator knows which machine to look at.
/// </summary>
public sealed class EngineCaller
{
    private readonly ControllerMetrics _metrics;
    private readonly ExternalTime _externalTime;

    public EngineCaller(ControllerMetrics metrics, ExternalTime externalTime)
    {
        _metrics = metrics;
        _externalTime = externalTime;
    }

    public async Task<T> CallAsync<T>(string node, EndpointAddress address, string method, TimeSpan timeout,
        Func<CallOptions, AsyncUnaryCall<T>> call, CancellationToken cancellationToken)
    {
        var options = new CallOptions(deadline: DateTime.UtcNow + timeout, cancellationToken: cancellationToken);
        var started = Stopwatch.GetTimestamp();
        using var measured = _externalTime.Measure();
        try
        {
            var response = await call(options).ResponseAsync.ConfigureAwait(false);
            Record(node, method, StatusCode.OK, started);
            return response;
        }
        catch (RpcException e) when (!cancellationToken.IsCancellationRequested)
        {
            Record(node, method, e.StatusCode, started);
            throw Translate(node, address, method, e);
        }
    }

    public static StatusException Translate(string node, EndpointAddress address, string method, RpcException e)
    {
        var detail = string.IsNullOrEmpty(e.Status.Detail) ? e.StatusCode.ToString() : e.Status.Detail;
        return e.StatusCode switch
        {
            StatusCode.Unavailable or StatusCode.DeadlineExceeded or StatusCode.Cancelled =>
                StatusException.Unavailable($"target node {node} ({address.Authority}) did not answer {method}: {detail}; retry when it is back", e),
            StatusCode.Unknown => StatusException.Internal($"target node {node}: {method} failed: {detail}", e),
            _ => new StatusException(e.StatusCode, $"target node {node}: {detail}", e),
        };
    }

    private void Record(string node, string method, StatusCode code, long started)
    {
        _metrics.EngineCalls.WithLabels(node, method, code.ToString()).Inc();
        _metrics.EngineCallDuration.WithLabels(method).Observe(Stopwatch.GetElapsedTime(started).TotalSeconds);
    }
}
