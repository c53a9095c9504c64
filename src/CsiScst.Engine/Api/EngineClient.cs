using CsiScst.Core.Grpc;
using CsiScst.Core.Tls;
using CsiScst.Engine.V1;
using Grpc.Net.Client;

namespace CsiScst.Engine.Api;

/// <summary>A typed engine API client over mutual TLS (used by tests, standalone and tools; the controller has its own pool of these).</summary>
public sealed class EngineClient : IDisposable
{
    public EngineClient(EndpointAddress endpoint, MutualTls tls)
    {
        Channel = Channels.For(endpoint, tls.ClientOptions());
        Api = new TargetEngine.TargetEngineClient(Channel);
    }

    public GrpcChannel Channel { get; }

    public TargetEngine.TargetEngineClient Api { get; }

    public void Dispose() => Channel.Dispose();
}
