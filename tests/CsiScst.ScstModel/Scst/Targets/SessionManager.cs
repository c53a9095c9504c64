using System.Globalization;

namespace CsiScst.ScstModel.Scst.Targets;

/// <summary>
/// iSCSI sessions: logins and logouts driven through M/.model/login and logout, the group a session is
/// bound to (interfaces.md A.6: the initiator is matched against every group first; no match means the
/// target's default LUNs), force_close, and re-evaluation when initiators change.
/// </summary>
internal sealed class SessionManager(ScstSystem model)
{
    private ScstState S => model.State;

    private KernelLog Log => model.Log;

    public static string LoginHelp =>
        "Usage: echo \"TARGET_IQN INITIATOR_IQN INITIATOR_IP [portal=IP] [user=NAME] [secret=SECRET]\" >login\n" +
        "A refused login fails with EACCES; the reason is in dmesg.\n";

    /// <summary>
    /// A login as iscsi-scstd would accept or refuse it. Refusals are EACCES, with the reason in dmesg.
    /// Deviation: the model refuses an initiator whose LUN set has no LUN 0 (A.6: it would see nothing);
    /// SCST itself refuses only an empty set (scst_initiator_has_luns, F) and lets the login succeed
    /// without visible disks.
    /// </summary>
    public int Login(string text)
    {
        var lx = new ScstLexer(text);
        string targetName = lx.NextLexem();
        string initiator = lx.NextLexem();
        string ip = lx.NextLexem();
        if (targetName.Length == 0 || initiator.Length == 0 || ip.Length == 0 || initiator.Contains('/', StringComparison.Ordinal))
        {
            return Errno.EINVAL;
        }

        string? portal = null, user = null, secret = null;
        for (string key = lx.NextLexem(); key.Length != 0; key = lx.NextLexem())
        {
            string value = lx.NextLexem();
            switch (key)
            {
                case "portal":
                    portal = value;
                    break;
                case "user":
                    user = value;
                    break;
                case "secret":
                    secret = value;
                    break;
                default:
                    return Errno.EINVAL;
            }
        }

        portal ??= ip;
        string refusal = $"Login of {initiator} from {ip} to {targetName} refused";
        if (S.Daemon is not { } daemon)
        {
            Log.Error("iscsi-scstd", $"{refusal}: iscsi-scstd is not running (nothing listens on the portal)");
            return Errno.EACCES;
        }

        if (!S.Iscsi.Targets.TryGetValue(targetName, out ScstTarget? target))
        {
            Log.Error("iscsi-scstd", $"{refusal}: target not found (02/03)");
            return Errno.EACCES;
        }

        // usr/iscsid.c, login of a normal session: the driver switch first, then the target's.
        if (!daemon.Enabled)
        {
            Log.Info("iscsi-scstd", $"Connect from {initiator} to disabled iSCSI-SCST refused");
            return Errno.EACCES;
        }

        if (!target.Enabled)
        {
            Log.Info("iscsi-scstd", $"Connect from {initiator} to disabled target {targetName} refused");
            return Errno.EACCES;
        }

        IscsiTargetConfig cfg = target.Iscsi!;
        if (cfg.AllowedPortals.Count > 0 && !cfg.AllowedPortals.Any(p => Wildcard.Match(p.Pattern, portal)))
        {
            Log.Error("iscsi-scstd", $"{refusal}: portal {portal} is not an allowed_portal of the target");
            return Errno.EACCES;
        }

        // A.5: CHAP is required if and only if the target has an IncomingUser.
        if (cfg.IncomingUsers.Count > 0 && !cfg.IncomingUsers.Any(a => a.User == user && a.Secret == secret))
        {
            Log.Error("iscsi-scstd", $"{refusal}: CHAP authentication failed");
            return Errno.EACCES;
        }

        // A.2: with per_portal_acl=1 initiators are matched as "iqn#portal-ip".
        string matchName = cfg.PerPortalAcl ? $"{initiator}#{portal}" : initiator;
        ScstAcg acg = FindAcg(target, matchName);
        if (!acg.Luns.ContainsKey(0))
        {
            Log.Error("iscsi-scstd", $"{refusal}: target not found (02/03): the initiator's LUN set ({acg.Name}) has no LUN 0");
            return Errno.EACCES;
        }

        uint maxSessions = cfg.Params["MaxSessions"];
        if (maxSessions != 0 && target.Sessions.Count >= maxSessions)
        {
            Log.Error("iscsi-scstd", $"{refusal}: MaxSessions {maxSessions} reached");
            return Errno.EACCES;
        }

        // A.2: a second session of the same initiator is <name>_1, then _2, ...
        string dirName = initiator;
        for (int n = 1; target.Sessions.ContainsKey(dirName); n++)
        {
            dirName = $"{initiator}_{n}";
        }

        // A.5: session parameters are taken when the session is made.
        var negotiated = IscsiParams.All.Where(d => d.IsSessionParam)
            .Select(d => (d.Name, IscsiParams.Negotiated(d, cfg.Params[d.Name])))
            .ToList();
        var session = new ScstSession(dirName, initiator, ip, target, acg, ++S.LastSid, negotiated) { MatchName = matchName };
        target.Sessions.Add(dirName, session);
        Log.Info("iscsi-scst", $"Session {session.Sid:x} created: target {target.Name}, initiator {initiator}, group {acg.Name}");
        return 0;
    }

    public int Logout(string text)
    {
        var lx = new ScstLexer(text);
        string targetName = lx.NextLexem();
        string dirName = lx.NextLexem();
        if (targetName.Length == 0 || dirName.Length == 0)
        {
            return Errno.EINVAL;
        }

        if (!S.Iscsi.Targets.TryGetValue(targetName, out ScstTarget? target) || !target.Sessions.TryGetValue(dirName, out ScstSession? s))
        {
            return Errno.ENOENT;
        }

        Close(s, "logout");
        return 0;
    }

    public void Close(ScstSession s, string why)
    {
        if (!s.Alive)
        {
            return;
        }

        s.Alive = false;
        s.Target.Sessions.Remove(s.DirName);
        Log.Info("iscsi-scst", $"Session {s.Sid:x} ({s.InitiatorName}) of target {s.Target.Name} closed: {why}");
    }

    public void CloseAll(ScstTarget target, string why)
    {
        foreach (ScstSession s in target.Sessions.Values.ToList())
        {
            Close(s, why);
        }
    }

    /// <summary>Binds every session of the target to the group its initiator now matches.</summary>
    public void Reassign(ScstTarget target)
    {
        foreach (ScstSession s in target.Sessions.Values)
        {
            ScstAcg acg = FindAcg(target, s.MatchName);
            if (acg != s.Acg)
            {
                Log.Info("scst", $"Session {s.DirName} of target {target.Name} moved from group {s.Acg.Name} to {acg.Name}");
                s.Acg = acg;
            }
        }
    }

    /// <summary>The first group (in creation order) with an initiator pattern that matches; else the default set.</summary>
    public static ScstAcg FindAcg(ScstTarget target, string initiator) =>
        target.Groups.Find(g => g.Initiators.Any(p => Wildcard.Match(p, initiator))) ?? target.DefaultAcg;

    public static string SidText(ScstSession s) => s.Sid.ToString("x", CultureInfo.InvariantCulture);
}

/// <summary>
/// SCST's wildcmp for initiator names and portals (A.5/A.6): '*' and '?' wildcards, a leading '!'
/// negates, letters match regardless of case.
/// </summary>
internal static class Wildcard
{
    public static bool Match(string pattern, string value) =>
        pattern.StartsWith('!') ? !Matches(pattern.AsSpan(1), value) : Matches(pattern, value);

    private static bool Matches(ReadOnlySpan<char> p, ReadOnlySpan<char> s)
    {
        while (p.Length > 0)
        {
            if (p[0] == '*')
            {
                p = p[1..];
                if (p.Length == 0)
                {
                    return true;
                }

                for (int i = 0; i <= s.Length; i++)
                {
                    if (Matches(p, s[i..]))
                    {
                        return true;
                    }
                }

                return false;
            }

            if (s.Length == 0 || (p[0] != '?' && char.ToLowerInvariant(p[0]) != char.ToLowerInvariant(s[0])))
            {
                return false;
            }

            p = p[1..];
            s = s[1..];
        }

        return s.Length == 0;
    }
}
