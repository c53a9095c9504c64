namespace CsiScst.Targets.Lio;

/// <summary>Settings of the LIO engine (flags of <c>csi-scst target --engine lio</c>).</summary>
public sealed class LioOptions
{
    public const string DefaultConfigfsRoot = "/sys/kernel/config/target";

    /// <summary>LIO's configfs root (target_core_mod's group in configfs).</summary>
    public string ConfigfsRoot { get; set; } = DefaultConfigfsRoot;

    /// <summary>
    /// Load target_core_mod / iscsi_target_mod (and the iblock/fileio backends) with <c>modprobe</c> and mount configfs
    /// when the probe finds them missing. Off where the operator manages modules (or the kernel has them built in).
    /// </summary>
    public bool LoadModules { get; set; } = true;

    /// <summary>Portals ("ip:port", IPv6 as "[addr]:port") used when an export names none. LIO shares one listener
    /// per address among all targets, so every export may carry the same portal.</summary>
    public IList<string> DefaultPortals { get; set; } = ["0.0.0.0:3260"];

    /// <summary>Where the kernel lists block devices by major:minor (sizes of iblock backstores).</summary>
    public string SysfsRoot { get; set; } = "/sys";

    /// <summary>The mount table, to tell whether configfs is mounted.</summary>
    public string MountsFile { get; set; } = "/proc/self/mounts";

    /// <summary>Timeout of each modprobe / mount call.</summary>
    public TimeSpan ToolTimeout { get; set; } = TimeSpan.FromSeconds(30);
}
