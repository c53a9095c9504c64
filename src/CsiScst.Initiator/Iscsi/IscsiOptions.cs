namespace CsiScst.Initiator.Iscsi;

/// <summary>Defaults for the node records the plugin writes; a volume may override them (volume_context).</summary>
public sealed class IscsiOptions
{
    /// <summary>open-iscsi iface record to log in through; null: iscsid's "default" iface.</summary>
    public string? Iface { get; set; }

    /// <summary>
    /// Seconds I/O is queued while a single-path session reconnects before it fails up to the
    /// filesystem. Long enough to ride out a target restart (open-iscsi's own default is 120).
    /// </summary>
    public int ReplacementTimeout { get; set; } = 120;

    /// <summary>
    /// The same for each path of a multipath volume: short, so dm-multipath fails over quickly
    /// (multipath itself queues while all paths are down).
    /// </summary>
    public int MultipathReplacementTimeout { get; set; } = 15;

    public int LoginTimeout { get; set; } = 15;

    /// <summary>
    /// node.session.initial_login_retry_max. open-iscsi's 8 × 15 s login timeout would outlast the
    /// CO's deadline for NodeStageVolume; the CO retries the whole call instead.
    /// </summary>
    public int LoginRetries { get; set; } = 2;

    public int NoopOutInterval { get; set; } = 5;
    public int NoopOutTimeout { get; set; } = 5;

    /// <summary>Limit for one iscsiadm run (a login waits up to LoginTimeout × (LoginRetries + 1)).</summary>
    public TimeSpan CommandTimeout { get; set; } = TimeSpan.FromSeconds(120);

    public string IfaceOrDefault => string.IsNullOrEmpty(Iface) ? IscsiadmConstants.DefaultIface : Iface;
}

/// <summary>Per-volume node record settings (node flags, overridden by the volume context).</summary>
public sealed record NodeRecordSettings(int ReplacementTimeout, int LoginTimeout, int LoginRetries, int NoopOutInterval, int NoopOutTimeout);

/// <summary>CHAP for one session. Never logged; passed to iscsiadm as redacted arguments.</summary>
public sealed record ChapCredentials(string Username, string Password, string? UsernameIn, string? PasswordIn)
{
    public bool IsMutual => !string.IsNullOrEmpty(UsernameIn);

    public override string ToString() => $"CHAP user {Username}{(IsMutual ? $", mutual user {UsernameIn}" : "")}";
}
