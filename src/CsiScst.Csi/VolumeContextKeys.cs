namespace CsiScst.Csi;

/// <summary>
/// Keys the controller and the node plugin agree on. publish_context (ControllerPublishVolume → node)
/// carries where to log in; volume_context (CreateVolume → node) carries what the node checks and
/// tunes. Neither ever carries a secret: CHAP comes from the node-stage secret (<see cref="NodeStageSecretKeys"/>).
/// </summary>
public static class VolumeContextKeys
{
    public const string Prefix = "csi-scst.io/";

    // ---- publish_context (also accepted in volume_context, for statically provisioned volumes) ----

    /// <summary>Comma-separated portals, "ip:port" (IPv6 as "[addr]:port"). Several portals = multipath.</summary>
    public const string Portals = Prefix + "portals";

    /// <summary>The target IQN (one target per volume, docs/design.md).</summary>
    public const string TargetIqn = Prefix + "iqn";

    /// <summary>The LUN number the initiator sees (0 on SCST and LIO, 1 on tgt).</summary>
    public const string Lun = Prefix + "lun";

    // ---- volume_context ----

    /// <summary>The SCSI unit serial (VPD 0x80), "CS" + volume key; the node refuses a device whose serial differs.</summary>
    public const string Serial = Prefix + "serial";

    /// <summary>
    /// "snapshot" or "volume" when the volume was created from a snapshot or cloned: its filesystem is a
    /// copy, so XFS mounts it with "nouuid" (XFS refuses two mounted filesystems with one UUID).
    /// </summary>
    public const string ContentSource = Prefix + "content-source";

    /// <summary>Storage node that exports the volume (informational; the volume id carries it too).</summary>
    public const string TargetNode = Prefix + "target-node";

    /// <summary>Logical block size the LUN reports: "512" or "4096".</summary>
    public const string BlockSize = Prefix + "block-size";

    /// <summary>Filesystem from the StorageClass parameter fsType: used when the capability names none.</summary>
    public const string FsType = Prefix + "fs-type";

    /// <summary>CHAP the target requires: "none", "chap" (one-way) or "mutual"; the credentials come from the node-stage secret.</summary>
    public const string Chap = Prefix + "chap";
    public const string ChapNone = "none";
    public const string ChapOneWay = "chap";
    public const string ChapMutual = "mutual";

    public const string ContentSourceSnapshot = "snapshot";
    public const string ContentSourceVolume = "volume";

    /// <summary>iSCSI tuning (seconds / count), overriding the node plugin's flags for this volume.</summary>
    public const string ReplacementTimeout = Prefix + "replacement-timeout";
    public const string LoginTimeout = Prefix + "login-timeout";
    public const string LoginRetries = Prefix + "login-retries";
    public const string NoopOutInterval = Prefix + "noop-out-interval";
    public const string NoopOutTimeout = Prefix + "noop-out-timeout";

    /// <summary>
    /// StorageClass parameters the controller copies unchanged into volume_context under the keys above
    /// (parameter name → volume_context key).
    /// </summary>
    public static readonly IReadOnlyDictionary<string, string> TuningParameters = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["replacementTimeout"] = ReplacementTimeout,
        ["loginTimeout"] = LoginTimeout,
        ["loginRetries"] = LoginRetries,
        ["noopOutInterval"] = NoopOutInterval,
        ["noopOutTimeout"] = NoopOutTimeout,
    };
}

/// <summary>
/// Keys of the node-stage secret (StorageClass csi.storage.k8s.io/node-stage-secret-name/-namespace).
/// username/password: the initiator authenticates to the target (one-way CHAP; the target's incoming
/// user). username_in/password_in: the target authenticates back (mutual CHAP; the target's outgoing user).
/// </summary>
public static class NodeStageSecretKeys
{
    public const string Username = "username";
    public const string Password = "password";
    public const string UsernameIn = "username_in";
    public const string PasswordIn = "password_in";
}
