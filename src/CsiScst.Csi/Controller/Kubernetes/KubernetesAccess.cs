using k8s;

namespace CsiScst.Csi.Controller.Kubernetes;

/// <summary>Where the Kubernetes API is: a kubeconfig file, or the pod's service account (in-cluster).</summary>
public sealed class KubernetesAccessOptions
{
    /// <summary>Path of a kubeconfig; null: in-cluster configuration when running in a pod, else no API.</summary>
    public string? KubeconfigPath { get; set; }
}

/// <summary>
/// The Kubernetes API client, created on first use. Null <see cref="Client"/> means this controller runs
/// outside Kubernetes (standalone, static engines): features that need the API say so clearly.
/// </summary>
public sealed class KubernetesAccess : IDisposable
{
    private readonly Lazy<IKubernetes?> _client;

    public KubernetesAccess(KubernetesAccessOptions options)
    {
        _client = new Lazy<IKubernetes?>(() => Create(options), LazyThreadSafetyMode.ExecutionAndPublication);
    }

    public IKubernetes? Client => _client.Value;

    public bool Available => Client is not null;

    private static IKubernetes? Create(KubernetesAccessOptions options)
    {
        if (!string.IsNullOrEmpty(options.KubeconfigPath))
        {
            return new k8s.Kubernetes(KubernetesClientConfiguration.BuildConfigFromConfigFile(options.KubeconfigPath));
        }
        return KubernetesClientConfiguration.IsInCluster() ? new k8s.Kubernetes(KubernetesClientConfiguration.InClusterConfig()) : null;
    }

    public void Dispose()
    {
        if (_client.IsValueCreated)
        {
            (_client.Value as IDisposable)?.Dispose();
        }
    }
}
