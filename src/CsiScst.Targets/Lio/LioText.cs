using System.Globalization;
using System.Text.RegularExpressions;

namespace CsiScst.Targets.Lio;

/// <summary>
/// Parsers for what LIO's show handlers print (drivers/target/target_core_configfs.c, target_core_file.c,
/// target_core_iblock.c, iscsi/iscsi_target_configfs.c). Pure functions.
/// </summary>
public static partial class LioText
{
    private const string SerialPrefix = "T10 VPD Unit Serial Number:";

    /// <summary>wwn/vpd_unit_serial reads "T10 VPD Unit Serial Number: X\n" (empty X when never set).</summary>
    public static string? ParseUnitSerial(string text)
    {
        var line = text.Trim();
        if (line.StartsWith(SerialPrefix, StringComparison.Ordinal))
        {
            line = line[SerialPrefix.Length..].Trim();
        }
        return line.Length == 0 ? null : line;
    }

    /// <summary>The fileio backstore's <c>info</c>: "… File: PATH  Size: N  Mode: O_DSYNC|Buffered-WCE …".</summary>
    public static (long? Size, bool? Buffered) ParseFileioInfo(string text)
    {
        var size = SizeRegex().Match(text);
        var mode = ModeRegex().Match(text);
        return (size.Success ? long.Parse(size.Groups[1].Value, CultureInfo.InvariantCulture) : null,
            mode.Success ? mode.Groups[1].Value.StartsWith("Buffered", StringComparison.Ordinal) : null);
    }

    /// <summary>The iblock backstore's <c>info</c>: "… Major: M Minor: m  CLAIMED: IBLOCK" once enabled.</summary>
    public static (int Major, int Minor)? ParseIblockDevice(string text)
    {
        var match = MajorMinorRegex().Match(text);
        if (!match.Success)
        {
            return null;
        }
        var major = int.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture);
        var minor = int.Parse(match.Groups[2].Value, CultureInfo.InvariantCulture);
        return major == 0 && minor == 0 ? null : (major, minor);
    }

    /// <summary>
    /// An ACL's <c>info</c> (lio_target_nacl_info_show): "No active iSCSI Session for Initiator Endpoint: …" or
    /// the session block ("InitiatorName:", "SessionType: Normal", "Session State: …", per connection
    /// "CID: n  Connection State: …" then "   Address IP TCP  StatSN: …"). Null when there is no normal session.
    /// </summary>
    public static AclSession? ParseAclInfo(string text)
    {
        if (text.StartsWith("No active iSCSI Session", StringComparison.Ordinal) || !text.Contains("InitiatorName:", StringComparison.Ordinal))
        {
            return null;
        }
        string? initiator = null;
        string? state = null;
        string? address = null;
        var normal = true;
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.Trim();
            if (line.StartsWith("InitiatorName:", StringComparison.Ordinal))
            {
                initiator = line["InitiatorName:".Length..].Trim();
            }
            else if (line.StartsWith("Session State:", StringComparison.Ordinal))
            {
                state = line["Session State:".Length..].Trim();
            }
            else if (line.StartsWith("LIO Session ID:", StringComparison.Ordinal))
            {
                normal = !line.Contains("SessionType: Discovery", StringComparison.Ordinal);
            }
            else if (address is null && line.StartsWith("Address ", StringComparison.Ordinal))
            {
                var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                address = parts.Length > 1 ? parts[1] : null;
            }
        }
        return normal && !string.IsNullOrEmpty(initiator) ? new AclSession(initiator, state ?? "", address) : null;
    }

    /// <summary>Attribute values end with a newline; numbers are decimal.</summary>
    public static long? ParseLong(string text) =>
        long.TryParse(text.Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value) ? value : null;

    [GeneratedRegex(@"\bSize:\s+(\d+)")]
    private static partial Regex SizeRegex();

    [GeneratedRegex(@"Mode:\s+(\S+)")]
    private static partial Regex ModeRegex();

    [GeneratedRegex(@"Major:\s+(\d+)\s+Minor:\s+(\d+)")]
    private static partial Regex MajorMinorRegex();
}

/// <summary>A live session as an ACL's info shows it.</summary>
public sealed record AclSession(string InitiatorName, string State, string? Address);
