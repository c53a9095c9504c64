namespace CsiScst.Targets.Tgt;

/// <summary>How the tgt engine reaches (and optionally starts) its <c>tgtd</c>.</summary>
public sealed class TgtOptions
{
    /// <summary>tgtd's control port (<c>tgtd -C N</c>, <c>tgtadm -C N</c>): selects the management socket /var/run/tgtd/socket.N.</summary>
    public int ControlPort { get; set; }

    public string TgtadmPath { get; set; } = "tgtadm";

    public string TgtdPath { get; set; } = "tgtd";

    /// <summary>
    /// Start <c>tgtd</c> (daemonized, so it outlives this process and exports keep serving) when none answers
    /// on the control port, listening on <see cref="Portals"/>. Reconcile then restores every export.
    /// </summary>
    public bool StartDaemon { get; set; }

    /// <summary>"ip:port" portals tgtd listens on; added to a running tgtd when missing.</summary>
    public IList<string> Portals { get; set; } = [];

    /// <summary>Timeout of each tgtadm call.</summary>
    public TimeSpan CommandTimeout { get; set; } = TimeSpan.FromSeconds(30);
}
