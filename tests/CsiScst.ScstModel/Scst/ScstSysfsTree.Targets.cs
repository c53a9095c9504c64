using System.Globalization;
using CsiScst.ScstModel.Scst.Targets;
using CsiScst.ScstModel.Vfs;

namespace CsiScst.ScstModel.Scst;

/// <summary>targets/&lt;driver&gt;/... (interfaces.md A.2, A.5, A.6).</summary>
internal sealed partial class ScstSysfsTree
{
    private const int MinRelTgtId = 1;
    private const int MaxRelTgtId = 0xFFFF;

    private VDir DriverDir(ScstTargetDriver driver) => driver.IsIscsi
        ? Dir(
            driver.Name,
            () => IscsiDriverAttributes().Concat(S.Iscsi.Targets.Values.Select(TargetDir)),
            name => VDir.Find(IscsiDriverAttributes(), name) ?? (S.Iscsi.Targets.TryGetValue(name, out ScstTarget? t) ? TargetDir(t) : null))
        : Dir(driver.Name, CopyManagerEntries);

    /// <summary>The copy manager has no mgmt file: its one target can be neither added nor deleted.</summary>
    private IEnumerable<VNode> CopyManagerEntries() =>
    [
        Rw("allow_not_connected_copy", () => Key(S.AllowNotConnectedCopy, false), t => StoreSwitch(t, v => S.AllowNotConnectedCopy = v)),
        TargetDir(S.CopyManagerTarget),
    ];

    /// <summary>The iSCSI driver's own files (its targets follow them).</summary>
    private IEnumerable<VNode> IscsiDriverAttributes()
    {
        IscsiDaemon iscsi = model.Iscsi;
        yield return Rw("mgmt", () => IscsiDaemon.MgmtHelp, text => StoreResult.Queued(() => iscsi.ProcessMgmt(text)));
        yield return Ro("open_state", () => iscsi.Running ? "open\n" : "closed\n");
        yield return Ro("version", () => Version + "\n");

        // A.1: these are created by the daemon and exist only while it runs.
        if (S.Daemon is { } daemon)
        {
            yield return new VFile("enabled", ModeRw, iscsi.ShowDriverEnabled, iscsi.StoreDriverEnabled);
            yield return new VFile("iSNSServer", ModeRw, iscsi.ShowIsnsServer, iscsi.StoreIsnsServer);
            foreach (IscsiAccount a in daemon.IncomingUsers)
            {
                yield return new VFile(a.SysfsName, ModeRw, () => iscsi.ShowAccount(a), t => iscsi.StoreAccount(daemon.IncomingUsers, a, t));
            }

            foreach (IscsiAccount a in daemon.OutgoingUsers)
            {
                yield return new VFile(a.SysfsName, ModeRw, () => iscsi.ShowAccount(a), t => iscsi.StoreAccount(daemon.OutgoingUsers, a, t));
            }
        }
    }

    private VDir TargetDir(ScstTarget t) => Dir(t.Name, () => TargetEntries(t));

    private IEnumerable<VNode> TargetEntries(ScstTarget t)
    {
        string dir = $"targets/{t.Driver.Name}/{t.Name}";
        if (t.Driver.IsIscsi)
        {
            yield return Rw("enabled", () => $"{Bit(t.Enabled)}\n", text => StoreEnabled(t, text));
            yield return Ro("tid", () => $"{t.Tid}\n");
        }

        yield return Rw("rel_tgt_id", () => Key(t.RelTgtId, t.RelTgtId != 0), text => StoreRelTgtId(t, text));
        yield return Rw("comment", () => t.Comment is null ? "" : $"{t.Comment}\n[key]\n", text => StoreComment(t, text));
        foreach (VNode n in AcgSettings(t.DefaultAcg))
        {
            yield return n;
        }

        yield return Rw("black_hole", () => Key(t.BlackHole, t.BlackHole != 0), text => StoreSwitch(text, v => t.BlackHole = v));
        if (t.Driver.IsIscsi)
        {
            yield return Rw("forward_src", () => Key(t.ForwardSrc, t.ForwardSrc != 0), text => StoreSwitch(text, v => t.ForwardSrc = v));
            yield return Rw("forward_dst", () => Key(t.ForwardDst, t.ForwardDst != 0), text => StoreSwitch(text, v => t.ForwardDst = v));
            yield return Rw("aen_disabled", () => Key(t.AenDisabled, t.AenDisabled != 0), text => StoreSwitch(text, v => t.AenDisabled = v));
            foreach (VNode n in IscsiTargetAttributes(t))
            {
                yield return n;
            }
        }
        else
        {
            yield return Rw("forwarding", () => Key(t.ForwardSrc, t.ForwardSrc != 0), text => StoreSwitch(text, v => t.ForwardSrc = v));
        }

        yield return LunsDir(t.DefaultAcg, $"{dir}/luns");
        yield return IniGroupsDir(t, $"{dir}/ini_groups");
        yield return Dir(
            "sessions",
            () => t.Sessions.Values.Select(s => SessionDir(s, $"{dir}/sessions/{s.DirName}")),
            name => t.Sessions.TryGetValue(name, out ScstSession? s) ? SessionDir(s, $"{dir}/sessions/{s.DirName}") : null);
    }

    /// <summary>The per-target attributes iscsi-scstd creates (A.2, A.5).</summary>
    private IEnumerable<VNode> IscsiTargetAttributes(ScstTarget t)
    {
        IscsiDaemon iscsi = model.Iscsi;
        IscsiTargetConfig cfg = t.Iscsi!;
        foreach (IscsiParamDef def in IscsiParams.All)
        {
            yield return new VFile(def.Name, ModeRw, () => iscsi.ShowParam(t, def), text => iscsi.StoreParam(t, def, text));
        }

        yield return new VFile("per_portal_acl", ModeRw, () => iscsi.ShowPerPortalAcl(t), text => iscsi.StorePerPortalAcl(t, text));
        yield return new VFile("redirect", ModeRw, () => iscsi.ShowRedirect(t), text => iscsi.StoreRedirect(t, text));
        yield return new VFile("alias", ModeRw, () => iscsi.ShowAlias(t), text => iscsi.StoreAlias(t, text));
        foreach (IscsiAccount a in cfg.IncomingUsers)
        {
            yield return new VFile(a.SysfsName, ModeRw, () => iscsi.ShowAccount(a), text => iscsi.StoreAccount(cfg.IncomingUsers, a, text));
        }

        foreach (IscsiAccount a in cfg.OutgoingUsers)
        {
            yield return new VFile(a.SysfsName, ModeRw, () => iscsi.ShowAccount(a), text => iscsi.StoreAccount(cfg.OutgoingUsers, a, text));
        }

        foreach (IscsiPortal p in cfg.AllowedPortals)
        {
            yield return new VFile(p.SysfsName, ModeRw, () => iscsi.ShowPortal(p), text => iscsi.StorePortal(cfg, p, text));
        }
    }

    /// <summary>addr_method, io_grouping_type and cpu_mask: the same for a target (its default group) and an ini group.</summary>
    private IEnumerable<VNode> AcgSettings(ScstAcg g) =>
    [
        Rw("addr_method", () => Key(g.AddrMethod, g.AddrMethod != "PERIPHERAL"), text => StoreAddrMethod(g, text)),
        Rw("io_grouping_type", () => Key(g.IoGroupingType, g.IoGroupingType != "auto"), text => StoreIoGroupingType(g, text)),
        Rw("cpu_mask", () => CpuMaskText(g), text => StoreCpuMask(g, text)),
    ];

    private VDir LunsDir(ScstAcg g, string dir) => Dir(
        "luns",
        () => new VNode[] { LunsMgmt(g) }.Concat(g.Luns.Values.Select(l => LunDir(l, $"{dir}/{l.Number}"))),
        name =>
        {
            if (name == "mgmt")
            {
                return LunsMgmt(g);
            }

            // Only the canonical decimal spelling names a LUN ("01" or "+1" do not).
            return ulong.TryParse(name, NumberStyles.None, CultureInfo.InvariantCulture, out ulong number)
                && number.ToString(CultureInfo.InvariantCulture) == name
                && g.Luns.TryGetValue(number, out ScstLun? l)
                ? LunDir(l, $"{dir}/{name}")
                : null;
        });

    private VFile LunsMgmt(ScstAcg g) => Rw("mgmt", () => LunManager.MgmtHelp, text => StoreResult.Queued(() => model.Luns.ProcessMgmt(g, text)));

    private static VDir LunDir(ScstLun l, string dir) => Dir(l.Number.ToString(CultureInfo.InvariantCulture), () =>
    [
        new VLink("device", Rel(dir, $"devices/{l.Device.Name}")),
        Ro("read_only", () => l.ReadOnly || l.Device.ReadOnly ? "1\n[key]\n" : "0\n"),
    ]);

    private VDir IniGroupsDir(ScstTarget t, string dir) => Dir(
        "ini_groups",
        () => new VNode[] { IniGroupsMgmt(t) }.Concat(t.Groups.Select(g => GroupDir(g, $"{dir}/{g.Name}"))),
        name => name == "mgmt" ? IniGroupsMgmt(t)
            : t.Groups.Find(g => string.Equals(g.Name, name, StringComparison.Ordinal)) is { } g ? GroupDir(g, $"{dir}/{g.Name}") : null);

    private VFile IniGroupsMgmt(ScstTarget t) =>
        Rw("mgmt", () => GroupManager.IniGroupsHelp, text => StoreResult.Queued(() => model.Groups.ProcessIniGroupsMgmt(t, text)));

    private VDir GroupDir(ScstAcg g, string gdir) => Dir(g.Name, () => AcgSettings(g).Concat(
    [
        LunsDir(g, $"{gdir}/luns"),
        Dir(
            "initiators",
            () => new VNode[] { InitiatorsMgmt(g) }.Concat(g.Initiators.Select(InitiatorFile)),
            name => name == "mgmt" ? InitiatorsMgmt(g)
                : g.Initiators.Find(i => string.Equals(i, name, StringComparison.Ordinal)) is { } i ? InitiatorFile(i) : null),
        Rw("black_hole", () => Key(g.BlackHole, g.BlackHole != 0), text => StoreSwitch(text, v => g.BlackHole = v)),
        Rw("per_sess_dedicated_tgt_threads", () => Key(g.PerSessDedicatedTgtThreads, g.PerSessDedicatedTgtThreads != 0), text => StoreSwitch(text, v => g.PerSessDedicatedTgtThreads = v)),
    ]));

    private VFile InitiatorsMgmt(ScstAcg g) =>
        Rw("mgmt", () => GroupManager.InitiatorsHelp, text => StoreResult.Queued(() => model.Groups.ProcessInitiatorsMgmt(g, text)));

    private static VFile InitiatorFile(string name) => Ro(name, () => name + "\n");

    // ---- target attribute stores ----

    /// <summary>
    /// A.5: the first character must be 0 or 1, else EINVAL (checked at once, so last_sysfs_mgmt_res keeps
    /// its value). Enabling gives the target a rel_tgt_id when it has none and refuses a duplicate one
    /// with EBADSLT; then iscsi-scstd does the rest (EPERM when it is not running).
    /// </summary>
    private StoreResult StoreEnabled(ScstTarget t, string text)
    {
        bool enable;
        switch (text[0])
        {
            case '0':
                enable = false;
                break;
            case '1':
                enable = true;
                break;
            default:
                Log.Error("scst", $"scst_tgt_enable_store: Requested action not understood: {text}");
                return StoreResult.Fail(Errno.EINVAL);
        }

        return StoreResult.Queued(() =>
        {
            if (!t.Alive)
            {
                return Errno.ENODEV;
            }

            if (enable)
            {
                if (t.RelTgtId == 0)
                {
                    if (!GenerateRelTgtId(out ushort id))
                    {
                        return Errno.EOVERFLOW;
                    }

                    t.RelTgtId = id;
                    Log.Info("scst", $"Using autogenerated relative target id {id} for target {t.Name}");
                }
                else if (!IsRelTgtIdUnique(t.RelTgtId, t))
                {
                    Log.Error("scst", $"Relative target id {t.RelTgtId} is not unique");
                    return Errno.EBADSLT;
                }
            }

            return model.Iscsi.Enable(t, enable);
        });
    }

    /// <summary>scst_process_rel_tgt_id_store: unique among all targets when enabled, 1..65535, or 0 while disabled.</summary>
    private StoreResult StoreRelTgtId(ScstTarget t, string text)
    {
        int errno = KernelNumbers.ParseULong(text, out ulong id);
        if (errno != 0)
        {
            Log.Error("scst", "Wrong rel_tgt_id");
            return StoreResult.Fail(Errno.EINVAL);
        }

        return StoreResult.Queued(() =>
        {
            if (!t.Alive)
            {
                return Errno.ENODEV;
            }

            // The copy manager has no is_target_enabled(): SCST treats it as always enabled.
            bool enabled = !t.Driver.IsIscsi || t.Enabled;
            // The id goes to the uniqueness check as a uint16_t, so it is truncated there.
            if (enabled && id != t.RelTgtId && !IsRelTgtIdUnique((ushort)id, t))
            {
                Log.Error("scst", $"Relative port id {(ushort)id} is not unique");
                return Errno.EBADSLT;
            }

            if ((id < MinRelTgtId || id > MaxRelTgtId) && !(id == 0 && !enabled))
            {
                Log.Error("scst", $"Invalid relative port id {(ushort)id}");
                return Errno.EINVAL;
            }

            t.RelTgtId = (ushort)id;
            return 0;
        });
    }

    /// <summary>
    /// scst_is_relative_target_port_id_unique: compared with every other target that is enabled; a target
    /// without is_target_enabled() (the copy manager) always counts.
    /// </summary>
    private bool IsRelTgtIdUnique(ulong id, ScstTarget? except) =>
        !S.AllTargets.Any(x => x != except && (!x.Driver.IsIscsi || x.Enabled) && x.RelTgtId == id);

    /// <summary>gen_relative_target_port_id: from a cursor that continues where it last stopped.</summary>
    private bool GenerateRelTgtId(out ushort id)
    {
        int start = S.RelTgtIdCursor;
        do
        {
            int candidate = S.RelTgtIdCursor;
            S.RelTgtIdCursor = candidate >= MaxRelTgtId ? MinRelTgtId : candidate + 1;
            if (IsRelTgtIdUnique((ulong)candidate, null))
            {
                id = (ushort)candidate;
                return true;
            }
        }
        while (S.RelTgtIdCursor != start);

        id = 0;
        return false;
    }

    private static StoreResult StoreComment(ScstTarget t, string text)
    {
        string value = text.EndsWith('\n') ? text[..^1] : text;
        t.Comment = value.Length == 0 ? null : value;
        return StoreResult.Ok;
    }

    /// <summary>Compares at most the written length, as strncasecmp(buf, "FLAT", min(4, count)) does.</summary>
    private StoreResult StoreAddrMethod(ScstAcg g, string text)
    {
        foreach (string method in new[] { "FLAT", "PERIPHERAL", "LUN" })
        {
            int n = Math.Min(method.Length, text.Length);
            if (string.Compare(text, 0, method, 0, n, StringComparison.OrdinalIgnoreCase) == 0)
            {
                g.AddrMethod = method;
                return StoreResult.Ok;
            }
        }

        Log.Error("scst", $"Unknown address method {text}");
        return StoreResult.Fail(Errno.EINVAL);
    }

    private StoreResult StoreIoGroupingType(ScstAcg g, string text)
    {
        string? type = null;
        foreach (string name in new[] { "auto", "this_group_only", "never" })
        {
            int n = Math.Min(name.Length, text.Length);
            if (string.Compare(text, 0, name, 0, n, StringComparison.OrdinalIgnoreCase) == 0)
            {
                type = name;
                break;
            }
        }

        if (type is null)
        {
            if (KernelNumbers.ParseLong(text, out long v) != 0 || v <= 0)
            {
                Log.Error("scst", $"Unknown or not allowed I/O grouping type {text}");
                return StoreResult.Fail(Errno.EINVAL);
            }

            type = v.ToString(CultureInfo.InvariantCulture);
        }

        if (type == g.IoGroupingType)
        {
            return StoreResult.Ok;
        }

        return StoreResult.Queued(() =>
        {
            if (!g.Alive)
            {
                return Errno.ENODEV;
            }

            g.IoGroupingType = type;
            return 0;
        });
    }

    private string DefaultCpuMask => ((1UL << Math.Min(S.Cpus, 63)) - 1).ToString("x", CultureInfo.InvariantCulture);

    /// <summary>cpumask_scnprintf prints no newline; only a non-default mask gets "\n[key]\n" after it.</summary>
    private string CpuMaskText(ScstAcg g) => g.CpuMask is { } mask && mask != DefaultCpuMask ? $"{mask}\n[key]\n" : DefaultCpuMask;

    /// <summary>A hex bitmap, optionally in comma-separated 32-bit groups (__bitmap_parse).</summary>
    private StoreResult StoreCpuMask(ScstAcg g, string text)
    {
        string mask = text.Trim().Replace(",", "", StringComparison.Ordinal).TrimStart('0');
        if (mask.Length == 0 && text.Trim().Length > 0)
        {
            mask = "0";
        }

        if (mask.Length == 0 || !mask.All(Uri.IsHexDigit))
        {
            Log.Error("scst", "__bitmap_parse() failed: -22");
            return StoreResult.Fail(Errno.EINVAL);
        }

        mask = mask.ToLowerInvariant();
        if (mask == (g.CpuMask ?? DefaultCpuMask))
        {
            return StoreResult.Ok;
        }

        return StoreResult.Queued(() =>
        {
            if (!g.Alive)
            {
                return Errno.ENODEV;
            }

            g.CpuMask = mask;
            return 0;
        });
    }
}
