using CsiScst.Core.Grpc;
using CsiScst.Core.Ids;
using CsiScst.Engine.V1;
using Grpc.Core;
using Grpc.Net.Client;

namespace CsiScst.Csi.Controller.Engines;

/// <summary>
/// The one channel to one engine (reused by every call) and the last thing its GetEngineInfo said.
/// An engine is usable only when its answer passes <see cref="Check"/>: a known API major version, our
/// instance id, and the node id the operator named (static discovery).
/// </summary>
public sealed class EngineConnection : IDisposable
{
    /// <summary>API major versions this controller speaks.</summary>
    public static readonly string[] KnownApiMajors = ["1"];

    private readonly GrpcChannel _channel;
    private readonly EngineCaller _caller;
    private readonly ControllerOptions _options;
    private readonly Lock _gate = new();
    private EngineInfo? _info;
    private string? _error;
    private DateTime _checkedAt = DateTime.MinValue;

    public EngineConnection(EngineEndpoint endpoint, GrpcChannel channel, EngineCaller caller, ControllerOptions options)
    {
        Endpoint = endpoint;
        _channel = channel;
        _caller = caller;
        _options = options;
        Client = new TargetEngine.TargetEngineClient(channel);
    }

    public EngineEndpoint Endpoint { get; }
    public TargetEngine.TargetEngineClient Client { get; }

    /// <summary>The label used in messages and metrics before the engine said who it is.</summary>
    public string Label
    {
        get
        {
            lock (_gate)
            {
                return _info?.NodeId ?? Endpoint.ExpectedNodeId ?? Endpoint.Address.Authority;
            }
        }
    }

    public (EngineInfo? Info, string? Error, DateTime CheckedAt) Last
    {
        get
        {
            lock (_gate)
            {
                return (_info, _error, _checkedAt);
            }
        }
    }

    /// <summary>Asks GetEngineInfo unless the last answer is younger than <paramref name="maxAge"/>.</summary>
    public async Task<(EngineInfo? Info, string? Error)> RefreshAsync(TimeSpan maxAge, string instanceId, CancellationToken cancellationToken)
    {
        var last = Last;
        if (DateTime.UtcNow - last.CheckedAt < maxAge)
        {
            return (last.Info, last.Error);
        }
        EngineInfo? info = null;
        string? error;
        try
        {
            info = await CallAsync("GetEngineInfo", _options.EngineInfoTimeout,
                (c, o) => c.GetEngineInfoAsync(new GetEngineInfoRequest(), o), cancellationToken).ConfigureAwait(false);
            error = Check(info, Endpoint, instanceId);
        }
        catch (Core.Errors.StatusException e)
        {
            error = e.Message;
        }
        lock (_gate)
        {
            // A refused engine keeps no info: nothing may be sent to it.
            _info = error is null ? info : null;
            _error = error;
            _checkedAt = DateTime.UtcNow;
        }
        return (error is null ? info : null, error);
    }

    /// <summary>Why this engine must not be used, or null when it may.</summary>
    public static string? Check(EngineInfo info, EngineEndpoint endpoint, string instanceId)
    {
        var major = info.ApiVersion.Split('.')[0];
        if (!KnownApiMajors.Contains(major))
        {
            return $"engine at {endpoint.Address.Authority} speaks engine API version '{info.ApiVersion}'; this controller knows major version(s) {string.Join(", ", KnownApiMajors)}: upgrade the controller or the engine so both match";
        }
        if (!Names.IsValidNodeName(info.NodeId))
        {
            return $"engine at {endpoint.Address.Authority} reports node id '{info.NodeId}', which is not a valid node name";
        }
        if (endpoint.ExpectedNodeId is { } expected && expected != info.NodeId)
        {
            return $"engine at {endpoint.Address.Authority} reports node id '{info.NodeId}' but {endpoint.Source} names it '{expected}'; volume ids would point at the wrong storage node";
        }
        if (info.InstanceId != instanceId)
        {
            return $"engine at {endpoint.Address.Authority} ({info.NodeId}) serves instance id '{info.InstanceId}', this controller is instance '{instanceId}'";
        }
        return null;
    }

    public Task<T> CallAsync<T>(string method, TimeSpan timeout, Func<TargetEngine.TargetEngineClient, CallOptions, AsyncUnaryCall<T>> call,
        CancellationToken cancellationToken) =>
        _caller.CallAsync(Label, Endpoint.Address, method, timeout, o => call(Client, o), cancellationToken);

    public void Dispose() => _channel.Dispose();
}
