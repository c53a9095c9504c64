using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace CsiScst.Initiator.Iscsi;

/// <summary>
/// An iSCSI portal: address and TCP port. Accepts <c>10.0.0.5:3260</c>, <c>10.0.0.5</c> (port 3260),
/// <c>[fd00::5]:3260</c> and a bare <c>fd00::5</c>. IPv6 addresses are kept without brackets and
/// normalized, so portals from publish_context, iscsiadm and sysfs compare equal.
/// </summary>
public sealed record Portal(string Address, int Port)
{
    public const int DefaultPort = 3260;

    public bool IsIPv6 => Address.Contains(':', StringComparison.Ordinal);

    /// <summary>The form iscsiadm's <c>-p</c> takes: IPv6 in brackets.</summary>
    public string ToIscsiadm() => IsIPv6 ? $"[{Address}]:{Port}" : $"{Address}:{Port}";

    /// <summary>The form udev's path_id writes into by-path names: the address without brackets.</summary>
    public string ToByPath() => $"{Address}:{Port}";

    public override string ToString() => ToIscsiadm();

    public static Portal Parse(string text) =>
        TryParse(text, out var portal, out var error) ? portal : throw new FormatException(error);

    public static bool TryParse(string? text, [NotNullWhen(true)] out Portal? portal, [NotNullWhen(false)] out string? error)
    {
        portal = null;
        error = null;
        text = text?.Trim();
        if (string.IsNullOrEmpty(text))
        {
            error = "portal is empty";
            return false;
        }
        string host;
        var port = DefaultPort;
        if (text.StartsWith('['))
        {
            var close = text.IndexOf(']', StringComparison.Ordinal);
            if (close < 0)
            {
                error = $"portal '{text}' has '[' without ']'";
                return false;
            }
            host = text[1..close];
            var rest = text[(close + 1)..];
            if (rest.Length > 0 && (!rest.StartsWith(':') || !TryPort(rest[1..], out port)))
            {
                error = $"portal '{text}' must be [ipv6]:port";
                return false;
            }
        }
        else if (text.Count(c => c == ':') > 1)
        {
            host = text; // bare IPv6
        }
        else
        {
            var colon = text.IndexOf(':', StringComparison.Ordinal);
            host = colon < 0 ? text : text[..colon];
            if (colon >= 0 && !TryPort(text[(colon + 1)..], out port))
            {
                error = $"portal '{text}' has an invalid port";
                return false;
            }
        }
        // iscsiadm appends ",tpgt" to portals; callers strip it, we refuse it to stay unambiguous.
        if (host.Length == 0 || host.Contains(',', StringComparison.Ordinal) || host.Any(char.IsWhiteSpace))
        {
            error = $"portal '{text}' has an invalid address";
            return false;
        }
        if (IPAddress.TryParse(host, out var ip))
        {
            host = ip.AddressFamily == AddressFamily.InterNetworkV6 ? ip.ToString() : ip.ToString();
        }
        else if (host.Contains(':', StringComparison.Ordinal) || Uri.CheckHostName(host) != UriHostNameType.Dns)
        {
            error = $"portal '{text}' is neither an IP address nor a host name";
            return false;
        }
        portal = new Portal(host, port);
        return true;
    }

    /// <summary>Parses a comma-separated portal list (publish_context), without duplicates.</summary>
    public static IReadOnlyList<Portal> ParseList(string text)
    {
        var result = new List<Portal>();
        foreach (var item in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var portal = Parse(item);
            if (!result.Contains(portal))
            {
                result.Add(portal);
            }
        }
        return result;
    }

    private static bool TryPort(string text, out int port) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out port) && port is > 0 and <= 65535;
}
