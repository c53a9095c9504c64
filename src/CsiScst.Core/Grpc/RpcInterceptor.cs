using System.Diagnostics;
using CsiScst.Core.Errors;
using CsiScst.Core.Exec;
using CsiScst.Core.Faults;
using CsiScst.Core.Metrics;
using global::Grpc.Core;
using global::Grpc.Core.Interceptors;
using Microsoft.Extensions.Logging;

namespace CsiScst.Core.Grpc;

/// <summary>
/// Wraps every served RPC: turns our typed failures into the gRPC status the spec names, records
/// request counts, latency and the driver's own time (latency minus external waits), and logs one
/// structured line per call. Request bodies are never logged: they carry secrets.
/// </summary>
public sealed class RpcInterceptor : Interceptor
{
    // Called constantly by sidecars and kubelet; logged at Debug so they don't drown the rest.
    private static readonly HashSet<string> Chatty = new(StringComparer.Ordinal)
    {
        "Probe", "GetPluginInfo", "GetPluginCapabilities", "ControllerGetCapabilities", "NodeGetCapabilities",
        "NodeGetInfo", "NodeGetVolumeStats", "GetCapacity", "ListVolumes", "ListSnapshots", "GetEngineInfo",
        "GetVolume", "ControllerGetVolume", "GetSnapshot",
    };

    private readonly DriverMetrics _metrics;
    private readonly ExternalTime _externalTime;
    private readonly ILogger<RpcInterceptor> _logger;
    private readonly DelayPoints _delays;

    public RpcInterceptor(DriverMetrics metrics, ExternalTime externalTime, DelayPoints delays, ILogger<RpcInterceptor> logger)
    {
        _metrics = metrics;
        _externalTime = externalTime;
        _delays = delays;
        _logger = logger;
    }

    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(
        TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        var (service, method) = Split(context.Method);
        var external = _externalTime.Begin();
        var started = Stopwatch.GetTimestamp();
        try
        {
            await _delays.DelayAsync(method, context.CancellationToken).ConfigureAwait(false);
            var response = await continuation(request, context).ConfigureAwait(false);
            Complete(service, method, StatusCode.OK, null, started, external);
            return response;
        }
        catch (Exception e)
        {
            var status = ToStatus(e, context);
            Complete(service, method, status.StatusCode, status.Detail, started, external, e);
            if (e is RpcException rpc && rpc.StatusCode == status.StatusCode)
            {
                throw;
            }
            throw new RpcException(status);
        }
    }

    /// <summary>The gRPC status a failure maps to.</summary>
    public static Status ToStatus(Exception exception, ServerCallContext? context = null) => exception switch
    {
        StatusException s => new Status(s.Code, s.Message),
        RpcException r => r.Status,
        ToolException t => new Status(t.SuggestedStatus, t.Message),
        OperationCanceledException when context?.Deadline is { } deadline && deadline <= DateTime.UtcNow =>
            new Status(StatusCode.DeadlineExceeded, "the call's deadline passed before the operation finished; it is safe to retry"),
        OperationCanceledException when context?.CancellationToken.IsCancellationRequested == true =>
            new Status(StatusCode.Cancelled, "the call was cancelled by the client; it is safe to retry"),
        OperationCanceledException =>
            new Status(StatusCode.Unavailable, "the operation was interrupted (the service is shutting down); retry"),
        _ => new Status(StatusCode.Internal, "unexpected error: " + exception.Message),
    };

    private void Complete(string service, string method, StatusCode code, string? detail, long started, ExternalTime.Accumulator external, Exception? exception = null)
    {
        var elapsed = Stopwatch.GetElapsedTime(started);
        var own = elapsed - external.Elapsed;
        _metrics.RpcRequests.WithLabels(service, method, code.ToString()).Inc();
        _metrics.RpcDuration.WithLabels(service, method).Observe(elapsed.TotalSeconds);
        _metrics.RpcOwnTime.WithLabels(service, method).Observe(Math.Max(0, own.TotalSeconds));

        if (code == StatusCode.OK)
        {
            _logger.Log(Chatty.Contains(method) ? LogLevel.Debug : LogLevel.Information,
                "{Service}/{Method} OK in {Milliseconds:0.#} ms", service, method, elapsed.TotalMilliseconds);
        }
        else if (code is StatusCode.Internal or StatusCode.Unknown && exception is not (StatusException or RpcException or ToolException))
        {
            _logger.LogError(exception, "{Service}/{Method} failed with {Code} in {Milliseconds:0.#} ms: {Detail}",
                service, method, code, elapsed.TotalMilliseconds, detail);
        }
        else
        {
            _logger.LogWarning("{Service}/{Method} failed with {Code} in {Milliseconds:0.#} ms: {Detail}",
                service, method, code, elapsed.TotalMilliseconds, detail);
        }
    }

    private static (string Service, string Method) Split(string fullMethod)
    {
        // "/csi.v1.Controller/CreateVolume" -> ("csi.v1.Controller", "CreateVolume")
        var trimmed = fullMethod.TrimStart('/');
        var slash = trimmed.IndexOf('/');
        return slash < 0 ? ("", trimmed) : (trimmed[..slash], trimmed[(slash + 1)..]);
    }
}
