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

    /// <summary>
    /// How often umount is retried when the kernel says "target is busy". A reference can outlive its user
    /// for a moment (a process forked elsewhere holds close-on-exec descriptors until it execs, a scanner
    /// walks the tree); waiting briefly beats failing the RPC and leaving kubelet to back off.
    /// </summary>
    public int UnmountBusyRetries { get; set; } = 4;

    /// <summary>First pause before retrying a busy umount; it doubles on every retry.</summary>
    public TimeSpan UnmountBusyDelay { get; set; } = TimeSpan.FromMilliseconds(100);
}
