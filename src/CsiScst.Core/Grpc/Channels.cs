using System.Net.Security;
using System.Net.Sockets;
using Grpc.Net.Client;

namespace CsiScst.Core.Grpc;

/// <summary>gRPC client channels to a Unix socket (CSI) or to a TCP endpoint with mutual TLS (engine API).</summary>
public static class Channels
{
    /// <summary>A channel to a Unix socket speaking HTTP/2 without TLS, as kubelet and the sidecars do.</summary>
    public static GrpcChannel ForUnixSocket(string socketPath, GrpcChannelOptions? options = null)
    {
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, cancellationToken) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), cancellationToken).ConfigureAwait(false);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        };
        options ??= new GrpcChannelOptions();
        options.HttpHandler = handler;
        options.DisposeHttpClient = true;
        // The authority is not used on a Unix socket; any valid host works.
        return GrpcChannel.ForAddress("http://localhost", options);
    }

    public static GrpcChannel For(EndpointAddress endpoint, SslClientAuthenticationOptions? tls = null, GrpcChannelOptions? options = null)
    {
        if (endpoint.IsUnix)
        {
            return ForUnixSocket(endpoint.SocketPath!, options);
        }
        options ??= new GrpcChannelOptions();
        var handler = new SocketsHttpHandler
        {
            EnableMultipleHttp2Connections = true,
            PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5),
            KeepAlivePingDelay = TimeSpan.FromSeconds(30),
            KeepAlivePingTimeout = TimeSpan.FromSeconds(10),
            ConnectTimeout = TimeSpan.FromSeconds(10),
        };
        if (tls is not null)
        {
            handler.SslOptions = tls;
        }
        options.HttpHandler = handler;
        options.DisposeHttpClient = true;
        var scheme = tls is null ? "http" : "https";
        return GrpcChannel.ForAddress($"{scheme}://{endpoint.Authority}", options);
    }
}
