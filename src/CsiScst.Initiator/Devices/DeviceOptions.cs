namespace CsiScst.Initiator.Devices;

public sealed class DeviceOptions
{
    /// <summary>sysfs as the plugin sees it (the host's, in a privileged container).</summary>
    public string SysfsRoot { get; set; } = "/sys";

    /// <summary>The host's /dev (udev's by-path links live under it).</summary>
    public string DevDir { get; set; } = "/dev";

    /// <summary>How long NodeStageVolume waits for the disk of a fresh login (and for a multipath map).</summary>
    public TimeSpan DeviceTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How often the waits look again.</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromMilliseconds(100);
}
