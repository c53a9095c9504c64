using CsiScst.Core.Grpc;
using CsiScst.Core.Ids;

namespace CsiScst.Csi.Controller.Engines;

/// <summary>Engines given on the command line: <c>--engine NODE=tcp://ip:port</c> (outside Kubernetes, standalone).</summary>
public sealed class StaticEngineDiscovery : IEngineDiscovery
{
    private readonly IReadOnlyList<EngineEndpoint> _endpoints;

    public StaticEngineDiscovery(IEnumerable<EngineEndpoint> endpoints)
    {
        _endpoints = endpoints.ToArray();
    }

    public string Description => $"static list of {_endpoints.Count} engine(s)";

    public Task<IReadOnlyList<EngineEndpoint>> DiscoverAsync(CancellationToken cancellationToken) => Task.FromResult(_endpoints);

    /// <summary>Parses one <c>NODE=tcp://host:port</c> value.</summary>
    public static bool TryParse(string text, out EngineEndpoint? endpoint, out string error)
    {
        endpoint = null;
        error = "";
        var eq = text.IndexOf('=');
        if (eq <= 0)
        {
            error = $"--engine '{text}' must be NODE=tcp://host:port (NODE is the storage node's id, as the engine's --node-id)";
            return false;
        }
        var node = text[..eq];
        var address = text[(eq + 1)..];
        if (!Names.IsValidNodeName(node))
        {
            error = $"--engine '{text}': node id '{node}' must be a DNS name (letters, digits, '-', '.', '_')";
            return false;
        }
        if (!EndpointAddress.TryParse(address, out var parsed, out var parseError) || parsed.IsUnix || parsed.Port == 0)
        {
            error = $"--engine '{text}': '{address}' must be tcp://host:port (the engine API is TCP with mutual TLS){(parseError.Length > 0 ? ": " + parseError : "")}";
            return false;
        }
        endpoint = new EngineEndpoint(parsed, node, "--engine " + node);
        return true;
    }
}
