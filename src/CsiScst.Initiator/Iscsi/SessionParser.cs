using System.Globalization;
using System.Text.RegularExpressions;

namespace CsiScst.Initiator.Iscsi;

/// <summary>
/// Parses iscsiadm's session listings (open-iscsi <c>usr/session_info.c</c>): the flat
/// <c>-m session</c> form and the tree of <c>-m session -P 1|2|3</c>.
/// </summary>
public static partial class SessionParser
{
    /// <summary><c>tcp: [1] 10.0.0.5:3260,1 iqn.… (non-flash)</c>; IPv6 as <c>[addr]:port</c>.</summary>
    public static IReadOnlyList<IscsiSession> ParseFlat(string output)
    {
        var sessions = new List<IscsiSession>();
        foreach (var raw in output.Split('\n'))
        {
            var match = FlatLine().Match(raw.Trim());
            if (!match.Success)
            {
                continue;
            }
            var portal = ParsePortalWithTag(match.Groups["portal"].Value);
            sessions.Add(new IscsiSession
            {
                Sid = int.Parse(match.Groups["sid"].Value, CultureInfo.InvariantCulture),
                Target = match.Groups["target"].Value,
                PersistentPortal = portal,
                CurrentPortal = portal,
            });
        }
        return sessions;
    }

    /// <summary>
    /// The tree form. Sessions are grouped under "Target:" and "Current Portal:" lines that are printed
    /// only when they change, so each session inherits them from the lines above it; a session's own
    /// block starts at its "Interface:" banner.
    /// </summary>
    public static IReadOnlyList<IscsiSession> ParseTree(string output)
    {
        var sessions = new List<IscsiSession>();
        string? target = null;
        Portal? current = null, persistent = null;
        Builder? session = null;
        ScsiLunBuilder? lun = null;

        void Flush()
        {
            if (session is not null)
            {
                lun?.AddTo(session);
                lun = null;
                if (session.Build() is { } built)
                {
                    sessions.Add(built);
                }
            }
            session = null;
        }

        foreach (var raw in output.Split('\n'))
        {
            var line = raw.Trim();
            if (line.StartsWith("Target:", StringComparison.Ordinal))
            {
                Flush();
                target = StripFlash(line["Target:".Length..].Trim());
                current = persistent = null;
            }
            else if (line.StartsWith("Current Portal:", StringComparison.Ordinal))
            {
                Flush();
                current = ParsePortalWithTag(line["Current Portal:".Length..].Trim());
            }
            else if (line.StartsWith("Persistent Portal:", StringComparison.Ordinal))
            {
                persistent = ParsePortalWithTag(line["Persistent Portal:".Length..].Trim());
            }
            else if (line == "Interface:")
            {
                Flush();
                if (target is not null)
                {
                    session = new Builder(target, current, persistent);
                }
            }
            else if (session is null)
            {
                continue;
            }
            else if (Value(line, "Iface Name:") is { } iface)
            {
                session.Iface = iface;
            }
            else if (Value(line, "Iface Initiatorname:") is { } initiator)
            {
                session.InitiatorName = initiator == "<empty>" ? null : initiator;
            }
            else if (Value(line, "SID:") is { } sid && int.TryParse(sid, NumberStyles.None, CultureInfo.InvariantCulture, out var id))
            {
                session.Sid = id;
            }
            else if (Value(line, "iSCSI Connection State:") is { } connection)
            {
                session.ConnectionState = connection;
            }
            else if (Value(line, "iSCSI Session State:") is { } state)
            {
                session.SessionState = state;
            }
            else if (HostLine().Match(line) is { Success: true } host)
            {
                session.HostNumber = int.Parse(host.Groups["host"].Value, CultureInfo.InvariantCulture);
            }
            else if (LunLine().Match(line) is { Success: true } lunMatch)
            {
                lun?.AddTo(session);
                lun = new ScsiLunBuilder(
                    int.Parse(lunMatch.Groups["host"].Value, CultureInfo.InvariantCulture),
                    int.Parse(lunMatch.Groups["channel"].Value, CultureInfo.InvariantCulture),
                    int.Parse(lunMatch.Groups["id"].Value, CultureInfo.InvariantCulture),
                    int.Parse(lunMatch.Groups["lun"].Value, CultureInfo.InvariantCulture));
            }
            else if (DiskLine().Match(line) is { Success: true } disk && lun is not null)
            {
                lun.Disk = disk.Groups["disk"].Value;
                lun.State = disk.Groups["state"].Success ? disk.Groups["state"].Value.Trim() : null;
            }
        }
        Flush();
        return sessions;
    }

    /// <summary><c>10.0.0.5:3260,1</c> or <c>[fd00::5]:3260,1</c> (the ",tpgt" is dropped).</summary>
    internal static Portal? ParsePortalWithTag(string text)
    {
        var comma = text.LastIndexOf(',');
        if (comma > 0 && comma > text.LastIndexOf(']'))
        {
            text = text[..comma];
        }
        return Portal.TryParse(text, out var portal, out _) ? portal : null;
    }

    private static string StripFlash(string text)
    {
        var paren = text.IndexOf(" (", StringComparison.Ordinal);
        return paren > 0 ? text[..paren] : text;
    }

    private static string? Value(string line, string prefix) =>
        line.StartsWith(prefix, StringComparison.Ordinal) ? line[prefix.Length..].Trim() : null;

    [GeneratedRegex(@"^(?<transport>\S+): \[(?<sid>\d+)\] (?<portal>\S+) (?<target>[^\s]+)")]
    private static partial Regex FlatLine();

    [GeneratedRegex(@"^Host Number: (?<host>\d+)")]
    private static partial Regex HostLine();

    [GeneratedRegex(@"^scsi(?<host>\d+) Channel (?<channel>\d+) Id (?<id>\d+) Lun: (?<lun>\d+)")]
    private static partial Regex LunLine();

    [GeneratedRegex(@"^Attached scsi disk (?<disk>\S+)(\s+State: (?<state>.+))?$")]
    private static partial Regex DiskLine();

    private sealed class Builder(string target, Portal? current, Portal? persistent)
    {
        public int? Sid;
        public string Iface = IscsiadmConstants.DefaultIface;
        public string? InitiatorName;
        public string? ConnectionState;
        public string? SessionState;
        public int? HostNumber;
        public readonly List<ScsiLun> Luns = [];

        public IscsiSession? Build() => Sid is not { } sid
            ? null
            : new IscsiSession
            {
                Sid = sid,
                Target = target,
                CurrentPortal = current,
                PersistentPortal = persistent ?? current,
                Iface = Iface,
                InitiatorName = InitiatorName,
                ConnectionState = ConnectionState,
                SessionState = SessionState,
                HostNumber = HostNumber,
                Luns = Luns.ToArray(),
            };
    }

    private sealed class ScsiLunBuilder(int host, int channel, int id, int lun)
    {
        public string? Disk;
        public string? State;

        public void AddTo(Builder session) => session.Luns.Add(new ScsiLun(host, channel, id, lun, Disk, State));
    }
}
