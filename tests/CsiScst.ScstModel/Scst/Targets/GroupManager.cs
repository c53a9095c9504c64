namespace CsiScst.ScstModel.Scst.Targets;

/// <summary>
/// ini_groups/mgmt (create/del) and ini_groups/GRP/initiators/mgmt (add/del/move/clear), interfaces.md A.6;
/// scst_sysfs.c scst_process_ini_group_mgmt_store and scst_process_acg_ini_mgmt_store.
/// </summary>
internal sealed class GroupManager(ScstSystem model)
{
    /// <summary>Files of ini_groups/ and of initiators/: a group or initiator of that name cannot be created.</summary>
    private const string MgmtFile = "mgmt";

    private KernelLog Log => model.Log;

    public static string IniGroupsHelp =>
        "Usage: echo \"create GROUP_NAME\" >mgmt\n" +
        "       echo \"del GROUP_NAME\" >mgmt\n";

    public static string InitiatorsHelp =>
        "Usage: echo \"add INITIATOR_NAME\" >mgmt\n" +
        "       echo \"del INITIATOR_NAME\" >mgmt\n" +
        "       echo \"move INITIATOR_NAME DEST_GROUP_NAME\" >mgmt\n" +
        "       echo \"clear\" >mgmt\n";

    /// <summary>The queued work of one write to ini_groups/mgmt.</summary>
    public int ProcessIniGroupsMgmt(ScstTarget target, string text)
    {
        var lx = new ScstLexer(text);
        string verb = lx.NextLexem();
        bool create = verb.Equals("create", StringComparison.OrdinalIgnoreCase);
        if (!create && !verb.Equals("del", StringComparison.OrdinalIgnoreCase))
        {
            Log.Error("scst", $"Unknown action \"{verb}\"");
            return Errno.EINVAL;
        }

        if (!target.Alive)
        {
            return Errno.ENODEV;
        }

        string name = lx.NextLexem();
        if (name.Length == 0)
        {
            Log.Error("scst", "Group name required");
            return Errno.EINVAL;
        }

        ScstAcg? existing = target.Groups.Find(g => g.Name == name);
        return create ? Create(target, name, existing) : Delete(target, name, existing);
    }

    private int Create(ScstTarget target, string name, ScstAcg? existing)
    {
        // interfaces.md A.6: EEXIST. (The older scst_sysfs.c read here answers EINVAL for it.)
        if (existing is not null || name == MgmtFile)
        {
            Log.Error("scst", $"acg name {name} exist");
            return Errno.EEXIST;
        }

        if (name.Contains('/', StringComparison.Ordinal))
        {
            Log.Error("scst", $"Invalid group name {name}");
            return Errno.EINVAL;
        }

        target.Groups.Add(new ScstAcg(name, target, isDefault: false) { AddrMethod = target.DefaultAcg.AddrMethod });
        return 0;
    }

    private int Delete(ScstTarget target, string name, ScstAcg? group)
    {
        if (group is null)
        {
            Log.Error("scst", $"Group {name} not found");
            return Errno.EINVAL;
        }

        List<ScstSession> attached = target.Sessions.Values.Where(s => s.Acg == group).ToList();
        if (attached.Count > 0)
        {
            if (!model.ForciblyCloseSessions)
            {
                Log.Error("scst", $"Group {name} is not empty");
                return Errno.EBUSY;
            }

            // UNCONFIRMED: with forcibly_close_sessions=1 the group's sessions are closed, not moved.
            foreach (ScstSession s in attached)
            {
                model.Sessions.Close(s, "group deleted");
            }
        }

        foreach (ScstLun lun in group.Luns.Values.ToList())
        {
            LunManager.RemoveLun(lun);
        }

        group.Alive = false;
        target.Groups.Remove(group);
        return 0;
    }

    /// <summary>The queued work of one write to ini_groups/GRP/initiators/mgmt.</summary>
    public int ProcessInitiatorsMgmt(ScstAcg group, string text)
    {
        var lx = new ScstLexer(text);
        string verb = lx.NextLexem().ToLowerInvariant();
        if (verb is not ("add" or "del" or "clear" or "move"))
        {
            // interfaces.md A.6: the verb is required; a bare IQN is an unknown action.
            Log.Error("scst", $"Unknown action \"{verb}\"");
            return Errno.EINVAL;
        }

        if (!group.Alive || !group.Target.Alive)
        {
            return Errno.ENODEV;
        }

        int errno = verb switch
        {
            "add" => Add(group, lx),
            "del" => Remove(group, lx),
            "move" => Move(group, lx),
            _ => Clear(group),
        };
        if (errno == 0)
        {
            // A.6: a change of initiators re-evaluates the sessions that already exist.
            model.Sessions.Reassign(group.Target);
        }

        return errno;
    }

    private int Add(ScstAcg group, ScstLexer lx)
    {
        string name = lx.NextLexem();
        if (name.Length == 0)
        {
            Log.Error("scst", "Invalid initiator name");
            return Errno.EINVAL;
        }

        if (group.Initiators.Contains(name) || name == MgmtFile)
        {
            Log.Error("scst", $"Name {name} already exists in group {group.Name}");
            return Errno.EEXIST;
        }

        if (name.Contains('/', StringComparison.Ordinal))
        {
            Log.Error("scst", $"Invalid initiator name {name}");
            return Errno.EINVAL;
        }

        group.Initiators.Add(name);
        Log.Info("scst", $"Added name {name} to group {group.Name} (target {group.Target.Name})");
        return 0;
    }

    private int Remove(ScstAcg group, ScstLexer lx)
    {
        string name = lx.NextLexem();
        if (name.Length == 0)
        {
            Log.Error("scst", "Invalid initiator name");
            return Errno.EINVAL;
        }

        if (!group.Initiators.Remove(name))
        {
            Log.Error("scst", $"Unable to find initiator '{name}' in group '{group.Name}'");
            return Errno.EINVAL;
        }

        Log.Info("scst", $"Removed name {name} from group {group.Name} (target {group.Target.Name})");
        return 0;
    }

    private int Move(ScstAcg group, ScstLexer lx)
    {
        string name = lx.NextLexem();
        if (name.Length == 0)
        {
            Log.Error("scst", "Invalid initiator name");
            return Errno.EINVAL;
        }

        string destName = lx.NextLexem();
        if (destName.Length == 0)
        {
            Log.Error("scst", "Invalid group name");
            return Errno.EINVAL;
        }

        if (!group.Initiators.Contains(name))
        {
            Log.Error("scst", $"Unable to find initiator '{name}' in group '{group.Name}'");
            return Errno.EINVAL;
        }

        ScstAcg? dest = group.Target.Groups.Find(g => g.Name == destName);
        if (dest is null)
        {
            Log.Error("scst", $"Unable to find group '{destName}' in target '{group.Target.Name}'");
            return Errno.EINVAL;
        }

        if (dest.Initiators.Contains(name))
        {
            Log.Error("scst", $"Initiator '{name}' already exists in group '{dest.Name}'");
            return Errno.EEXIST;
        }

        group.Initiators.Remove(name);
        dest.Initiators.Add(name);
        return 0;
    }

    private static int Clear(ScstAcg group)
    {
        group.Initiators.Clear();
        return 0;
    }
}
