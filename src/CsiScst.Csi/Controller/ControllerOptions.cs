using CsiScst.Core.Tls;

namespace CsiScst.Csi.Controller;

/// <summary>How the controller finds engines and fills in what a request leaves open.</summary>
public sealed class ControllerOptions
{
    public const long GiB = 1L << 30;

    /// <summary>Pool used when a StorageClass names none; null: the <c>pool</c> parameter is required.</summary>
    public string? DefaultPool { get; set; }

    /// <summary>Size of a volume whose CreateVolume has no capacity_range (documented: 1 GiB).</summary>
    public long DefaultVolumeSizeBytes { get; set; } = GiB;

    /// <summary>Storage nodes the operator declared gone for good: Delete/Unpublish of their volumes succeed without them.</summary>
    public HashSet<string> ForgottenTargets { get; } = new(StringComparer.Ordinal);

    /// <summary>Advertise VOLUME_ACCESSIBILITY_CONSTRAINTS and honour zones reported by engines.</summary>
    public bool Topology { get; set; }

    /// <summary>Mutual TLS for every engine connection. Required: the engine API is never spoken in clear.</summary>
    public MutualTls? Tls { get; set; }

    /// <summary>How long the discovered list of engines is reused before asking the discovery source again.</summary>
    public TimeSpan DiscoveryCacheTime { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long an engine's GetEngineInfo answer is reused (placement always asks afresh).</summary>
    public TimeSpan EngineInfoCacheTime { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Deadline of cheap engine calls (GetEngineInfo, Get/List).</summary>
    public TimeSpan EngineInfoTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Deadline of engine calls that change state (creating an LV or RBD clone can take a while).</summary>
    public TimeSpan EngineCallTimeout { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>Namespace holding generated CHAP Secrets (and the target pods, for Kubernetes discovery).</summary>
    public string Namespace { get; set; } = "default";
}
