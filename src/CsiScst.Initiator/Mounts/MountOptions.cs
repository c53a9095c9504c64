namespace CsiScst.Initiator.Mounts;

public sealed class MountOptions
{
    /// <summary>Where the plugin reads its mount table.</summary>
    public string MountInfoPath { get; set; } = MountInfo.SelfPath;

    /// <summary>Filesystem for mount volumes whose capability names none.</summary>
    public string DefaultFsType { get; set; } = "ext4";

    /// <summary>Limit for mkfs and fsck (big volumes take a while).</summary>
    public TimeSpan FormatTimeout { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>Limit for mount, umount, blkid, resize.</summary>
    public TimeSpan CommandTimeout { get; set; } = TimeSpan.FromMinutes(2);
}
