namespace CsiScst.ScstModel.Scst.Targets;

/// <summary>
/// luns/mgmt of a target or of an ini group (interfaces.md A.6; scst_sysfs.c
/// __scst_process_luns_mgmt_store): add, replace, replace_no_ua, del, clear.
/// </summary>
internal sealed class LunManager(ScstSystem model)
{
    /// <summary>SCST_MAX_LUN.</summary>
    public const ulong MaxLun = 16383;

    private ScstState S => model.State;

    private KernelLog Log => model.Log;

    public static string MgmtHelp =>
        "Usage: echo \"add H:C:I:L lun [parameters]\" >mgmt\n" +
        "       echo \"add VNAME lun [parameters]\" >mgmt\n" +
        "       echo \"del lun\" >mgmt\n" +
        "       echo \"replace H:C:I:L lun [parameters]\" >mgmt\n" +
        "       echo \"replace VNAME lun [parameters]\" >mgmt\n" +
        "       echo \"replace_no_ua H:C:I:L lun [parameters]\" >mgmt\n" +
        "       echo \"replace_no_ua VNAME lun [parameters]\" >mgmt\n" +
        "       echo \"clear\" >mgmt\n" +
        "\n" +
        "where parameters are one or more param_name=value pairs separated by ';'\n" +
        "\nThe following parameters available: read_only.\n";

    /// <summary>The queued work of one write to a luns/mgmt file.</summary>
    public int ProcessMgmt(ScstAcg acg, string text)
    {
        var lx = new ScstLexer(text);
        string verb = lx.NextLexem().ToLowerInvariant();
        if (verb is not ("add" or "del" or "replace" or "replace_no_ua" or "clear"))
        {
            Log.Error("scst", $"Unknown action \"{verb}\"");
            return Errno.EINVAL;
        }

        if (!acg.Alive || !acg.Target.Alive)
        {
            return Errno.ENODEV;
        }

        return verb switch
        {
            "del" => Delete(acg, lx),
            "clear" => Clear(acg, lx),
            _ => AddOrReplace(acg, lx, replace: verb != "add"),
        };
    }

    private int AddOrReplace(ScstAcg acg, ScstLexer lx, bool replace)
    {
        string devName = lx.NextLexem();
        if (!S.Devices.TryGetValue(devName, out ScstDevice? dev))
        {
            Log.Error("scst", $"Device '{devName}' not found");
            return Errno.EINVAL;
        }

        string lunText = lx.NextLexem();
        int errno = KernelNumbers.ParseULong(lunText, out ulong lun);
        if (errno != 0)
        {
            Log.Error("scst", $"Valid LUN required for dev {devName} (res {-errno})");
            return errno;
        }

        // interfaces.md A.6: LUNs run from 0 to 16383. (The scst_sysfs.c read here jumps to its exit
        // with res still 0 for a bigger LUN, i.e. it reports success without adding anything; UNCONFIRMED
        // for the HEAD version, so the model refuses with EINVAL.)
        if (lun > MaxLun)
        {
            Log.Error("scst", $"Too big LUN {lun} (max {MaxLun})");
            return Errno.EINVAL;
        }

        bool readOnly = false;
        while (lx.NextTokenString() is { } token)
        {
            var plx = new ScstLexer(token);
            string p = plx.NextLexem();
            if (p.Length == 0)
            {
                Log.Error("scst", $"Syntax error at {token} (device {devName})");
                return Errno.EINVAL;
            }

            string value = plx.NextLexem();
            if (value.Length == 0)
            {
                Log.Error("scst", $"Parameter {p} value missed for device {devName}");
                return Errno.EINVAL;
            }

            if (plx.NextLexem().Length != 0)
            {
                Log.Error("scst", $"Too many parameter's {p} values (device {devName})");
                return Errno.EINVAL;
            }

            errno = KernelNumbers.ParseULong(value, out ulong v);
            if (errno != 0)
            {
                Log.Error("scst", $"strict_strtoul() for {value} failed: {-errno} (device {devName})");
                return errno;
            }

            if (!p.Equals("read_only", StringComparison.OrdinalIgnoreCase))
            {
                Log.Error("scst", $"Unknown parameter {p} (device {devName})");
                return Errno.EINVAL;
            }

            readOnly = v != 0;
        }

        if (acg.Luns.TryGetValue(lun, out ScstLun? existing))
        {
            if (!replace)
            {
                // interfaces.md F: this one is logged (unlike a duplicate device or target).
                Log.Error("scst", $"virt lun {lun} already exists in group {acg.Name}");
                return Errno.EEXIST;
            }

            RemoveLun(existing);
        }

        AddLun(acg, lun, dev, readOnly);
        return 0;
    }

    private int Delete(ScstAcg acg, ScstLexer lx)
    {
        string lunText = lx.NextLexem();
        int errno = KernelNumbers.ParseULong(lunText, out ulong lun);
        if (errno != 0)
        {
            return errno;
        }

        if (lx.NextLexem().Length != 0)
        {
            Log.Error("scst", $"Too many parameters for del LUN {lun}: {lunText}");
            return Errno.EINVAL;
        }

        if (!acg.Luns.TryGetValue(lun, out ScstLun? existing))
        {
            Log.Error("scst", $"Device is not found in group {acg.Name}");
            return Errno.EINVAL;
        }

        RemoveLun(existing);
        return 0;
    }

    private int Clear(ScstAcg acg, ScstLexer lx)
    {
        string extra = lx.NextLexem();
        if (extra.Length != 0)
        {
            Log.Error("scst", $"Too many parameters for clear: {extra}");
            return Errno.EINVAL;
        }

        Log.Info("scst", $"Removed all devices from group {acg.Name}");
        foreach (ScstLun lun in acg.Luns.Values.ToList())
        {
            RemoveLun(lun);
        }

        return 0;
    }

    public void AddLun(ScstAcg acg, ulong number, ScstDevice dev, bool readOnly)
    {
        var lun = new ScstLun(number, dev, readOnly, acg, $"export{dev.ExportCounter++}");
        acg.Luns[number] = lun;
        dev.Exports.Add(lun);
    }

    public static void RemoveLun(ScstLun lun)
    {
        lun.Acg.Luns.Remove(lun.Number);
        lun.Device.Exports.Remove(lun);
    }
}
