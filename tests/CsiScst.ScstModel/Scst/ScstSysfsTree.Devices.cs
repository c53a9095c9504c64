using System.Collections.Immutable;
using CsiScst.ScstModel.Scst.Devices;
using CsiScst.ScstModel.Vfs;

namespace CsiScst.ScstModel.Scst;

/// <summary>devices/&lt;name&gt;/ (interfaces.md A.2 and the attribute table of A.4).</summary>
internal sealed partial class ScstSysfsTree
{
    private const string Src = "dev_vdisk";

    /// <summary>Maximum lengths of the identity strings. UNCONFIRMED: the INQUIRY field sizes, not read in scst_vdisk.c.</summary>
    private static readonly ImmutableArray<(string Name, int Max)> IdentityAttrs =
    [
        ("eui64_id", 32), ("naa_id", 32), ("prod_id", 16), ("t10_vend_id", 8), ("vend_specific_id", 128),
        ("prod_rev_lvl", 4), ("inq_vend_specific", 128), ("scsi_device_name", 256),
    ];

    private VDir DeviceDir(ScstDevice d) => Dir(d.Name, () => DeviceEntries(d));

    private IEnumerable<VNode> DeviceEntries(ScstDevice d)
    {
        string dir = $"devices/{d.Name}";
        yield return Dir(
            "exported",
            () => d.Exports.Select(l => (VNode)ExportedLink(l, dir)),
            name => d.Exports.Find(l => string.Equals(l.ExportName, name, StringComparison.Ordinal)) is { } l ? ExportedLink(l, dir) : null);
        yield return Ro("type", () => VdiskHandlers.TypeText(d.ScsiType) + "\n");
        if (d.Handler is not { } h)
        {
            // A SCSI disk of the machine that no handler drives: no handler link (F), no handler attributes.
            yield break;
        }

        yield return new VLink("handler", $"../../handlers/{h.Name}");
        yield return Rw("threads_num", () => Key(d.ThreadsNum, d.ThreadsNum != h.DefaultThreadsNum), t => StoreThreadsNum(d, t));
        yield return Rw("threads_pool_type", () => ThreadsPoolTypeText(d), t => StoreThreadsPoolType(d, t));
        yield return Rw("block", () => "0 0\n", t => StoreBlock(t));
        yield return Ro("pr_state", () => "0\n"); // UNCONFIRMED format; A.2 lists the file.
        yield return Wo("dump_prs", _ => StoreResult.Ok);
        yield return Rw("max_tgt_dev_commands", () => $"{d.MaxTgtDevCommands}\n", t => StoreULong(t, v => d.MaxTgtDevCommands = v));
        yield return Ro("numa_node_id", () => $"{d.NumaNodeId}\n");

        // Read-only: as created (A.4).
        yield return Ro("blocksize", () => Key(d.BlockSize, d.BlockSize != (h.Kind == HandlerKind.CdRom ? 2048 : 512)));
        yield return Ro("read_only", () => Key(Bit(d.ReadOnly), d.ReadOnly != (h.Kind == HandlerKind.CdRom)));
        yield return Ro("removable", () => Key(Bit(d.Removable), d.Removable != (h.Kind == HandlerKind.CdRom)));
        yield return Ro("rotational", () => Key(Bit(d.Rotational), !d.Rotational));
        yield return Ro("tst", () => Key(d.Tst, d.Tst != 1));
        if (h.HasFile)
        {
            yield return Ro("write_through", () => Key(Bit(d.WriteThrough), d.WriteThrough));
            yield return Ro("nv_cache", () => Key(Bit(d.NvCache), d.NvCache));
            yield return Ro("thin_provisioned", () => Key(Bit(d.ThinProvisioned), d.ThinProvisioned));
        }

        if (h.Kind == HandlerKind.FileIo)
        {
            yield return Ro("o_direct", () => Key(Bit(d.ODirect), d.ODirect));
            yield return Ro("async", () => Key(Bit(d.Async), d.Async));
        }

        if (h.Kind == HandlerKind.NullIo)
        {
            yield return Ro("dummy", () => Key(Bit(d.Dummy), d.Dummy));
        }

        // size: F saw "[key]" on it for vdisk_blockio. For fileio (and vcdrom) size and size_mb are read-only.
        bool sizeKey = h.HasFile || (h.Kind == HandlerKind.NullIo && d.Size != 5L * 1024 * 1024 * 1024 * 1024 / 2);
        if (h.Kind is HandlerKind.BlockIo or HandlerKind.NullIo)
        {
            yield return Rw("size", () => Key(d.Size, sizeKey), t => StoreSize(d, t, shift: 0));
            yield return Rw("size_mb", () => $"{d.Size >> 20}\n", t => StoreSize(d, t, shift: 20));
        }
        else
        {
            yield return Ro("size", () => Key(d.Size, sizeKey));
            yield return Ro("size_mb", () => $"{d.Size >> 20}\n");
        }

        if (h.HasFile || h.Kind == HandlerKind.CdRom)
        {
            // A.3: reading filename is itself a (read-only) queued work, so it can fail with EAGAIN.
            yield return new VFile("filename", ModeRw, () => ShowResult.Queued(() => ShowFilename(d)), t => StoreFilename(d, t));
        }

        if (h.HasFile)
        {
            yield return Rw("active", () => Key(Bit(d.Active), !d.Active), t => StoreActive(d, t));
            yield return Wo("resync_size", _ => StoreResult.Queued(() => model.Devices.Resync(d)));
            yield return Wo("sync", _ => StoreResult.Queued(() => !d.Alive ? Errno.ENODEV : d.Active ? 0 : Errno.EMEDIUMTYPE));
        }

        yield return Rw("t10_dev_id", () => Key(d.T10DevId, d.T10DevIdSet), t => StoreT10DevId(d, t));
        yield return Rw("usn", () => Key(d.Usn, d.UsnSet), t => StoreUsn(d, t));
        foreach ((string name, int max) in IdentityAttrs)
        {
            yield return Rw(name, () => IdentityText(d, name), t => StoreIdentity(d, name, max, t));
        }

        yield return Rw("opt_trans_len", () => $"{(d.Identity.TryGetValue("opt_trans_len", out var v) ? v.Value : "524288")}\n", t => StoreNumberIdentity(d, "opt_trans_len", t));
        yield return Rw("lb_per_pb_exp", () => $"{(d.Identity.TryGetValue("lb_per_pb_exp", out var v) ? v.Value : "0")}\n", t => StoreNumberIdentity(d, "lb_per_pb_exp", t));
        yield return Rw("cluster_mode", () => Key(Bit(d.ClusterMode), d.ClusterMode), t => StoreSwitch(t, v => d.ClusterMode = v == 1));
        yield return Rw("expl_alua", () => Key(Bit(d.ExplAlua), d.ExplAlua), t => StoreSwitch(t, v => d.ExplAlua = v == 1));
    }

    private static VLink ExportedLink(ScstLun l, string deviceDir) => new(l.ExportName, Rel($"{deviceDir}/exported", LunPath(l)));

    private static string LunPath(ScstLun l)
    {
        ScstTarget t = l.Acg.Target;
        string target = $"targets/{t.Driver.Name}/{t.Name}";
        return l.Acg.IsDefault ? $"{target}/luns/{l.Number}" : $"{target}/ini_groups/{l.Acg.Name}/luns/{l.Number}";
    }

    private static ShowResult ShowFilename(ScstDevice d) =>
        d.Alive ? ShowResult.Ok($"{d.Filename}\n[key]\n") : ShowResult.Fail(Errno.ENODEV);

    private StoreResult StoreFilename(ScstDevice d, string text)
    {
        string path = text.Trim();
        return StoreResult.Queued(() => model.Devices.SetFilename(d, path));
    }

    private StoreResult StoreActive(ScstDevice d, string text)
    {
        int errno = KernelNumbers.ParseULong(text, out ulong v);
        return errno != 0 ? StoreResult.Fail(errno) : StoreResult.Queued(() => model.Devices.SetActive(d, v != 0));
    }

    private StoreResult StoreSize(ScstDevice d, string text, int shift)
    {
        int errno = KernelNumbers.ParseULong(text, out ulong v);
        if (errno != 0)
        {
            return StoreResult.Fail(errno);
        }

        if (shift > 0 && v > (ulong.MaxValue >> shift))
        {
            return StoreResult.Fail(Errno.ERANGE);
        }

        return StoreResult.Queued(() => model.Devices.SetSize(d, v << shift));
    }

    /// <summary>
    /// t10_dev_id (A.4: at most 25 characters). Written at once, not queued. An empty value brings the
    /// default back. UNCONFIRMED: that blanks inside the value are refused.
    /// </summary>
    private StoreResult StoreT10DevId(ScstDevice d, string text)
    {
        string value = text.EndsWith('\n') ? text[..^1] : text;
        if (value.Length > DeviceManager.MaxT10DevIdLength || value.Any(ScstLexer.IsSpace))
        {
            Log.Error(Src, $"T10 device id is too long or invalid (device {d.Name})");
            return StoreResult.Fail(Errno.EINVAL);
        }

        if (value.Length == 0)
        {
            string id = $"{DefaultIdNumber(d)}-{d.Name}";
            d.T10DevId = id.Length > DeviceManager.MaxT10DevIdLength ? id[..DeviceManager.MaxT10DevIdLength] : id;
            d.T10DevIdSet = false;
        }
        else
        {
            d.T10DevId = value;
            d.T10DevIdSet = true;
        }

        return StoreResult.Ok;
    }

    /// <summary>usn: at most 20 characters (A.4), written after add_device. An empty value brings the default back.</summary>
    private StoreResult StoreUsn(ScstDevice d, string text)
    {
        string value = text.EndsWith('\n') ? text[..^1] : text;
        if (value.Length > DeviceManager.MaxUsnLength || value.Any(ScstLexer.IsSpace))
        {
            Log.Error(Src, $"USN is too long or invalid (device {d.Name})");
            return StoreResult.Fail(Errno.EINVAL);
        }

        d.Usn = value.Length == 0 ? DefaultIdNumber(d) : value;
        d.UsnSet = value.Length != 0;
        return StoreResult.Ok;
    }

    private string DefaultIdNumber(ScstDevice d) => (((ulong)S.SetupId << 32) | d.DevIdNum).ToString("x", System.Globalization.CultureInfo.InvariantCulture);

    private static string IdentityText(ScstDevice d, string name)
    {
        if (d.Identity.TryGetValue(name, out (string Value, bool Set) v))
        {
            return Key(v.Value, v.Set);
        }

        string value = name switch
        {
            "prod_id" => d.Name.Length > 16 ? d.Name[..16] : d.Name,
            "t10_vend_id" => d.Handler!.Vendor,
            "vend_specific_id" => d.T10DevId,
            "prod_rev_lvl" => " 320",
            _ => "",
        };
        return Key(value, false);
    }

    private static StoreResult StoreIdentity(ScstDevice d, string name, int max, string text)
    {
        string value = text.EndsWith('\n') ? text[..^1] : text;
        if (value.Length > max)
        {
            return StoreResult.Fail(Errno.EINVAL);
        }

        if (value.Length == 0)
        {
            d.Identity.Remove(name);
        }
        else
        {
            d.Identity[name] = (value, true);
        }

        return StoreResult.Ok;
    }

    private static StoreResult StoreNumberIdentity(ScstDevice d, string name, string text)
    {
        int errno = KernelNumbers.ParseULong(text, out ulong v);
        if (errno != 0)
        {
            return StoreResult.Fail(errno);
        }

        d.Identity[name] = (v.ToString(System.Globalization.CultureInfo.InvariantCulture), true);
        return StoreResult.Ok;
    }

    private static string ThreadsPoolTypeText(ScstDevice d) => d.ThreadsNum switch
    {
        0 => "Async\n",
        < 0 => "Not valid\n",
        _ => Key(d.ThreadsPoolType, d.ThreadsPoolType != "per_initiator"),
    };

    /// <summary>threads_num: checked at once, carried out by a queued work (scst_sysfs.c).</summary>
    private StoreResult StoreThreadsNum(ScstDevice d, string text)
    {
        int errno = KernelNumbers.ParseLong(text, out long v);
        if (errno != 0)
        {
            return StoreResult.Fail(errno);
        }

        if (v < 0 || v > int.MaxValue)
        {
            Log.Error("scst", $"Illegal threads num value {v}");
            return StoreResult.Fail(Errno.EINVAL);
        }

        if (v == d.ThreadsNum)
        {
            return StoreResult.Ok;
        }

        return StoreResult.Queued(() =>
        {
            if (!d.Alive)
            {
                return Errno.ENODEV;
            }

            d.ThreadsNum = (int)v;
            Log.Info("scst", $"Changed cmd threads num to {v}");
            return 0;
        });
    }

    private StoreResult StoreThreadsPoolType(ScstDevice d, string text)
    {
        string value = text.Trim();
        string? type = value.Equals("per_initiator", StringComparison.OrdinalIgnoreCase) ? "per_initiator"
            : value.Equals("shared", StringComparison.OrdinalIgnoreCase) ? "shared" : null;
        if (type is null)
        {
            Log.Error("scst", $"Illegal threads pool type {value}");
            return StoreResult.Fail(Errno.EINVAL);
        }

        if (type == d.ThreadsPoolType)
        {
            return StoreResult.Ok;
        }

        return StoreResult.Queued(() =>
        {
            if (!d.Alive)
            {
                return Errno.ENODEV;
            }

            d.ThreadsPoolType = type;
            return 0;
        });
    }

    private static StoreResult StoreBlock(string text)
    {
        int errno = KernelNumbers.ParseLong(new ScstLexer(text).NextLexem(), out _);
        return errno != 0 ? StoreResult.Fail(errno) : StoreResult.Ok;
    }

    private static StoreResult StoreULong(string text, Action<ulong> set)
    {
        int errno = KernelNumbers.ParseULong(text, out ulong v);
        if (errno != 0)
        {
            return StoreResult.Fail(errno);
        }

        set(v);
        return StoreResult.Ok;
    }
}
