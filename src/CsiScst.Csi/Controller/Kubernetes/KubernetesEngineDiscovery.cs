using CsiScst.Core.Grpc;
using CsiScst.Csi.Controller.Engines;
using k8s;
using Microsoft.Extensions.Logging;

namespace CsiScst.Csi.Controller.Kubernetes;

public sealed class KubernetesDiscoveryOptions
{
    /// <summary>Label selector of the target-engine pods (the DaemonSet's labels).</summary>
    public string Selector { get; set; } = "app.kubernetes.io/component=target";

    /// <summary>Engine API port on each pod (host network: the storage node's address).</summary>
    public int Port { get; set; } = 9820;
}

/// <summary>
/// Finds the target-engine pods by label in the driver's namespace and dials each on its pod IP (host
/// network, so the node's address). The storage node id comes from the engine's GetEngineInfo, not
/// from the pod, so a renamed pod or a moved IP never changes which volumes an engine owns.
/// </summary>
public sealed class KubernetesEngineDiscovery : IEngineDiscovery
{
    private readonly KubernetesAccess _kubernetes;
    private readonly KubernetesDiscoveryOptions _discovery;
    private readonly ControllerOptions _options;
    private readonly ILogger<KubernetesEngineDiscovery> _logger;

    public KubernetesEngineDiscovery(KubernetesAccess kubernetes, KubernetesDiscoveryOptions discovery, ControllerOptions options,
        ILogger<KubernetesEngineDiscovery> logger)
    {
        _kubernetes = kubernetes;
        _discovery = discovery;
        _options = options;
        _logger = logger;
    }

    public string Description => $"pods with labels '{_discovery.Selector}' in namespace '{_options.Namespace}'";

    public async Task<IReadOnlyList<EngineEndpoint>> DiscoverAsync(CancellationToken cancellationToken)
    {
        var client = _kubernetes.Client
            ?? throw new InvalidOperationException("Kubernetes discovery needs the Kubernetes API: run in a pod or pass --kubeconfig");
        var pods = await client.CoreV1.ListNamespacedPodAsync(_options.Namespace, labelSelector: _discovery.Selector,
            cancellationToken: cancellationToken).ConfigureAwait(false);
        var endpoints = new List<EngineEndpoint>();
        foreach (var pod in pods.Items)
        {
            var name = pod.Metadata?.Name ?? "?";
            if (pod.Metadata?.DeletionTimestamp is not null || pod.Status?.Phase != "Running" || string.IsNullOrEmpty(pod.Status.PodIP))
            {
                _logger.LogDebug("Skipping target pod {Pod}: phase {Phase}, IP '{PodIp}'", name, pod.Status?.Phase, pod.Status?.PodIP);
                continue;
            }
            endpoints.Add(new EngineEndpoint(EndpointAddress.Tcp(pod.Status.PodIP, _discovery.Port), null,
                $"pod {name} on node {pod.Spec?.NodeName ?? "?"}"));
        }
        return endpoints;
    }
}
