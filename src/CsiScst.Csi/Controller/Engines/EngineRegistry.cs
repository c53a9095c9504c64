using CsiScst.Core;
using CsiScst.Core.Errors;
using CsiScst.Core.Grpc;
using Grpc.Net.Client;
using Microsoft.Extensions.Logging;

namespace CsiScst.Csi.Controller.Engines;

/// <summary>
/// Every engine the controller may use: discovery (cached for <see cref="ControllerOptions.DiscoveryCacheTime"/>),
/// one reused mTLS channel per engine, and the engines' own answer to "who are you" (GetEngineInfo), which
/// maps storage node ids to channels. Nothing here is called by Probe: one storage node down must not
/// make the controller look unhealthy.
/// </summary>
public sealed class EngineRegistry : IDisposable
{
    private static readonly TimeSpan MinimumRediscovery = TimeSpan.FromSeconds(2);

    private readonly IEngineDiscovery _discovery;
    private readonly ControllerOptions _options;
    private readonly EngineCaller _caller;
    private readonly ControllerMetrics _metrics;
    private readonly string _instanceId;
    private readonly ILogger<EngineRegistry> _logger;
    private readonly SemaphoreSlim _discoveryGate = new(1, 1);
    private readonly Lock _gate = new();
    private readonly Dictionary<string, EngineConnection> _connections = new(StringComparer.Ordinal);
    private readonly List<(EngineConnection Connection, DateTime RetiredAt)> _retired = [];
    private DateTime _discoveredAt = DateTime.MinValue;
    private string? _discoveryError;

    public EngineRegistry(IEngineDiscovery discovery, ControllerOptions options, EngineCaller caller, ControllerMetrics metrics,
        DriverOptions driver, ILogger<EngineRegistry> logger)
    {
        _discovery = discovery;
        _options = options;
        _caller = caller;
        _metrics = metrics;
        _instanceId = driver.InstanceId;
        _logger = logger;
    }

    /// <summary>All engines now. <paramref name="fresh"/>: ask each engine again (placement, capacity).</summary>
    public async Task<EngineView> GetAsync(bool fresh, CancellationToken cancellationToken)
    {
        var connections = await ConnectionsAsync(force: false, cancellationToken).ConfigureAwait(false);
        return await BuildViewAsync(connections, fresh ? TimeSpan.Zero : _options.EngineInfoCacheTime, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The engine of a storage node, or UNAVAILABLE naming the node and what was seen instead.</summary>
    public async Task<EngineHandle> ForNodeAsync(string nodeId, CancellationToken cancellationToken)
    {
        var view = await GetAsync(fresh: false, cancellationToken).ConfigureAwait(false);
        if (view.Find(nodeId) is { } handle)
        {
            return handle;
        }
        // A new pod, a restarted engine or a changed IP: look again before giving up.
        var connections = await ConnectionsAsync(force: true, cancellationToken).ConfigureAwait(false);
        view = await BuildViewAsync(connections, TimeSpan.Zero, cancellationToken).ConfigureAwait(false);
        return view.Find(nodeId) ?? throw StatusException.Unavailable(view.DescribeMissing(nodeId, _discovery.Description));
    }

    private async Task<IReadOnlyList<EngineConnection>> ConnectionsAsync(bool force, CancellationToken cancellationToken)
    {
        var age = DateTime.UtcNow - _discoveredAt;
        if (age < _options.DiscoveryCacheTime && !(force && age >= MinimumRediscovery))
        {
            return Current();
        }
        await _discoveryGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            age = DateTime.UtcNow - _discoveredAt;
            if (age < _options.DiscoveryCacheTime && !(force && age >= MinimumRediscovery))
            {
                return Current();
            }
            IReadOnlyList<EngineEndpoint> endpoints;
            try
            {
                endpoints = await _discovery.DiscoverAsync(cancellationToken).ConfigureAwait(false);
                _metrics.Discoveries.WithLabels("success").Inc();
                _discoveryError = null;
            }
            catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                // Keep using what we knew: a Kubernetes API hiccup must not stop volumes on known engines.
                _metrics.Discoveries.WithLabels("failure").Inc();
                _discoveryError = $"engine discovery ({_discovery.Description}) failed: {e.Message}";
                _logger.LogWarning("Engine discovery failed, keeping {Count} known engine(s): {Error}", Current().Count, e.Message);
                _discoveredAt = DateTime.UtcNow;
                return Current();
            }
            Apply(endpoints);
            _discoveredAt = DateTime.UtcNow;
            return Current();
        }
        finally
        {
            _discoveryGate.Release();
        }
    }

    private void Apply(IReadOnlyList<EngineEndpoint> endpoints)
    {
        var wanted = endpoints
            .Where(e => e.ExpectedNodeId is null || !_options.ForgottenTargets.Contains(e.ExpectedNodeId))
            .GroupBy(e => e.Key, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal);
        lock (_gate)
        {
            foreach (var key in _connections.Keys.Where(k => !wanted.ContainsKey(k)).ToArray())
            {
                _logger.LogInformation("Engine at {Address} is no longer discovered", key);
                _retired.Add((_connections[key], DateTime.UtcNow));
                _connections.Remove(key);
            }
            foreach (var (key, endpoint) in wanted)
            {
                if (_connections.TryGetValue(key, out var existing) && existing.Endpoint == endpoint)
                {
                    continue;
                }
                if (existing is not null)
                {
                    _retired.Add((existing, DateTime.UtcNow));
                }
                _logger.LogInformation("Engine at {Address} discovered ({Source})", endpoint.Address.Authority, endpoint.Source);
                _connections[key] = new EngineConnection(endpoint, Dial(endpoint), _caller, _options);
            }
            // Calls may still run on a retired channel; dispose it once the longest call must be over.
            var horizon = DateTime.UtcNow - _options.EngineCallTimeout - TimeSpan.FromMinutes(1);
            foreach (var old in _retired.Where(r => r.RetiredAt < horizon).ToArray())
            {
                old.Connection.Dispose();
                _retired.Remove(old);
            }
        }
    }

    private GrpcChannel Dial(EngineEndpoint endpoint)
    {
        var tls = _options.Tls ?? throw new InvalidOperationException("the controller has no TLS material for the engine API (--tls-ca/--tls-cert/--tls-key)");
        return Channels.For(endpoint.Address, tls.ClientOptions(), new GrpcChannelOptions
        {
            MaxReceiveMessageSize = 64 * 1024 * 1024,
        });
    }

    private IReadOnlyList<EngineConnection> Current()
    {
        lock (_gate)
        {
            return _connections.Values.ToArray();
        }
    }

    private async Task<EngineView> BuildViewAsync(IReadOnlyList<EngineConnection> connections, TimeSpan maxAge, CancellationToken cancellationToken)
    {
        var results = await Task.WhenAll(connections.Select(async c =>
        {
            var (info, error) = await c.RefreshAsync(maxAge, _instanceId, cancellationToken).ConfigureAwait(false);
            return (Connection: c, Info: info, Error: error);
        })).ConfigureAwait(false);

        var usable = new List<EngineHandle>();
        var unusable = new List<EngineProblem>();
        var forgotten = new List<string>();
        foreach (var group in results.Where(r => r.Info is not null).GroupBy(r => r.Info!.NodeId, StringComparer.Ordinal))
        {
            if (_options.ForgottenTargets.Contains(group.Key))
            {
                forgotten.Add(group.Key);
                continue;
            }
            if (group.Count() > 1)
            {
                var addresses = string.Join(" and ", group.Select(g => g.Connection.Endpoint.Address.Authority));
                foreach (var duplicate in group)
                {
                    unusable.Add(new EngineProblem(group.Key, duplicate.Connection.Endpoint.Address.Authority,
                        $"node id '{group.Key}' is reported by the engines at {addresses}; each storage node needs its own --node-id", Refused: true));
                }
                continue;
            }
            var only = group.First();
            usable.Add(new EngineHandle(only.Connection, only.Info!, _options));
        }
        foreach (var failed in results.Where(r => r.Info is null))
        {
            var refused = failed.Error is not null && !failed.Error.Contains("did not answer", StringComparison.Ordinal);
            var label = failed.Connection.Label == failed.Connection.Endpoint.Address.Authority ? failed.Connection.Endpoint.Source : failed.Connection.Label;
            unusable.Add(new EngineProblem(label, failed.Connection.Endpoint.Address.Authority, failed.Error ?? "no answer yet", refused));
        }
        usable.Sort((a, b) => string.CompareOrdinal(a.NodeId, b.NodeId));

        _metrics.Engines.WithLabels("ready").Set(usable.Count(u => u.Info.Ready));
        _metrics.Engines.WithLabels("not_ready").Set(usable.Count(u => !u.Info.Ready));
        _metrics.Engines.WithLabels("unreachable").Set(unusable.Count(u => !u.Refused));
        _metrics.Engines.WithLabels("refused").Set(unusable.Count(u => u.Refused));
        foreach (var problem in unusable.Where(u => u.Refused))
        {
            _logger.LogError("Engine {Node} at {Address} refused: {Reason}", problem.Label, problem.Address, problem.Reason);
        }
        return new EngineView(usable, unusable, forgotten, _discoveryError);
    }

    public void Dispose()
    {
        lock (_gate)
        {
            foreach (var connection in _connections.Values.Concat(_retired.Select(r => r.Connection)))
            {
                connection.Dispose();
            }
            _connections.Clear();
            _retired.Clear();
        }
        _discoveryGate.Dispose();
    }
}

/// <summary>An engine that cannot be used now, and why (unreachable, or refused for a wrong version/identity).</summary>
public sealed record EngineProblem(string Label, string Address, string Reason, bool Refused);

/// <summary>What the registry sees at one moment.</summary>
public sealed class EngineView(IReadOnlyList<EngineHandle> usable, IReadOnlyList<EngineProblem> unusable, IReadOnlyList<string> forgotten, string? discoveryError)
{
    /// <summary>Engines that answered and passed the checks, ordered by node id.</summary>
    public IReadOnlyList<EngineHandle> Usable { get; } = usable;
    public IReadOnlyList<EngineProblem> Unusable { get; } = unusable;
    public IReadOnlyList<string> Forgotten { get; } = forgotten;
    public string? DiscoveryError { get; } = discoveryError;

    public EngineHandle? Find(string nodeId) => Usable.FirstOrDefault(u => u.NodeId == nodeId);

    public string DescribeProblems() =>
        Unusable.Count == 0 ? "" : string.Join("; ", Unusable.Select(u => $"{u.Label} at {u.Address}: {u.Reason}"));

    public string DescribeMissing(string nodeId, string discovery)
    {
        var problem = Unusable.FirstOrDefault(u => u.Label == nodeId);
        if (problem is not null)
        {
            return $"target node {nodeId} is not usable now: {problem.Reason}; retry when it is back (or forget it: see 'Forgetting a storage node' in docs/operations.md)";
        }
        var seen = Usable.Count == 0 ? "none" : string.Join(", ", Usable.Select(u => u.NodeId));
        var others = Unusable.Count == 0 ? "" : $"; unreachable or refused: {DescribeProblems()}";
        var discoveryProblem = DiscoveryError is null ? "" : $"; {DiscoveryError}";
        return $"target node {nodeId} is not reachable: no engine found by {discovery} reports this node id (engines answering: {seen}{others}{discoveryProblem}); retry when it is back (or forget it: see 'Forgetting a storage node' in docs/operations.md)";
    }
}
