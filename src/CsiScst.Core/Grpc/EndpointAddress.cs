using System.Diagnostics.CodeAnalysis;
using System.Net;

namespace CsiScst.Core.Grpc;

/// <summary>A listen or dial address: <c>unix:///abs/path.sock</c> or <c>tcp://host:port</c> (or <c>host:port</c>).</summary>
public sealed record EndpointAddress(string? SocketPath, string? Host, int Port)
{
    public bool IsUnix => SocketPath is not null;

    public static EndpointAddress Unix(string path) => new(path, null, 0);
    public static EndpointAddress Tcp(string host, int port) => new(null, host, port);

    public override string ToString() => IsUnix ? "unix://" + SocketPath : $"tcp://{FormatHost(Host!)}:{Port}";

    /// <summary>host:port for TCP endpoints.</summary>
    public string Authority => $"{FormatHost(Host!)}:{Port}";

    public static EndpointAddress Parse(string text)
    {
        if (!TryParse(text, out var endpoint, out var error))
        {
            throw new FormatException(error);
        }
        return endpoint;
    }

    public static bool TryParse(string? text, [NotNullWhen(true)] out EndpointAddress? endpoint, out string error)
    {
        endpoint = null;
        error = "";
        if (string.IsNullOrWhiteSpace(text))
        {
            error = "endpoint is empty; use unix:///absolute/path.sock or tcp://host:port";
            return false;
        }
        if (text.StartsWith("unix://", StringComparison.Ordinal))
        {
            var path = text["unix://".Length..];
            if (!path.StartsWith('/'))
            {
                error = $"endpoint '{text}' must name an absolute socket path (unix:///abs/path.sock)";
                return false;
            }
            endpoint = Unix(path);
            return true;
        }
        var rest = text.StartsWith("tcp://", StringComparison.Ordinal) ? text["tcp://".Length..] : text;
        var colon = rest.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(rest[(colon + 1)..], out var port) || port is < 0 or > 65535)
        {
            error = $"endpoint '{text}' is neither unix:///abs/path.sock nor tcp://host:port";
            return false;
        }
        var host = rest[..colon].Trim('[', ']');
        endpoint = Tcp(host, port);
        return true;
    }

    public IPAddress? Address => IPAddress.TryParse(Host, out var ip) ? ip : null;

    private static string FormatHost(string host) => host.Contains(':', StringComparison.Ordinal) ? $"[{host}]" : host;
}
