using System.Net;
using System.Security.Authentication;
using CsiScst.Core.Exec;
using CsiScst.Core.Faults;
using CsiScst.Core.Grpc;
using CsiScst.Core.Health;
using CsiScst.Core.Metrics;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Prometheus;

namespace CsiScst.Hosting;

/// <summary>
/// Builds one role's server: Kestrel serving gRPC over HTTP/2 only (Unix socket for CSI, TCP with mutual
/// TLS for the engine API), an optional plain-HTTP listener for /metrics, /healthz and /readyz, structured
/// logs, and a graceful stop on SIGTERM that lets in-flight calls finish.
/// </summary>
internal static class ServerHost
{
    public static WebApplication Build(ServerPlan plan, DriverMetrics metrics, ExternalTime externalTime)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [], ApplicationName = "csi-scst" });
        ConfigureLogging(builder.Logging, plan.LogFormat, plan.LogLevel);
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = plan.ShutdownTimeout);
        builder.Services.AddSingleton(metrics);
        builder.Services.AddSingleton(externalTime);
        builder.Services.AddSingleton<Readiness>();
        builder.Services.AddSingleton<IToolRunner, ToolRunner>();
        builder.Services.AddSingleton<DelayPoints>();
        // Stateless apart from singletons: one instance serves every call.
        builder.Services.AddSingleton<RpcInterceptor>();
        builder.Services.AddGrpc(o =>
        {
            o.Interceptors.Add<RpcInterceptor>();
            o.EnableDetailedErrors = false;
        });
        builder.WebHost.UseKestrelHttpsConfiguration();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            foreach (var listener in plan.Listeners)
            {
                AddListener(kestrel, listener);
            }
            if (plan.Metrics is { } metricsEndpoint)
            {
                Listen(kestrel, metricsEndpoint, o => o.Protocols = HttpProtocols.Http1);
            }
        });
        foreach (var configure in plan.Services)
        {
            configure(builder.Services);
        }

        var app = builder.Build();
        if (plan.Metrics is { } endpoint)
        {
            var host = $"*:{endpoint.Port}";
            app.MapMetrics("/metrics", metrics.Registry).RequireHost(host);
            app.MapGet("/healthz", () => Results.Text("ok\n")).RequireHost(host);
            app.MapGet("/readyz", async (Readiness readiness, CancellationToken ct) =>
            {
                var result = await readiness.CheckAsync(ct).ConfigureAwait(false);
                return result.Ready ? Results.Text("ready\n") : Results.Text($"not ready: {result.Reason}\n", statusCode: 503);
            }).RequireHost(host);
        }
        foreach (var map in plan.Endpoints)
        {
            map(app);
        }

        var sockets = plan.Listeners.Where(l => l.Endpoint.IsUnix).Select(l => l.Endpoint.SocketPath!).ToArray();
        app.Lifetime.ApplicationStopped.Register(() =>
        {
            foreach (var socket in sockets)
            {
                SocketFile.Remove(socket);
            }
        });
        return app;
    }

    public static void ConfigureLogging(ILoggingBuilder logging, LogFormat format, LogLevel level)
    {
        logging.ClearProviders();
        logging.SetMinimumLevel(level);
        // Kestrel and gRPC internals are noise at Information; our interceptor logs every call.
        logging.AddFilter("Microsoft", LogLevel.Warning);
        logging.AddFilter("Grpc", LogLevel.Warning);
        logging.AddFilter("Microsoft.Hosting.Lifetime", LogLevel.Information);
        if (format == LogFormat.Json)
        {
            logging.AddJsonConsole(o =>
            {
                o.UseUtcTimestamp = true;
                o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ";
            });
        }
        else
        {
            logging.AddSimpleConsole(o =>
            {
                o.SingleLine = true;
                o.UseUtcTimestamp = true;
                o.TimestampFormat = "HH:mm:ss.fff ";
            });
        }
    }

    private static void AddListener(KestrelServerOptions kestrel, GrpcListener listener)
    {
        if (listener.Endpoint.IsUnix)
        {
            SocketFile.PrepareForListen(listener.Endpoint.SocketPath!);
            kestrel.ListenUnixSocket(listener.Endpoint.SocketPath!, o => o.Protocols = HttpProtocols.Http2);
            return;
        }
        Listen(kestrel, listener.Endpoint, o =>
        {
            o.Protocols = HttpProtocols.Http2;
            if (listener.Tls is { } tls)
            {
                o.UseHttps(new HttpsConnectionAdapterOptions
                {
                    ServerCertificate = tls.Certificate,
                    ClientCertificateMode = ClientCertificateMode.RequireCertificate,
                    ClientCertificateValidation = (certificate, _, _) => tls.ValidateClient(certificate),
                    SslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
                });
            }
        });
    }

    private static void Listen(KestrelServerOptions kestrel, Core.Grpc.EndpointAddress endpoint, Action<ListenOptions> configure)
    {
        var host = endpoint.Host ?? "";
        if (host is "" or "*" or "0.0.0.0")
        {
            kestrel.ListenAnyIP(endpoint.Port, configure);
        }
        else if (host == "localhost")
        {
            kestrel.ListenLocalhost(endpoint.Port, configure);
        }
        else if (IPAddress.TryParse(host, out var address))
        {
            kestrel.Listen(address, endpoint.Port, configure);
        }
        else
        {
            throw new InvalidOperationException($"cannot listen on '{endpoint}': give an IP address, 0.0.0.0 or localhost");
        }
    }
}
