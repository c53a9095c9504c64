using System.Globalization;

namespace CsiScst.Targets.Tgt;

/// <summary>
/// Parses tgtadm's human-readable reports (tgt 1.0.x): <c>--mode target --op show</c>,
/// <c>--mode account --op show</c> and <c>--mode portal --op show</c>. The format is line based and
/// indented; sections are recognised by their headings, so unknown lines are skipped, never fatal.
/// </summary>
internal static class TgtShowParser
{
    private enum Section
    {
        None,
        System,
        Nexus,
        Lun,
        Accounts,
        Acls,
    }

    public static List<TgtTarget> ParseTargets(string text)
    {
        var targets = new List<TgtTarget>();
        TgtTarget? target = null;
        TgtLun? lun = null;
        long? sid = null;
        string? initiator = null;
        List<TgtConnection>? connections = null;
        int? cid = null;
        var section = Section.None;

        void FlushConnection()
        {
            if (cid is { } c && connections is not null)
            {
                connections.Add(new TgtConnection(c, null));
            }
            cid = null;
        }

        void FlushNexus()
        {
            FlushConnection();
            if (target is not null && sid is { } s)
            {
                target.Nexuses.Add(new TgtNexus(s, initiator ?? "", connections ?? []));
            }
            sid = null;
            initiator = null;
            connections = null;
        }

        foreach (var raw in text.Split('\n'))
        {
            var line = raw.TrimEnd('\r');
            var trimmed = line.Trim();
            if (trimmed.Length == 0)
            {
                continue;
            }
            var indent = line.Length - line.TrimStart().Length;
            if (indent == 0 && trimmed.StartsWith("Target ", StringComparison.Ordinal))
            {
                FlushNexus();
                var colon = trimmed.IndexOf(':');
                if (colon > 7 && int.TryParse(trimmed.AsSpan(7, colon - 7), NumberStyles.None, CultureInfo.InvariantCulture, out var tid))
                {
                    target = new TgtTarget { Tid = tid, Name = trimmed[(colon + 1)..].Trim() };
                    targets.Add(target);
                }
                else
                {
                    target = null;
                }
                section = Section.None;
                lun = null;
                continue;
            }
            if (target is null)
            {
                continue;
            }
            switch (trimmed)
            {
                case "System information:":
                    FlushNexus();
                    section = Section.System;
                    continue;
                case "I_T nexus information:":
                    FlushNexus();
                    section = Section.Nexus;
                    continue;
                case "LUN information:":
                    FlushNexus();
                    section = Section.Lun;
                    continue;
                case "Account information:":
                    FlushNexus();
                    section = Section.Accounts;
                    continue;
                case "ACL information:":
                    FlushNexus();
                    section = Section.Acls;
                    continue;
            }
            var (key, value) = SplitField(trimmed);
            switch (section)
            {
                case Section.System:
                    if (key == "State")
                    {
                        target.State = value;
                    }
                    break;
                case Section.Nexus:
                    if (key == "I_T nexus")
                    {
                        FlushNexus();
                        sid = ParseLong(value);
                        connections = [];
                    }
                    else if (key == "Initiator")
                    {
                        // "iqn.… alias: none": the name has no spaces.
                        var space = value.IndexOf(' ');
                        initiator = space < 0 ? value : value[..space];
                    }
                    else if (key == "Connection")
                    {
                        FlushConnection();
                        cid = (int)ParseLong(value);
                    }
                    else if (key == "IP Address" && cid is { } c && connections is not null)
                    {
                        connections.Add(new TgtConnection(c, value));
                        cid = null;
                    }
                    break;
                case Section.Lun:
                    if (key == "LUN")
                    {
                        lun = new TgtLun { Number = (int)ParseLong(value) };
                        target.Luns.Add(lun);
                    }
                    else if (lun is not null)
                    {
                        ApplyLunField(lun, key, value);
                    }
                    break;
                case Section.Accounts:
                    const string outgoing = " (outgoing)";
                    target.Accounts.Add(trimmed.EndsWith(outgoing, StringComparison.Ordinal)
                        ? new TgtBoundAccount(trimmed[..^outgoing.Length], true)
                        : new TgtBoundAccount(trimmed, false));
                    break;
                case Section.Acls:
                    target.Acls.Add(trimmed);
                    break;
            }
        }
        FlushNexus();
        return targets;
    }

    /// <summary>
    /// The sessions of one target from <c>--mode conn --op show --tid N</c>: "Session: S", then per connection
    /// "Connection: C", "Initiator: NAME", "IP Address: A" (usr/iscsi/target.c). S is the same tsih that the
    /// target show calls "I_T nexus" and that <c>--mode conn --op delete --sid</c> takes.
    /// </summary>
    public static List<TgtNexus> ParseConnections(string text)
    {
        var order = new List<long>();
        var initiators = new Dictionary<long, string>();
        var connections = new Dictionary<long, List<TgtConnection>>();
        long? sid = null;
        int? cid = null;
        string? address = null;

        void FlushConnection()
        {
            if (sid is { } s && cid is { } c)
            {
                connections[s].Add(new TgtConnection(c, address));
            }
            cid = null;
            address = null;
        }

        foreach (var raw in text.Split('\n'))
        {
            var (key, value) = SplitField(raw.Trim());
            switch (key)
            {
                case "Session":
                    FlushConnection();
                    sid = ParseLong(value);
                    if (!connections.ContainsKey(sid.Value))
                    {
                        order.Add(sid.Value);
                        connections[sid.Value] = [];
                        initiators[sid.Value] = "";
                    }
                    break;
                case "Connection" when sid is not null:
                    FlushConnection();
                    cid = (int)ParseLong(value);
                    break;
                case "Initiator" when sid is not null:
                    // The target show appends " alias: ..." to the name; this report prints the name alone.
                    initiators[sid.Value] = value.Split(' ', 2)[0];
                    break;
                case "IP Address" when sid is not null:
                    address = value;
                    break;
            }
        }
        FlushConnection();
        return order.Select(s => new TgtNexus(s, initiators[s], connections[s])).ToList();
    }

    /// <summary>"Account list:" followed by one user per line.</summary>
    public static List<string> ParseAccounts(string text) =>
        text.Split('\n')
            .Select(l => l.Trim())
            .Where(l => l.Length > 0 && l != "Account list:")
            .ToList();

    /// <summary>"Portal: 127.0.0.1:3260,1" lines → "127.0.0.1:3260".</summary>
    public static List<string> ParsePortals(string text)
    {
        var portals = new List<string>();
        foreach (var line in text.Split('\n'))
        {
            var (key, value) = SplitField(line.Trim());
            if (key == "Portal" && value.Length > 0)
            {
                var comma = value.LastIndexOf(',');
                portals.Add(comma > 0 ? value[..comma] : value);
            }
        }
        return portals;
    }

    /// <summary>System state and the iscsi LLD state from <c>--mode system --op show</c>.</summary>
    public static (string SystemState, string? IscsiState) ParseSystem(string text)
    {
        string systemState = "";
        string? iscsi = null;
        var section = "";
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.TrimEnd('\r');
            var trimmed = line.Trim();
            if (trimmed.Length == 0)
            {
                continue;
            }
            if (!char.IsWhiteSpace(line[0]))
            {
                section = trimmed;
                continue;
            }
            var (key, value) = SplitField(trimmed);
            if (section == "System:" && key == "State")
            {
                systemState = value;
            }
            else if (section == "LLDs:" && key == "iscsi")
            {
                iscsi = value;
            }
        }
        return (systemState, iscsi);
    }

    private static void ApplyLunField(TgtLun lun, string key, string value)
    {
        switch (key)
        {
            case "Type":
                lun.Type = value;
                break;
            case "SCSI SN":
                lun.SerialNumber = value;
                break;
            case "Size":
                // "67 MB, Block size: 512"
                var comma = value.IndexOf(',');
                var size = comma < 0 ? value : value[..comma];
                lun.SizeMegabytes = ParseLong(size.Replace("MB", "", StringComparison.Ordinal).Trim());
                if (comma >= 0)
                {
                    var (innerKey, innerValue) = SplitField(value[(comma + 1)..].Trim());
                    if (innerKey == "Block size")
                    {
                        lun.BlockSize = (int)ParseLong(innerValue);
                    }
                }
                break;
            case "Online":
                lun.Online = value == "Yes";
                break;
            case "Readonly":
                lun.ReadOnly = value == "Yes";
                break;
            case "Thin-provisioning":
                lun.ThinProvisioning = value == "Yes";
                break;
            case "Backing store type":
                lun.BackingStoreType = value;
                break;
            case "Backing store path":
                lun.BackingStorePath = value == "None" ? null : value;
                break;
            case "Backing store flags":
                lun.BackingStoreFlags = value;
                break;
        }
    }

    private static (string Key, string Value) SplitField(string trimmed)
    {
        var colon = trimmed.IndexOf(": ", StringComparison.Ordinal);
        if (colon < 0)
        {
            return trimmed.EndsWith(':') ? (trimmed[..^1], "") : ("", trimmed);
        }
        return (trimmed[..colon], trimmed[(colon + 2)..].Trim());
    }

    private static long ParseLong(string text) =>
        long.TryParse(text.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var value) ? value : 0;
}
