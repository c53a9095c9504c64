namespace CsiScst.Csi.Controller;

/// <summary>
/// The keys the controller writes into CSI volume_context and publish_context, and the keys of CHAP
/// secrets. The node plugin reads exactly these. None of the contexts ever carries a secret.
/// </summary>
public static class ContextKeys
{
    public const string Prefix = "csi-scst.io/";

    // ---- volume_context (CreateVolume): what the node needs to verify and set up the device.

    /// <summary>SCSI unit serial (VPD 0x80) the node compares with the device before touching it.</summary>
    public const string Serial = Prefix + "serial";
    /// <summary>Storage node that exports the volume (informational; the volume id carries it too).</summary>
    public const string TargetNode = Prefix + "target-node";
    /// <summary>Logical block size the LUN reports: "512" or "4096".</summary>
    public const string BlockSize = Prefix + "block-size";
    /// <summary>CHAP the target requires: "none", "chap" (one-way) or "mutual"; credentials come from the node-stage secret.</summary>
    public const string Chap = Prefix + "chap";
    /// <summary>Filesystem hint from the StorageClass parameter fsType, used when the capability names none.</summary>
    public const string FsType = Prefix + "fs-type";
    /// <summary>"snapshot" or "volume" when the volume was created from a source: its filesystem is a copy (XFS needs nouuid).</summary>
    public const string ContentSource = Prefix + "content-source";
    /// <summary>open-iscsi session tuning from StorageClass parameters, in seconds.</summary>
    public const string ReplacementTimeout = Prefix + "replacement-timeout";
    public const string LoginTimeout = Prefix + "login-timeout";
    public const string NoopOutInterval = Prefix + "noop-out-interval";
    public const string NoopOutTimeout = Prefix + "noop-out-timeout";

    public const string ChapNone = "none";
    public const string ChapOneWay = "chap";
    public const string ChapMutual = "mutual";

    // ---- publish_context (ControllerPublishVolume): where to log in.

    /// <summary>Comma-separated iSCSI portals "ip:port" (IPv6 as [addr]:port).</summary>
    public const string Portals = Prefix + "portals";
    /// <summary>Target IQN.</summary>
    public const string TargetIqn = Prefix + "iqn";
    /// <summary>LUN number (decimal).</summary>
    public const string Lun = Prefix + "lun";

    // ---- CHAP secrets (the provisioner secret for chap=static, the generated "<pv>-chap" Secret, the node-stage secret).

    /// <summary>Initiator → target: user name and secret the initiator presents.</summary>
    public const string ChapUsername = "username";
    public const string ChapPassword = "password";
    /// <summary>Target → initiator (mutual CHAP): user name and secret the target presents.</summary>
    public const string ChapUsernameIn = "username_in";
    public const string ChapPasswordIn = "password_in";
}
