using System.Collections.Immutable;
using System.Globalization;
using System.Net;
using CsiScst.ScstModel.Vfs;

namespace CsiScst.ScstModel.Scst.Targets;

/// <summary>
/// The iscsi-scst driver together with its user-space half, iscsi-scstd (interfaces.md A.1, A.5).
/// The kernel hands every iSCSI command to the daemon; without it they fail with EPERM. The daemon
/// creates the driver-level attributes and each target's iSCSI attributes, and answers their reads.
/// When it stops, the kernel's release of its control device deletes every iSCSI target
/// (iscsi-scst kernel/config.c release() → target_del_all()) and the daemon's driver attributes.
/// </summary>
internal sealed class IscsiDaemon(ScstSystem model)
{
    public const int MaxTargetNameLength = 255;
    public const int MinSecretLength = 12;

    private const string Kernel = "iscsi-scst";
    private const string Daemon = "iscsi-scstd";

    /// <summary>Files of targets/iscsi/ that a target name would collide with.</summary>
    private static readonly ImmutableArray<string> DriverDirFiles = ["mgmt", "enabled", "open_state", "version", "trace_level", "iSNSServer"];

    private ScstState S => model.State;

    private KernelLog Log => model.Log;

    public bool Running => S.Daemon is not null;

    public static string MgmtHelp =>
        "Usage: echo \"add_target target_name [parameters]\" >mgmt\n" +
        "       echo \"del_target target_name\" >mgmt\n" +
        "       echo \"add_attribute <attribute> <value>\" >mgmt\n" +
        "       echo \"del_attribute <attribute> <value>\" >mgmt\n" +
        "       echo \"add_target_attribute target_name <attribute> <value>\" >mgmt\n" +
        "       echo \"del_target_attribute target_name <attribute> <value>\" >mgmt\n" +
        "\n" +
        "where parameters are one or more param_name=value pairs separated by ';'\n\n" +
        "The following parameters available: " + string.Join(", ", IscsiParams.All.Select(d => d.Name)) + "\n" +
        "The following target driver attributes available: IncomingUser, OutgoingUser\n" +
        "The following target attributes available: IncomingUser, OutgoingUser, allowed_portal\n";

    public void Start()
    {
        if (Running)
        {
            return;
        }

        S.Daemon = new IscsiDaemonConfig();
        Log.Info(Kernel, "iscsi-scstd connected (open_state open)");
    }

    public void Stop()
    {
        if (!Running)
        {
            return;
        }

        foreach (ScstTarget t in S.Iscsi.Targets.Values.ToList())
        {
            DeleteTarget(t, "iscsi-scstd stopped");
        }

        S.Daemon = null;
        Log.Info(Kernel, "Releasing allocated resources: iscsi-scstd disconnected (open_state closed)");
    }

    private int NotConnected()
    {
        Log.Error(Kernel, "User space process is not connected. Is iscsi-scstd running?");
        return Errno.EPERM;
    }

    /// <summary>The queued work of one write to targets/iscsi/mgmt.</summary>
    public int ProcessMgmt(string text)
    {
        var lx = new ScstLexer(text);
        string verb = lx.NextLexem();
        if (verb.Equals("add_target", StringComparison.OrdinalIgnoreCase))
        {
            string name = lx.NextLexem();
            if (name.Length == 0)
            {
                Log.Error("scst", "Target name required");
                return Errno.EINVAL;
            }

            return AddTarget(name, lx.Rest);
        }

        if (verb.Equals("del_target", StringComparison.OrdinalIgnoreCase))
        {
            string name = lx.NextLexem();
            if (name.Length == 0)
            {
                Log.Error("scst", "Target name required");
                return Errno.EINVAL;
            }

            string extra = lx.NextLexem();
            if (extra.Length != 0)
            {
                Log.Error("scst", $"Syntax error on \"{extra}\"");
                return Errno.EINVAL;
            }

            return DelTarget(name);
        }

        // Every other command goes to the daemon as a whole (iscsi_sysfs_mgmt_cmd).
        return Running ? MgmtCmd(text) : NotConnected();
    }

    private int AddTarget(string name, string parameters)
    {
        if (!Running)
        {
            return NotConnected();
        }

        if (name.Length > MaxTargetNameLength || name.Contains('/', StringComparison.Ordinal))
        {
            Log.Error(Daemon, $"Invalid target name {name}");
            return Errno.EINVAL;
        }

        // interfaces.md F: a duplicate target gives EEXIST and nothing in the kernel log.
        if (S.Iscsi.Targets.ContainsKey(name))
        {
            return Errno.EEXIST;
        }

        if (DriverDirFiles.Contains(name) || S.Daemon!.IncomingUsers.Concat(S.Daemon.OutgoingUsers).Any(a => a.SysfsName == name))
        {
            Log.Error("scst", $"Can't add tgt {name} to sysfs");
            return Errno.EEXIST;
        }

        var cfg = new IscsiTargetConfig();
        int errno = ParseTargetParams(name, parameters, cfg);
        if (errno != 0)
        {
            return errno;
        }

        uint tid = S.LastTid;
        do
        {
            tid = tid == uint.MaxValue ? 1 : tid + 1;
        }
        while (S.Iscsi.Targets.Values.Any(t => t.Tid == tid));

        S.LastTid = tid;
        S.Iscsi.Targets.Add(name, new ScstTarget(name, S.Iscsi, tid, cfg));
        Log.Info(Kernel, $"Target {name} (tid {tid}) added");
        return 0;
    }

    /// <summary>
    /// "add_target NAME QueuedCommands=8;HeaderDigest=CRC32C" (A.5): iscsi-scstd splits on ';' and newlines
    /// and reads each item as "Key value" or "Key=value". UNCONFIRMED beyond the iSCSI keys and the two
    /// user keys: any other key is refused with EINVAL.
    /// </summary>
    private int ParseTargetParams(string target, string parameters, IscsiTargetConfig cfg)
    {
        foreach (string item in parameters.Split([';', '\n']))
        {
            var lx = new ScstLexer(item);
            string key = lx.NextLexem();
            if (key.Length == 0)
            {
                continue;
            }

            if (IscsiParams.Find(key) is { } def)
            {
                if (IscsiParams.Parse(def, lx.NextLexem(), out uint v) != 0)
                {
                    Log.Error(Daemon, $"Wrong value for parameter {def.Name} of target {target}");
                    return Errno.EINVAL;
                }

                cfg.Params[def.Name] = v;
            }
            else if (UserKey(key) is { } outgoing)
            {
                int errno = AddAccount(outgoing ? cfg.OutgoingUsers : cfg.IncomingUsers, outgoing, outgoing ? "OutgoingUser" : "IncomingUser", lx.NextLexem(), lx.NextLexem(), target);
                if (errno != 0)
                {
                    return errno;
                }
            }
            else
            {
                Log.Error(Daemon, $"Unknown param {key} of target {target}");
                return Errno.EINVAL;
            }
        }

        return 0;
    }

    private int DelTarget(string name)
    {
        // The kernel looks the name up before it asks the daemon: an unknown name is ENOENT either way.
        if (!S.Iscsi.Targets.TryGetValue(name, out ScstTarget? target))
        {
            Log.Error(Kernel, $"Target {name} not found");
            return Errno.ENOENT;
        }

        if (!Running)
        {
            return NotConnected();
        }

        DeleteTarget(target, "target deleted");
        return 0;
    }

    /// <summary>A.5: deleting a target tears down its sessions and waits until they are gone.</summary>
    public void DeleteTarget(ScstTarget target, string why)
    {
        model.Sessions.CloseAll(target, why);
        foreach (ScstAcg acg in target.AllAcgs)
        {
            foreach (ScstLun lun in acg.Luns.Values.ToList())
            {
                LunManager.RemoveLun(lun);
            }

            acg.Alive = false;
        }

        target.Alive = false;
        S.Iscsi.Targets.Remove(target.Name);
        Log.Info(Kernel, $"Target {target.Name} (tid {target.Tid}) deleted");
    }

    /// <summary>The target's "enabled" as the daemon carries it out (after SCST's rel_tgt_id checks).</summary>
    public int Enable(ScstTarget target, bool enable)
    {
        if (!Running)
        {
            return NotConnected();
        }

        target.Enabled = enable;
        return 0;
    }

    /// <summary>iscsi-scstd handle_e_mgmt_cmd: the attribute commands.</summary>
    private int MgmtCmd(string text)
    {
        var lx = new ScstLexer(text);
        string verb = lx.NextLexem();
        bool add = verb.Equals("add_attribute", StringComparison.OrdinalIgnoreCase) || verb.Equals("add_target_attribute", StringComparison.OrdinalIgnoreCase);
        bool del = verb.Equals("del_attribute", StringComparison.OrdinalIgnoreCase) || verb.Equals("del_target_attribute", StringComparison.OrdinalIgnoreCase);
        if (!add && !del)
        {
            Log.Error(Daemon, $"Syntax error at {verb}");
            return Errno.EINVAL;
        }

        ScstTarget? target = null;
        if (verb.Contains("target", StringComparison.OrdinalIgnoreCase))
        {
            string name = lx.NextLexem();
            if (!S.Iscsi.Targets.TryGetValue(name, out target))
            {
                Log.Error(Daemon, $"Target {name} not found");
                return Errno.ENOENT;
            }
        }

        string attr = lx.NextLexem();
        if (UserKey(attr) is { } outgoing)
        {
            List<IscsiAccount> list = Accounts(target, outgoing);
            string user = lx.NextLexem();
            return add ? AddAccount(list, outgoing, attr, user, lx.NextLexem(), target?.Name ?? "discovery") : DeleteAccount(list, user);
        }

        if (IsNumWild("allowed_portal", attr))
        {
            string key = lx.NextLexem();
            if (target is null)
            {
                Log.Error(Daemon, $"Target expected for attr {attr}");
                return Errno.EINVAL;
            }

            return add ? AddPortal(target.Iscsi!, key, lx.NextLexem()) : DeletePortal(target.Iscsi!, key);
        }

        Log.Error(Daemon, $"Syntax error at {attr}");
        return Errno.EINVAL;
    }

    private List<IscsiAccount> Accounts(ScstTarget? target, bool outgoing)
    {
        if (target is null)
        {
            return outgoing ? S.Daemon!.OutgoingUsers : S.Daemon!.IncomingUsers;
        }

        return outgoing ? target.Iscsi!.OutgoingUsers : target.Iscsi!.IncomingUsers;
    }

    /// <summary>
    /// __config_account_add (A.5): a secret under 12 characters is EINVAL; the file is named after the
    /// attribute as written, then with 1, 2, ... appended; only one outgoing account is kept.
    /// </summary>
    private int AddAccount(List<IscsiAccount> list, bool outgoing, string sysfsTemplate, string user, string secret, string owner)
    {
        if (user.Length == 0 || secret.Length == 0)
        {
            Log.Error(Daemon, "Name or password is NULL");
            return Errno.EINVAL;
        }

        if (secret.Length < MinSecretLength)
        {
            Log.Error(Daemon, $"Secret for user {user} is too short. At least {MinSecretLength} bytes are required");
            return Errno.EINVAL;
        }

        if (outgoing && list.Count > 0)
        {
            Log.Warning(Daemon, $"Only one outgoing {(owner == "discovery" ? "discovery" : "target")} account is supported. Replacing the old one.");
            list.Clear();
        }

        if (list.Any(a => a.User == user))
        {
            Log.Error(Daemon, $"Attribute {user} already exists");
            return Errno.EINVAL;
        }

        list.Add(new IscsiAccount(FreeSysfsName(list.Select(a => a.SysfsName), sysfsTemplate), user, secret));
        return 0;
    }

    private int DeleteAccount(List<IscsiAccount> list, string user)
    {
        int index = list.FindIndex(a => a.User == user);
        if (index < 0)
        {
            Log.Error(Daemon, $"User {user} not found");
            return Errno.ENOENT;
        }

        list.RemoveAt(index);
        return 0;
    }

    private int AddPortal(IscsiTargetConfig cfg, string pattern, string extra)
    {
        if (pattern.Length == 0)
        {
            Log.Error(Daemon, "Value expected for attr allowed_portal");
            return Errno.EINVAL;
        }

        if (extra.Length != 0)
        {
            Log.Error(Daemon, $"Only one value expected for attr {pattern}");
            return Errno.EINVAL;
        }

        if (cfg.AllowedPortals.Any(p => p.Pattern == pattern))
        {
            Log.Error(Daemon, $"Attribute {pattern} already exists");
            return Errno.EINVAL;
        }

        cfg.AllowedPortals.Add(new IscsiPortal(FreeSysfsName(cfg.AllowedPortals.Select(p => p.SysfsName), "allowed_portal"), pattern));
        return 0;
    }

    private int DeletePortal(IscsiTargetConfig cfg, string pattern)
    {
        int index = cfg.AllowedPortals.FindIndex(p => p.Pattern == pattern);
        if (index < 0)
        {
            Log.Error(Daemon, $"Unknown portal {pattern}");
            return Errno.EINVAL;
        }

        cfg.AllowedPortals.RemoveAt(index);
        return 0;
    }

    /// <summary>iscsi_attr_create: the template itself when free, else template1, template2, ...</summary>
    private static string FreeSysfsName(IEnumerable<string> taken, string template)
    {
        var used = taken.ToHashSet(StringComparer.Ordinal);
        if (!used.Contains(template))
        {
            return template;
        }

        for (int n = 1; ; n++)
        {
            string candidate = template + n.ToString(CultureInfo.InvariantCulture);
            if (!used.Contains(candidate))
            {
                return candidate;
            }
        }
    }

    /// <summary>params_index_by_name_numwild on the user keys: null, false (IncomingUser) or true (OutgoingUser).</summary>
    public static bool? UserKey(string name) =>
        IsNumWild("IncomingUser", name) ? false : IsNumWild("OutgoingUser", name) ? true : null;

    /// <summary>The key, case-insensitively, followed by nothing but digits.</summary>
    private static bool IsNumWild(string key, string name) =>
        name.StartsWith(key, StringComparison.OrdinalIgnoreCase) && name.AsSpan(key.Length).IndexOfAnyExcept("0123456789") < 0;

    // ---- attribute reads and writes answered by the daemon (E_GET_ATTR_VALUE / E_SET_ATTR_VALUE) ----
    // The kernel prints the daemon's answer with "%s\n", so a value that ends in "[key]\n" gets one more newline.

    private ShowResult Answer(string value) => Running ? ShowResult.Ok(value + "\n") : ShowResult.Fail(NotConnected());

    private static string KeyMark(string value, bool key, bool newLine) => key ? value + (newLine ? "\n" : "") + "[key]\n" : value;

    public ShowResult ShowParam(ScstTarget t, IscsiParamDef def)
    {
        uint v = t.Iscsi!.Params[def.Name];
        return Answer(KeyMark(IscsiParams.Format(def, v), v != def.Default, newLine: true));
    }

    public StoreResult StoreParam(ScstTarget t, IscsiParamDef def, string text)
    {
        if (!Running)
        {
            return StoreResult.Fail(NotConnected());
        }

        var lx = new ScstLexer(text);
        string value = lx.NextLexem();
        string extra = lx.NextLexem();
        if (extra.Length != 0)
        {
            Log.Error(Daemon, $"Unexpected parameter value {extra}");
            return StoreResult.Fail(Errno.EINVAL);
        }

        if (IscsiParams.Parse(def, value, out uint v) != 0)
        {
            Log.Error(Daemon, $"Wrong value {value} for parameter {def.Name}");
            return StoreResult.Fail(Errno.EINVAL);
        }

        t.Iscsi!.Params[def.Name] = v;
        return StoreResult.Ok;
    }

    public ShowResult ShowAccount(IscsiAccount a) => Answer($"{a.User} {a.Secret}\n[key]\n");

    /// <summary>Writing "user secret" into an account's file replaces that entry (A.5; no length check on this path).</summary>
    public StoreResult StoreAccount(List<IscsiAccount> list, IscsiAccount account, string text)
    {
        if (!Running)
        {
            return StoreResult.Fail(NotConnected());
        }

        var lx = new ScstLexer(text);
        string user = lx.NextLexem();
        string secret = lx.NextLexem();
        if (list.Any(a => a != account && a.User == user))
        {
            Log.Error(Daemon, $"Attr {user} (sysfs_name {account.SysfsName}) already exists");
            return StoreResult.Fail(Errno.EEXIST);
        }

        account.User = user;
        account.Secret = secret;
        return StoreResult.Ok;
    }

    public ShowResult ShowPortal(IscsiPortal p) => Answer($"{p.Pattern}\n[key]\n");

    public StoreResult StorePortal(IscsiTargetConfig cfg, IscsiPortal portal, string text)
    {
        if (!Running)
        {
            return StoreResult.Fail(NotConnected());
        }

        string pattern = new ScstLexer(text).NextLexem();
        if (cfg.AllowedPortals.Any(p => p != portal && p.Pattern == pattern))
        {
            return StoreResult.Fail(Errno.EEXIST);
        }

        portal.Pattern = pattern;
        return StoreResult.Ok;
    }

    public ShowResult ShowDriverEnabled() => Answer($"{(S.Daemon?.Enabled == true ? 1 : 0)}\n");

    public StoreResult StoreDriverEnabled(string text) =>
        StoreSwitch(text, v => S.Daemon!.Enabled = v);

    public ShowResult ShowPerPortalAcl(ScstTarget t) =>
        Answer(KeyMark(t.Iscsi!.PerPortalAcl ? "1\n" : "0\n", t.Iscsi.PerPortalAcl, newLine: false));

    public StoreResult StorePerPortalAcl(ScstTarget t, string text) =>
        StoreSwitch(text, v => t.Iscsi!.PerPortalAcl = v);

    /// <summary>"0" or "1" exactly (after the lexer); anything else is EINVAL.</summary>
    private StoreResult StoreSwitch(string text, Action<bool> set)
    {
        if (!Running)
        {
            return StoreResult.Fail(NotConnected());
        }

        string v = new ScstLexer(text).NextLexem();
        if (v is not ("0" or "1"))
        {
            Log.Error(Daemon, $"Unknown value {v}");
            return StoreResult.Fail(Errno.EINVAL);
        }

        set(v == "1");
        return StoreResult.Ok;
    }

    public ShowResult ShowRedirect(ScstTarget t)
    {
        IscsiTargetConfig c = t.Iscsi!;
        if (c.RedirectAddress.Length == 0)
        {
            return Answer("");
        }

        string port = c.RedirectPort == 3260 ? "" : $":{c.RedirectPort}";
        return Answer($"{c.RedirectAddress}{port} {(c.RedirectPermanent ? "perm" : "temp")}\n[key]\n");
    }

    /// <summary>"&lt;ip&gt;[:port] temp|perm"; an empty value removes the redirect (A.5, usr/event.c handle_target_redirect).</summary>
    public StoreResult StoreRedirect(ScstTarget t, string text)
    {
        if (!Running)
        {
            return StoreResult.Fail(NotConnected());
        }

        IscsiTargetConfig c = t.Iscsi!;
        var lx = new ScstLexer(text);
        string address = lx.NextLexem();
        if (address.Length == 0)
        {
            c.RedirectAddress = "";
            return StoreResult.Ok;
        }

        string type = lx.NextLexem();
        if (type.Length == 0 || lx.NextLexem().Length != 0)
        {
            Log.Error(Daemon, type.Length == 0 ? "Redirection type required" : "Too many arguments for redirection");
            return StoreResult.Fail(Errno.EINVAL);
        }

        int port = 3260;
        int bracket = address.LastIndexOf(']');
        int colon = bracket >= 0 ? address.IndexOf(':', bracket) : (address.Count(ch => ch == ':') == 1 ? address.IndexOf(':', StringComparison.Ordinal) : -1);
        if (colon >= 0)
        {
            if (!int.TryParse(address.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out port) || port <= 0)
            {
                Log.Error(Daemon, $"Invalid port {address[(colon + 1)..]}");
                return StoreResult.Fail(Errno.EINVAL);
            }

            address = address[..colon];
        }

        if (!IPAddress.TryParse(address.Trim('[', ']'), out _))
        {
            Log.Error(Daemon, $"Invalid addr {address}");
            return StoreResult.Fail(Errno.EINVAL);
        }

        bool? permanent = type.ToLowerInvariant() switch { "temp" => false, "perm" => true, _ => null };
        if (permanent is null)
        {
            Log.Error(Daemon, $"Invalid redirection type {type}");
            return StoreResult.Fail(Errno.EINVAL);
        }

        c.RedirectAddress = address;
        c.RedirectPort = port;
        c.RedirectPermanent = permanent.Value;
        return StoreResult.Ok;
    }

    /// <summary>UNCONFIRMED: the format of "alias" (listed in A.2/A.5, not in the daemon code read).</summary>
    public ShowResult ShowAlias(ScstTarget t) => Answer(KeyMark(t.Iscsi!.Alias + "\n", t.Iscsi.Alias.Length > 0, newLine: false));

    public StoreResult StoreAlias(ScstTarget t, string text)
    {
        if (!Running)
        {
            return StoreResult.Fail(NotConnected());
        }

        t.Iscsi!.Alias = text.TrimEnd('\n');
        return StoreResult.Ok;
    }

    public ShowResult ShowIsnsServer()
    {
        IscsiDaemonConfig? d = S.Daemon;
        return d?.IsnsServer is { } server
            ? Answer($"{server} {(d.IsnsAccessControl ? "AccessControl" : "")}\n[key]\n")
            : Answer("\n");
    }

    /// <summary>"server [AccessControl [No]]"; empty clears it. The model does not contact any iSNS server.</summary>
    public StoreResult StoreIsnsServer(string text)
    {
        if (!Running)
        {
            return StoreResult.Fail(NotConnected());
        }

        var lx = new ScstLexer(text);
        string server = lx.NextLexem();
        if (server.Length == 0)
        {
            S.Daemon!.IsnsServer = null;
            return StoreResult.Ok;
        }

        string next = lx.NextLexem();
        bool accessControl = false;
        if (next.Equals("AccessControl", StringComparison.OrdinalIgnoreCase))
        {
            accessControl = !lx.NextLexem().Equals("No", StringComparison.OrdinalIgnoreCase);
        }
        else if (next.Length != 0)
        {
            Log.Error(Daemon, $"Unknown parameter {next}");
            return StoreResult.Fail(Errno.EINVAL);
        }

        S.Daemon!.IsnsServer = server;
        S.Daemon.IsnsAccessControl = accessControl;
        return StoreResult.Ok;
    }
}
