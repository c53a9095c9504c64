using System.Globalization;
using CsiScst.Initiator.Iscsi;

namespace CsiScst.Initiator.Devices;

/// <summary>
/// udev's persistent path of an iSCSI LUN (systemd <c>path_id</c>):
/// <c>/dev/disk/by-path/ip-&lt;address&gt;:&lt;port&gt;-iscsi-&lt;target&gt;-lun-&lt;N&gt;</c>.
/// </summary>
public static class ByPath
{
    /// <summary>The link name for a LUN as the target numbers it.</summary>
    public static string LinkName(Portal portal, string target, int lun) =>
        $"ip-{portal.ToByPath()}-iscsi-{target}-lun-{FormatLun(LinuxLun(lun))}";

    /// <summary>
    /// The kernel's LUN number for a target LUN: LUNs below 256 use peripheral addressing (the same
    /// number); 256-16383 use flat space addressing, which the kernel reads as 0x4000 | LUN.
    /// </summary>
    public static long LinuxLun(int lun) => lun < 256 ? lun : 0x4000 | lun;

    /// <summary>path_id's format: <c>lun-N</c> below 256, else <c>lun-0x%04x%04x00000000</c>.</summary>
    public static string FormatLun(long linuxLun) => linuxLun < 256
        ? linuxLun.ToString(CultureInfo.InvariantCulture)
        : string.Create(CultureInfo.InvariantCulture, $"0x{linuxLun & 0xffff:x4}{(linuxLun >> 16) & 0xffff:x4}00000000");
}
