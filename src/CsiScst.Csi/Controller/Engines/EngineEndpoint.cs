using CsiScst.Core.Grpc;

namespace CsiScst.Csi.Controller.Engines;

/// <summary>
/// One engine to dial. <paramref name="ExpectedNodeId"/> is set when the operator named the storage node
/// (static discovery): an engine reporting another node id is refused, since volume ids would point
/// at the wrong machine. <paramref name="Source"/> says where it came from, for messages.
/// </summary>
public sealed record EngineEndpoint(EndpointAddress Address, string? ExpectedNodeId, string Source)
{
    public string Key => Address.ToString();
}

/// <summary>Where engines come from: the static flags or the Kubernetes API.</summary>
public interface IEngineDiscovery
{
    /// <summary>Human-readable description for logs and errors ("static: 2 engines", "pods app=x in ns").</summary>
    string Description { get; }

    Task<IReadOnlyList<EngineEndpoint>> DiscoverAsync(CancellationToken cancellationToken);
}
