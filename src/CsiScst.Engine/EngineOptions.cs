namespace CsiScst.Engine;

/// <summary>Settings of the target-engine role (<c>csi-scst target</c>).</summary>
public sealed class EngineOptions
{
    public const string DefaultStateDirectory = "/var/lib/csi-scst";

    /// <summary>Durable desired state: volumes/&lt;key&gt;.json and snapshots/&lt;key&gt;.json (mode 0600, they hold CHAP secrets).</summary>
    public string StateDirectory { get; set; } = DefaultStateDirectory;

    /// <summary>"ip:port" iSCSI portals initiators use (the storage network address), reported to the controller.</summary>
    public IList<string> Portals { get; set; } = [];

    /// <summary>How often the target is made to match the desired state (also at start-up and on demand).</summary>
    public TimeSpan ReconcileInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>Size of a volume whose request names no size.</summary>
    public long DefaultVolumeBytes { get; set; } = 1L << 30;

    /// <summary>Minimum time between two refreshes of the session/I-O gauges when /metrics is scraped.</summary>
    public TimeSpan StatsRefreshInterval { get; set; } = TimeSpan.FromSeconds(10);
}
