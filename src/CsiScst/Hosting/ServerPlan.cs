using CsiScst.Core.Grpc;
using CsiScst.Core.Tls;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace CsiScst.Hosting;

public enum LogFormat
{
    Text,
    Json,
}

/// <summary>One gRPC listener: a Unix socket (CSI, plain HTTP/2) or TCP with mutual TLS (engine API).</summary>
internal sealed record GrpcListener(EndpointAddress Endpoint, MutualTls? Tls = null);

/// <summary>Everything needed to build one role's server.</summary>
internal sealed class ServerPlan
{
    public required string Name { get; init; }
    public List<GrpcListener> Listeners { get; } = [];
    public EndpointAddress? Metrics { get; init; }
    public LogFormat LogFormat { get; init; }
    public Microsoft.Extensions.Logging.LogLevel LogLevel { get; init; } = Microsoft.Extensions.Logging.LogLevel.Information;
    public TimeSpan ShutdownTimeout { get; init; } = TimeSpan.FromSeconds(30);
    public List<Action<IServiceCollection>> Services { get; } = [];
    public List<Action<WebApplication>> Endpoints { get; } = [];
}
