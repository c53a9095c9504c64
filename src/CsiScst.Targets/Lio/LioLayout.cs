using System.Globalization;
using System.Net;
using System.Net.Sockets;
using CsiScst.Core.Errors;

namespace CsiScst.Targets.Lio;

/// <summary>
/// Where every LIO object lives in configfs (interfaces.md B). One HBA directory per backstore, as rtslib and
/// targetcli lay it out: <c>core/iblock_N/NAME</c> or <c>core/fileio_N/NAME</c> with N the first free index.
/// The key is never taken from N: it comes from NAME (<c>csi_&lt;instance&gt;_&lt;key&gt;</c>) and from the target
/// IQN, so any layout (ours, or one restored by targetcli into other HBA directories) is found by name.
/// </summary>
public sealed class LioLayout
{
    public const string IblockPlugin = "iblock";
    public const string FileioPlugin = "fileio";
    public const int Tpgt = 1;
    public const string LunName = "lun_0";

    public LioLayout(string root)
    {
        Root = root.TrimEnd('/');
        Core = Root + "/core";
        Iscsi = Root + "/iscsi";
    }

    public string Root { get; }
    public string Core { get; }
    public string Iscsi { get; }

    public string Hba(string plugin, int index) => $"{Core}/{plugin}_{index.ToString(CultureInfo.InvariantCulture)}";
    public static string Backstore(string hbaPath, string name) => hbaPath + "/" + name;

    public string Target(string iqn) => Iscsi + "/" + iqn;
    public string Tpg(string iqn) => $"{Target(iqn)}/tpgt_{Tpgt}";
    public string TpgEnable(string iqn) => Tpg(iqn) + "/enable";
    public string TpgAttrib(string iqn, string name) => Tpg(iqn) + "/attrib/" + name;
    public string LunGroup(string iqn) => Tpg(iqn) + "/lun";
    public string Lun(string iqn) => LunGroup(iqn) + "/" + LunName;
    public string NpGroup(string iqn) => Tpg(iqn) + "/np";
    public string Np(string iqn, string portalDir) => NpGroup(iqn) + "/" + portalDir;
    public string AclGroup(string iqn) => Tpg(iqn) + "/acls";
    public string Acl(string iqn, string initiator) => AclGroup(iqn) + "/" + initiator;
    public string MappedLun(string iqn, string initiator) => Acl(iqn, initiator) + "/" + LunName;

    /// <summary>"iblock_12" → ("iblock", 12); null for anything else under core/ (e.g. "alua").</summary>
    public static (string Plugin, int Index)? ParseHba(string name)
    {
        var underscore = name.LastIndexOf('_');
        if (underscore <= 0 || underscore == name.Length - 1)
        {
            return null;
        }
        var digits = name[(underscore + 1)..];
        if (!digits.All(char.IsAsciiDigit) || !int.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out var index))
        {
            return null;
        }
        return (name[..underscore], index);
    }

    /// <summary>
    /// The np directory name for a portal: "a.b.c.d:port" or "[v6]:port" (LIO parses the brackets). Accepts
    /// "ip", "ip:port", "[v6]:port" and a bare IPv6 address; the port defaults to 3260.
    /// </summary>
    public static string PortalDirectory(string portal)
    {
        var text = portal.Trim();
        string host;
        var port = 3260;
        if (text.StartsWith('['))
        {
            var close = text.IndexOf(']', StringComparison.Ordinal);
            if (close < 0)
            {
                throw StatusException.InvalidArgument($"portal '{portal}' has no closing ']'");
            }
            host = text[1..close];
            var rest = text[(close + 1)..];
            if (rest.Length > 0)
            {
                port = rest.StartsWith(':') ? ParsePort(rest[1..], portal) : throw StatusException.InvalidArgument($"portal '{portal}' must be [address]:port");
            }
        }
        else
        {
            var colons = text.Count(c => c == ':');
            if (colons == 1)
            {
                var colon = text.IndexOf(':', StringComparison.Ordinal);
                host = text[..colon];
                port = ParsePort(text[(colon + 1)..], portal);
            }
            else
            {
                host = text;
            }
        }
        if (!IPAddress.TryParse(host, out var address))
        {
            throw StatusException.InvalidArgument($"portal '{portal}' must be an IP address and port (LIO listens on addresses, not names)");
        }
        return address.AddressFamily == AddressFamily.InterNetworkV6
            ? $"[{address}]:{port.ToString(CultureInfo.InvariantCulture)}"
            : $"{address}:{port.ToString(CultureInfo.InvariantCulture)}";
    }

    /// <summary>The canonical form of an np directory name found in configfs, or null when it is not a portal name.</summary>
    public static string? TryCanonicalPortal(string directoryName)
    {
        try
        {
            return PortalDirectory(directoryName);
        }
        catch (StatusException)
        {
            return null;
        }
    }

    private static int ParsePort(string text, string portal) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var port) && port is > 0 and < 65536
            ? port
            : throw StatusException.InvalidArgument($"portal '{portal}' has an invalid port '{text}'");
}
