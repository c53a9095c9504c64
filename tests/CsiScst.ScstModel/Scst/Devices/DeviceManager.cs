using System.Collections.Immutable;
using System.Globalization;
using System.Numerics;
using CsiScst.ScstModel.Scst.Targets;

namespace CsiScst.ScstModel.Scst.Devices;

/// <summary>
/// handlers/&lt;h&gt;/mgmt (add_device / del_device) and the life of devices (interfaces.md A.4).
/// The order of checks follows vdev_create, vdev_parse_add_dev_params and vdisk_get_file_size.
/// </summary>
internal sealed class DeviceManager(ScstSystem model)
{
    public const int MaxNameLength = 64;
    public const int MaxT10DevIdLength = 25;
    public const int MaxUsnLength = 20;

    private const string Src = "dev_vdisk";

    /// <summary>Names a device cannot take: they would collide with the handler directory's own files.</summary>
    private static readonly ImmutableArray<string> HandlerDirFiles = ["mgmt", "type", "trace_level"];

    private ScstState S => model.State;

    private KernelLog Log => model.Log;

    public string MgmtHelp(ScstHandler h) =>
        "Usage: echo \"add_device device_name [parameters]\" >mgmt\n" +
        "       echo \"del_device device_name\" >mgmt\n" +
        "\n" +
        "where parameters are one or more param_name=value pairs separated by ';'\n\n" +
        (h.Kind == HandlerKind.CdRom ? "" : $"The following parameters available: {VdiskHandlers.ParamList(h)}.\n");

    /// <summary>The queued work of one write to handlers/&lt;h&gt;/mgmt.</summary>
    public int ProcessMgmt(ScstHandler h, string text)
    {
        var lx = new ScstLexer(text);
        string verb = lx.NextLexem();
        if (verb.Equals("add_device", StringComparison.OrdinalIgnoreCase))
        {
            string name = lx.NextLexem();
            if (name.Length == 0)
            {
                Log.Error("scst", "Device name required");
                return Errno.EINVAL;
            }

            return AddDevice(h, name, lx);
        }

        if (verb.Equals("del_device", StringComparison.OrdinalIgnoreCase))
        {
            string name = lx.NextLexem();
            if (name.Length == 0)
            {
                Log.Error("scst", "Device name required");
                return Errno.EINVAL;
            }

            string extra = lx.NextLexem();
            if (extra.Length != 0)
            {
                Log.Error("scst", $"Syntax error on \"{extra}\"");
                return Errno.EINVAL;
            }

            return DelDevice(name);
        }

        Log.Error("scst", $"Unknown action \"{verb}\"");
        return Errno.EINVAL;
    }

    private int AddDevice(ScstHandler h, string name, ScstLexer lx)
    {
        // UNCONFIRMED: the errno of a too long name; vdev_create answers EINVAL for it.
        if (name.Length > MaxNameLength)
        {
            Log.Error(Src, $"Name {name} is too long (max allowed {MaxNameLength})");
            return Errno.EINVAL;
        }

        if (name.Contains('/', StringComparison.Ordinal))
        {
            Log.Error(Src, $"Invalid device name {name}");
            return Errno.EINVAL;
        }

        // interfaces.md F: a duplicate device name gives EEXIST and nothing in the kernel log.
        if (S.Devices.ContainsKey(name))
        {
            return Errno.EEXIST;
        }

        var dev = new ScstDevice(name, h, h.ScsiType) { ThreadsNum = h.DefaultThreadsNum };
        if (h.Kind == HandlerKind.BlockIo)
        {
            dev.BindAluaState = true;
        }

        if (h.Kind == HandlerKind.NullIo)
        {
            dev.Size = 5L * 1024 * 1024 * 1024 * 1024 / 2;
        }

        if (h.Kind == HandlerKind.CdRom)
        {
            dev.ReadOnly = true;
            dev.Removable = true;
            dev.BlockSize = 2048;
        }

        int errno = ParseParams(h, dev, lx);
        if (errno != 0)
        {
            return errno;
        }

        if (h.Kind == HandlerKind.FileIo && dev.ReadOnly && (dev.WriteThrough || dev.NvCache))
        {
            Log.Error(Src, $"Write options on read only device {name}");
            return Errno.EINVAL;
        }

        if (h.HasFile && dev.Filename is null)
        {
            Log.Error(Src, $"File name required (device {name})");
            return Errno.EINVAL;
        }

        if (h.Kind == HandlerKind.NullIo && dev.Size % dev.BlockSize != 0)
        {
            Log.Error(Src, $"Size {dev.Size} of device {name} is not a multiple of the block size {dev.BlockSize}");
            return Errno.EINVAL;
        }

        if (h.HasFile && dev.Active)
        {
            errno = BackingFile.Probe(dev.Filename!, out long size);
            if (errno != 0)
            {
                Log.Error(Src, $"Unable to open file {dev.Filename} ({-errno})");
                return errno;
            }

            dev.Size = size;
        }

        if (HandlerDirFiles.Contains(name))
        {
            Log.Error("scst", $"Can't create handler link for dev {name}");
            return Errno.EEXIST;
        }

        Register(dev);
        Log.Info(Src, $"Attached SCSI target virtual {(h.ScsiType == 5 ? "cdrom" : "disk")} {name} " +
            $"(file=\"{dev.Filename}\", fs={dev.Size >> 20}MB, bs={dev.BlockSize}, nblocks={dev.Size / dev.BlockSize})");
        return 0;
    }

    private int ParseParams(ScstHandler h, ScstDevice dev, ScstLexer lx)
    {
        while (lx.NextTokenString() is { } token)
        {
            var plx = new ScstLexer(token);
            string p = plx.NextLexem();
            if (p.Length == 0)
            {
                Log.Error(Src, $"Syntax error at {token} (device {dev.Name})");
                return Errno.EINVAL;
            }

            bool known = h.AllowedParams?.Contains(p) ?? VdiskHandlers.KnownParams.Contains(p);
            if (!known)
            {
                Log.Error(Src, $"Unknown parameter {p} (device {dev.Name})");
                return Errno.EINVAL;
            }

            string value = plx.NextLexem();
            if (value.Length == 0)
            {
                Log.Error(Src, $"Parameter {p} value missed for device {dev.Name}");
                return Errno.EINVAL;
            }

            if (plx.NextLexem().Length != 0)
            {
                Log.Error(Src, $"Too many parameter's {p} values (device {dev.Name})");
                return Errno.EINVAL;
            }

            int errno = ApplyParam(dev, p.ToLowerInvariant(), value);
            if (errno != 0)
            {
                return errno;
            }
        }

        return 0;
    }

    private int ApplyParam(ScstDevice dev, string p, string value)
    {
        switch (p)
        {
            case "filename":
                if (!value.StartsWith('/'))
                {
                    Log.Error(Src, $"Filename {value} must be global (device {dev.Name})");
                    return Errno.EINVAL;
                }

                dev.Filename = value;
                return 0;

            case "t10_dev_id":
                if (value.Length > MaxT10DevIdLength)
                {
                    Log.Error(Src, $"T10 device id {value} is too long (max {MaxT10DevIdLength}) (device {dev.Name})");
                    return Errno.EINVAL;
                }

                dev.T10DevId = value;
                dev.T10DevIdSet = true;
                return 0;

            case "dif_filename":
                dev.Identity["dif_filename"] = (value, true);
                return 0;
        }

        int errno = KernelNumbers.ParseULong(value, out ulong v);
        if (errno != 0)
        {
            Log.Error(Src, $"strtoul() for {value} failed: {-errno} (device {dev.Name})");
            return errno;
        }

        // The flags are one-bit fields in struct scst_vdisk_dev: the assignment keeps the low bit.
        bool bit = (v & 1) != 0;
        switch (p)
        {
            case "blocksize":
                return SetBlockSize(dev, v);
            case "read_only":
                dev.ReadOnly = bit;
                break;
            case "write_through":
                dev.WriteThrough = bit;
                break;
            case "nv_cache":
                dev.NvCache = bit;
                break;
            case "o_direct":
                dev.ODirect = bit;
                break;
            case "async":
                dev.Async = bit;
                break;
            case "rotational":
                dev.Rotational = bit;
                break;
            case "thin_provisioned":
                dev.ThinProvisioned = bit;
                break;
            case "removable":
                dev.Removable = bit;
                break;
            case "active":
                dev.Active = bit;
                break;
            case "bind_alua_state":
                dev.BindAluaState = bit;
                break;
            case "cluster_mode":
                dev.ClusterMode = bit;
                break;
            case "tst":
                if (v > 1)
                {
                    Log.Error(Src, $"Invalid TST value {v} (device {dev.Name})");
                    return Errno.EINVAL;
                }

                dev.Tst = (int)v;
                break;
            case "dummy":
                if (v > 1)
                {
                    return Errno.EINVAL;
                }

                dev.Dummy = bit;
                break;
            case "size":
                dev.Size = (long)Math.Min(v, long.MaxValue);
                break;
            case "size_mb":
                dev.Size = (long)Math.Min(v, long.MaxValue >> 20) << 20;
                break;
            case "numa_node_id":
                dev.NumaNodeId = unchecked((int)v);
                break;
            case "dif_mode":
                dev.DifMode = unchecked((int)v);
                break;
            case "dif_type":
                dev.DifType = unchecked((int)v);
                break;
            default:
                // dif_static_app_tag, lb_per_pb_exp: accepted and kept.
                dev.Identity[p] = (v.ToString(CultureInfo.InvariantCulture), true);
                break;
        }

        return 0;
    }

    /// <summary>
    /// scst_calc_block_shift: a size that is no power of two is rounded down with a warning
    /// (interfaces.md A.4); below 512 it is EINVAL.
    /// </summary>
    private int SetBlockSize(ScstDevice dev, ulong v)
    {
        ulong rounded = v == 0 ? 0 : 1UL << (63 - BitOperations.LeadingZeroCount(v));
        if (rounded != v)
        {
            Log.Warning("scst", $"Requested block size {v} is not a power of 2, using {rounded}");
        }

        if (rounded < 512 || rounded > int.MaxValue)
        {
            Log.Error(Src, $"Invalid block size {v} (device {dev.Name})");
            return Errno.EINVAL;
        }

        dev.BlockSize = (int)rounded;
        return 0;
    }

    private int DelDevice(string name)
    {
        // vdisk keeps one list for all its handlers: any vdisk handler's mgmt deletes any vdisk device.
        if (!S.Devices.TryGetValue(name, out ScstDevice? dev) || dev.Handler is null)
        {
            Log.Error(Src, $"Device {name} not found");
            return Errno.EINVAL;
        }

        Unregister(dev);
        Log.Info(Src, $"Virtual device {name} unregistered");
        return 0;
    }

    /// <summary>Registers a device: devices/NAME, the handler links and its copy_manager LUN.</summary>
    public void Register(ScstDevice dev)
    {
        if (dev.Handler is not null)
        {
            dev.DevIdNum = Crc32C(dev.Name);
            ulong idNum = ((ulong)S.SetupId << 32) | dev.DevIdNum;
            string hex = idNum.ToString("x", CultureInfo.InvariantCulture);
            if (!dev.T10DevIdSet)
            {
                string id = $"{hex}-{dev.Name}";
                dev.T10DevId = id.Length > MaxT10DevIdLength ? id[..MaxT10DevIdLength] : id;
            }

            dev.Usn = hex.Length > MaxUsnLength ? hex[..MaxUsnLength] : hex;
        }

        S.Devices.Add(dev.Name, dev);

        // The copy manager gives every new device a LUN of copy_manager_tgt, at the first free number.
        // UNCONFIRMED for SCSI disks of the machine; the model only does it for handler devices.
        if (dev.Handler is not null)
        {
            ScstAcg cm = S.CopyManagerTarget.DefaultAcg;
            ulong lun = 0;
            while (cm.Luns.ContainsKey(lun))
            {
                lun++;
            }

            model.Luns.AddLun(cm, lun, dev, readOnly: false);
        }
    }

    /// <summary>Removes the device from every LUN set that exports it, then unregisters it (A.4).</summary>
    public void Unregister(ScstDevice dev)
    {
        foreach (ScstLun lun in dev.Exports.ToList())
        {
            LunManager.RemoveLun(lun);
        }

        dev.Alive = false;
        S.Devices.Remove(dev.Name);
    }

    /// <summary>The .model/scsi_disk control: a SCSI disk of the machine, without handler (F).</summary>
    public int AddScsiDisk(string hctl)
    {
        string[] parts = hctl.Split(':');
        if (parts.Length != 4 || !parts.All(p => p.Length > 0 && p.All(char.IsAsciiDigit)))
        {
            return Errno.EINVAL;
        }

        if (S.Devices.ContainsKey(hctl))
        {
            return Errno.EEXIST;
        }

        Register(new ScstDevice(hctl, null, 0));
        Log.Info("scst", $"Attached to scsi{parts[0]}, channel {parts[1]}, id {parts[2]}, lun {parts[3]}, type 0");
        return 0;
    }

    public int RemoveScsiDisk(string hctl)
    {
        if (!S.Devices.TryGetValue(hctl, out ScstDevice? dev) || dev.Handler is not null)
        {
            return Errno.ENOENT;
        }

        Unregister(dev);
        Log.Info("scst", $"Detached from scsi{hctl}");
        return 0;
    }

    /// <summary>Re-reads the size of the backing file (resync_size, A.4).</summary>
    public int Resync(ScstDevice dev)
    {
        if (!dev.Alive)
        {
            return Errno.ENODEV;
        }

        if (!dev.Active)
        {
            Log.Error(Src, $"Resync of inactive device {dev.Name}");
            return Errno.EMEDIUMTYPE;
        }

        int errno = BackingFile.Probe(dev.Filename!, out long size);
        if (errno != 0)
        {
            Log.Error(Src, $"Unable to open file {dev.Filename} ({-errno})");
            return errno;
        }

        if (size != dev.Size)
        {
            Log.Info(Src, $"Size of virtual disk {dev.Name} changed from {dev.Size >> 20}MB to {size >> 20}MB");
            dev.Size = size;
        }

        return 0;
    }

    /// <summary>Writing "active": 0 closes the backing file, 1 opens it again.</summary>
    public int SetActive(ScstDevice dev, bool active)
    {
        if (!dev.Alive)
        {
            return Errno.ENODEV;
        }

        if (active && !dev.Active)
        {
            int errno = BackingFile.Probe(dev.Filename!, out long size);
            if (errno != 0)
            {
                Log.Error(Src, $"Unable to open file {dev.Filename} ({-errno})");
                return errno;
            }

            dev.Size = size;
        }

        dev.Active = active;
        return 0;
    }

    /// <summary>
    /// Writing "filename". UNCONFIRMED: that SCST takes a new path at any time; the model checks it as
    /// add_device does and reads the new size when the device is active.
    /// </summary>
    public int SetFilename(ScstDevice dev, string path)
    {
        if (!dev.Alive)
        {
            return Errno.ENODEV;
        }

        if (!path.StartsWith('/'))
        {
            Log.Error(Src, $"Filename {path} must be global (device {dev.Name})");
            return Errno.EINVAL;
        }

        long size = dev.Size;
        if (dev.Active)
        {
            int errno = BackingFile.Probe(path, out size);
            if (errno != 0)
            {
                Log.Error(Src, $"Unable to open file {path} ({-errno})");
                return errno;
            }
        }

        dev.Filename = path;
        dev.Size = size;
        return 0;
    }

    /// <summary>Writing size (bytes) on blockio/nullio: the capacity, a multiple of the block size.</summary>
    public int SetSize(ScstDevice dev, ulong bytes)
    {
        if (!dev.Alive)
        {
            return Errno.ENODEV;
        }

        if (bytes % (ulong)dev.BlockSize != 0 || bytes > long.MaxValue)
        {
            Log.Error(Src, $"Size {bytes} is not a multiple of the block size {dev.BlockSize} (device {dev.Name})");
            return Errno.EINVAL;
        }

        dev.Size = (long)bytes;
        return 0;
    }

    /// <summary>crc32c(0, name, strlen(name) + 1): the kernel's raw CRC32C with seed 0, over the name and its NUL.</summary>
    private static uint Crc32C(string name)
    {
        uint crc = 0;
        foreach (byte b in System.Text.Encoding.UTF8.GetBytes(name).Append((byte)0))
        {
            crc ^= b;
            for (int i = 0; i < 8; i++)
            {
                crc = (crc & 1) != 0 ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
            }
        }

        return crc;
    }
}
