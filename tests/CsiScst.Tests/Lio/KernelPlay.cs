using System.Text;
using System.Text.RegularExpressions;
using CsiScst.Targets.Lio;

namespace CsiScst.Tests.Lio;

/// <summary>
/// Plays the kernel's part on a plain temporary directory so the engine's real system calls (through
/// <see cref="LinuxConfigfs"/>) can be checked: when the engine makes a LIO object, this creates the attribute
/// files and default groups the kernel would (tree shape and default values as read in drivers/target), applies
/// the few kernel rules the engine depends on, removes kernel-made content on rmdir (ENOTEMPTY while user-made
/// children remain, as configfs does), and records every mutating call in order. It shares no code with the engine.
/// </summary>
internal sealed partial class KernelPlay : IConfigfs, IDisposable
{
    private readonly LinuxConfigfs _real = new();
    private readonly HashSet<string> _userMade = new(StringComparer.Ordinal);
    private readonly Dictionary<(string Op, string Path), int> _faults = new();

    public KernelPlay()
    {
        Base = Path.Combine(Path.GetTempPath(), "csi-scst-lio-" + Guid.NewGuid().ToString("N"));
        Root = Base + "/target";
        Directory.CreateDirectory(Root + "/core/alua/lu_gps/default_lu_gp");
        Directory.CreateDirectory(Base + "/files");
    }

    /// <summary>Holds the configfs stand-in and backing files.</summary>
    public string Base { get; }

    /// <summary>Stand-in for /sys/kernel/config/target.</summary>
    public string Root { get; }

    /// <summary>Every mutating call, relative to <see cref="Root"/>: "mkdir X", "rmdir X", "write X=V", "symlink X -> Y", "unlink X".</summary>
    public List<string> Log { get; } = [];

    /// <summary>Every directory listed (bulk-read checks).</summary>
    public List<string> Listed { get; } = [];

    public void Dispose()
    {
        try
        {
            Directory.Delete(Base, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    /// <summary>Makes the next <paramref name="op"/> on <paramref name="relativePath"/> fail with <paramref name="errno"/> (once).</summary>
    public void Fail(string op, string relativePath, int errno) => _faults[(op, relativePath)] = errno;

    public string Rel(string path) => path.StartsWith(Root, StringComparison.Ordinal) ? path[Root.Length..].TrimStart('/') : path;

    public string Abs(string relative) => Root + "/" + relative;

    public string Content(string relative) => File.ReadAllText(Abs(relative));

    public bool Exists(string relative) => Path.Exists(Abs(relative)) || new FileInfo(Abs(relative)).LinkTarget is not null;

    public void ClearLog() => Log.Clear();

    public IEnumerable<string> Mutations => Log;

    /// <summary>What `rmdir` of every object (or a module reload) leaves: core/ with its alua group, nothing else.</summary>
    public void Wipe()
    {
        foreach (var entry in Directory.EnumerateFileSystemEntries(Root))
        {
            if (new FileInfo(entry).LinkTarget is not null || File.Exists(entry))
            {
                File.Delete(entry);
            }
            else
            {
                Directory.Delete(entry, recursive: true);
            }
        }
        _userMade.Clear();
        Directory.CreateDirectory(Root + "/core/alua/lu_gps/default_lu_gp");
    }

    /// <summary>An initiator logged in: the ACL's info as lio_target_nacl_info_show prints it.</summary>
    public void SetSession(string aclRelative, string initiator, string address)
    {
        var text = new StringBuilder()
            .Append("InitiatorName: ").Append(initiator).Append('\n')
            .Append("InitiatorAlias: node-a\n")
            .Append("LIO Session ID: 3   ISID: 0x00023d000001  TSIH: 2  SessionType: Normal\n")
            .Append("Session State: TARG_SESS_STATE_LOGGED_IN\n")
            .Append("---------------------[iSCSI Session Values]-----------------------\n")
            .Append("  CmdSN/WR  :  CmdSN/WC  :  ExpCmdSN  :  MaxCmdSN  :     ITT    :     TTT\n")
            .Append(" 0x00000040   0x00000040   0x00000012   0x00000051   0x0000000a   0xffffffff\n")
            .Append("----------------------[iSCSI Connections]-------------------------\n")
            .Append("CID: 0  Connection State: TARG_CONN_STATE_LOGGED_IN\n")
            .Append("   Address ").Append(address).Append(" TCP  StatSN: 0x6916c3e9\n")
            .ToString();
        File.WriteAllText(Abs(aclRelative + "/info"), text);
    }

    public void SetFile(string relative, string content) => File.WriteAllText(Abs(relative), content);

    // ------------------------------------------------------------------ IConfigfs

    public int MakeDirectory(string path)
    {
        if (Fault("mkdir", path) is { } injected)
        {
            return injected;
        }
        var errno = _real.MakeDirectory(path);
        if (errno != 0)
        {
            return errno;
        }
        Log.Add("mkdir " + Rel(path));
        _userMade.Add(path);
        Populate(path);
        return 0;
    }

    public int RemoveDirectory(string path)
    {
        if (Fault("rmdir", path) is { } injected)
        {
            return injected;
        }
        if (!Directory.Exists(path))
        {
            return _real.RemoveDirectory(path);
        }
        var prefix = path + "/";
        if (_userMade.Any(p => p.StartsWith(prefix, StringComparison.Ordinal)))
        {
            return 39; // ENOTEMPTY: configfs keeps a group while user-made children remain
        }
        foreach (var entry in Directory.EnumerateFileSystemEntries(path))
        {
            if (new FileInfo(entry).LinkTarget is not null)
            {
                File.Delete(entry);
            }
            else if (Directory.Exists(entry))
            {
                Directory.Delete(entry, recursive: true);
            }
            else
            {
                File.Delete(entry);
            }
        }
        var errno = _real.RemoveDirectory(path);
        if (errno == 0)
        {
            Log.Add("rmdir " + Rel(path));
            _userMade.Remove(path);
        }
        return errno;
    }

    public int CreateSymlink(string target, string linkPath)
    {
        if (Fault("symlink", linkPath) is { } injected)
        {
            return injected;
        }
        var linkDir = Path.GetDirectoryName(linkPath)!;
        // target_fabric_port_link: only a configured (enabled) backstore can be linked to a LUN (ENODEV).
        if (Rel(linkDir).Contains("/lun/lun_", StringComparison.Ordinal) && !Rel(linkDir).Contains("/acls/", StringComparison.Ordinal)
            && (!File.Exists(target + "/enable") || File.ReadAllText(target + "/enable").Trim() != "1"))
        {
            return 19;
        }
        var errno = _real.CreateSymlink(target, linkPath);
        if (errno == 0)
        {
            Log.Add($"symlink {Rel(linkPath)} -> {Rel(target)}");
            _userMade.Add(linkPath);
        }
        return errno;
    }

    public int RemoveLink(string path)
    {
        if (Fault("unlink", path) is { } injected)
        {
            return injected;
        }
        var errno = _real.RemoveLink(path);
        if (errno == 0)
        {
            Log.Add("unlink " + Rel(path));
            _userMade.Remove(path);
        }
        return errno;
    }

    public int Write(string path, string value)
    {
        if (Fault("write", path) is { } injected)
        {
            return injected;
        }
        if (!File.Exists(path))
        {
            return _real.Write(path, value); // ENOENT from the real call
        }
        var rule = Store(path, value);
        if (rule != 0)
        {
            return rule;
        }
        // A store replaces the attribute's value: the plain file is truncated first, then the real write(2) runs.
        File.WriteAllText(path, "");
        var errno = _real.Write(path, value);
        if (errno == 0)
        {
            Log.Add($"write {Rel(path)}={value}");
            AfterStore(path, value);
        }
        return errno;
    }

    public (int Errno, string Value) Read(string path) => _real.Read(path);

    public string? ReadLink(string path) => _real.ReadLink(path);

    public IReadOnlyList<ConfigfsEntry> List(string path)
    {
        Listed.Add(Rel(path));
        return _real.List(path);
    }

    public bool DirectoryExists(string path) => _real.DirectoryExists(path);

    // ------------------------------------------------------------------ the kernel's part

    private int? Fault(string op, string path)
    {
        if (_faults.Remove((op, Rel(path)), out var errno))
        {
            return errno;
        }
        return null;
    }

    private void Populate(string path)
    {
        var rel = Rel(path);
        var parts = rel.Split('/');
        if (rel == "iscsi")
        {
            Dirs(path, "discovery_auth");
            Files(path + "/discovery_auth", ("userid", "NULL\n"), ("password", "NULL\n"), ("userid_mutual", "NULL\n"), ("password_mutual", "NULL\n"), ("enforce_discovery_auth", "0\n"));
            Files(path, ("lio_version", "Datera Inc. iSCSI Target v4.1.0\n"));
        }
        else if (parts is ["core", _])
        {
            Files(path, ("hba_info", "HBA Index: 1 plugin: iblock version: v5.0\n"), ("hba_mode", "0\n"));
        }
        else if (parts is ["core", var hba, _])
        {
            var fileio = hba.StartsWith("fileio_", StringComparison.Ordinal);
            Files(path, ("control", ""), ("udev_path", "\n"), ("enable", "0\n"), ("alias", "\n"), ("lba_map", ""),
                ("info", fileio ? "Status: DEACTIVATED  Max Queue Depth: 0  SectorSize: 512  HwMaxSectors: 16384\n        TCM FILEIO ID: 0        File:   Size: 0  Mode: O_DSYNC Async: 0\n"
                               : "Status: DEACTIVATED  Max Queue Depth: 0  SectorSize: 512  HwMaxSectors: 0\n        iBlock device:   readonly: 0\n        Major: 0 Minor: 0\n"));
            Dirs(path, "attrib", "wwn", "pr", "alua", "statistics");
            Files(path + "/attrib", ("block_size", "512\n"), ("emulate_write_cache", "0\n"), ("emulate_tpu", "0\n"), ("emulate_tpws", "0\n"),
                ("emulate_fua_write", "1\n"), ("hw_block_size", "512\n"), ("queue_depth", "128\n"));
            Files(path + "/wwn", ("vpd_unit_serial", "T10 VPD Unit Serial Number: \n"), ("vendor_id", "LIO-ORG\n"));
        }
        else if (parts is ["iscsi", _])
        {
            Dirs(path, "fabric_statistics");
        }
        else if (parts is ["iscsi", _, _])
        {
            Files(path, ("enable", "0\n"), ("rtpi", "1\n"), ("dynamic_sessions", ""));
            Dirs(path, "lun", "acls", "np", "attrib", "auth", "param");
            Files(path + "/attrib", ("authentication", "1\n"), ("generate_node_acls", "0\n"), ("demo_mode_write_protect", "1\n"),
                ("cache_dynamic_acls", "0\n"), ("prod_mode_write_protect", "0\n"), ("demo_mode_discovery", "1\n"),
                ("login_timeout", "15\n"), ("default_cmdsn_depth", "64\n"), ("tpg_enabled_sendtargets", "1\n"));
            Files(path + "/auth", ("userid", "\n"), ("password", "\n"), ("userid_mutual", "\n"), ("password_mutual", "\n"), ("authenticate_target", "0\n"));
            Files(path + "/param", ("AuthMethod", "CHAP,None\n"), ("HeaderDigest", "CRC32C,None\n"));
        }
        else if (parts is ["iscsi", _, _, "lun", _])
        {
            Files(path, ("alua_tg_pt_gp", "TG Port Alias: default_tg_pt_gp\n"), ("alua_tg_pt_offline", "0\n"));
            Dirs(path, "statistics/scsi_tgt_port", "statistics/scsi_port", "statistics/scsi_transport");
            Files(path + "/statistics/scsi_tgt_port", ("in_cmds", "0\n"), ("read_mbytes", "0\n"), ("write_mbytes", "0\n"), ("hs_in_cmds", "0\n"));
        }
        else if (parts is ["iscsi", _, _, "np", _])
        {
            Files(path, ("iser", "0\n"), ("cxgbit", "0\n"));
        }
        else if (parts is ["iscsi", _, _, "acls", var initiator])
        {
            Files(path, ("info", $"No active iSCSI Session for Initiator Endpoint: {initiator}\n"), ("cmdsn_depth", "64\n"), ("tag", "\n"));
            Dirs(path, "attrib", "auth", "param", "fabric_statistics");
            Files(path + "/attrib", ("authentication", "-1\n"), ("dataout_timeout", "3\n"), ("nopin_timeout", "15\n"));
            Files(path + "/auth", ("userid", "\n"), ("password", "\n"), ("userid_mutual", "\n"), ("password_mutual", "\n"), ("authenticate_target", "0\n"));
        }
        else if (parts is ["iscsi", var iqn, var tpg, "acls", _, _])
        {
            // A new mapped LUN takes the TPG's prod_mode_write_protect (target_fabric_mappedlun_link).
            var prod = File.ReadAllText($"{Root}/iscsi/{iqn}/{tpg}/attrib/prod_mode_write_protect").Trim();
            Files(path, ("write_protect", prod + "\n"));
            Dirs(path, "statistics/scsi_auth_intr", "statistics/scsi_att_intr_port");
            Files(path + "/statistics/scsi_auth_intr", ("num_cmds", "0\n"), ("read_mbytes", "0\n"), ("write_mbytes", "0\n"));
        }
    }

    /// <summary>Refusals the engine relies on (errno as the kernel's store handlers return it).</summary>
    private int Store(string path, string value)
    {
        var rel = Rel(path);
        var parts = rel.Split('/');
        if (parts is ["core", _, _, "enable"])
        {
            var so = Path.GetDirectoryName(path)!;
            if (File.ReadAllText(path).Trim() == "1")
            {
                return 17; // EEXIST: target_configure_device on a configured device
            }
            var backing = File.ReadAllText(so + "/udev_path").Trim();
            if (!File.Exists(backing))
            {
                return 2; // ENOENT: the block device or file cannot be opened
            }
        }
        if (parts is ["core", var hba, _, "control"] && hba.StartsWith("iblock_", StringComparison.Ordinal)
            && File.ReadAllText(Path.GetDirectoryName(path) + "/enable").Trim() == "1")
        {
            return 17; // EEXIST: udev_path= while the block device is open
        }
        if (parts is ["core", _, _, "wwn", "vpd_unit_serial"] or ["core", _, _, "attrib", "block_size"])
        {
            var so = rel[..rel.IndexOf(parts[3] == "wwn" ? "/wwn/" : "/attrib/", StringComparison.Ordinal)];
            if (IsExported(Abs(so)))
            {
                return 22; // EINVAL: "Unable to set … while active exports exist"
            }
        }
        return 0;
    }

    private void AfterStore(string path, string value)
    {
        var rel = Rel(path);
        var parts = rel.Split('/');
        var so = parts.Length > 3 && parts[0] == "core" ? Abs($"core/{parts[1]}/{parts[2]}") : null;
        if (parts is ["core", _, _, "wwn", "vpd_unit_serial"])
        {
            File.WriteAllText(path, "T10 VPD Unit Serial Number: " + value.Trim() + "\n");
        }
        else if (parts is ["core", var hba, _, "enable"])
        {
            File.WriteAllText(path, "1\n");
            var control = File.ReadAllText(so + "/control");
            if (hba.StartsWith("fileio_", StringComparison.Ordinal))
            {
                var file = ControlValue(control, "fd_dev_name");
                var size = ControlValue(control, "fd_dev_size");
                var buffered = ControlValue(control, "fd_buffered_io") == "1";
                File.WriteAllText(so + "/info", $"Status: ACTIVATED  Max Queue Depth: 128  SectorSize: 512  HwMaxSectors: 16384\n        TCM FILEIO ID: 0        File: {file}  Size: {size}  Mode: {(buffered ? "Buffered-WCE" : "O_DSYNC")} Async: 0\n");
                if (buffered)
                {
                    File.WriteAllText(so + "/attrib/emulate_write_cache", "1\n");
                }
            }
            else
            {
                File.WriteAllText(so + "/info", "Status: ACTIVATED  Max Queue Depth: 128  SectorSize: 512  HwMaxSectors: 255\n        iBlock device: loop7  UDEV PATH: " + File.ReadAllText(so + "/udev_path").Trim() + "  readonly: 0\n        Major: 7 Minor: 7  CLAIMED: IBLOCK\n");
            }
        }
        else if (parts is ["core", var fhba, _, "control"] && fhba.StartsWith("fileio_", StringComparison.Ordinal)
                 && File.ReadAllText(so + "/enable").Trim() == "1" && ControlValue(value, "fd_dev_size") is { } newSize)
        {
            var info = File.ReadAllText(so + "/info");
            File.WriteAllText(so + "/info", SizeRegex().Replace(info, "Size: " + newSize));
        }
        else if (parts[^1] is not ("control" or "info"))
        {
            // show handlers print the value followed by a newline
            File.WriteAllText(path, value + "\n");
        }
    }

    private bool IsExported(string backstore) =>
        _userMade.Any(p => new FileInfo(p).LinkTarget is { } target && target.TrimEnd('/') == backstore);

    private static string? ControlValue(string control, string name)
    {
        foreach (var item in control.Split([',', '\n'], StringSplitOptions.RemoveEmptyEntries))
        {
            if (item.StartsWith(name + "=", StringComparison.Ordinal))
            {
                return item[(name.Length + 1)..];
            }
        }
        return null;
    }

    private static void Dirs(string path, params string[] names)
    {
        foreach (var name in names)
        {
            Directory.CreateDirectory(path + "/" + name);
        }
    }

    private static void Files(string path, params (string Name, string Content)[] files)
    {
        foreach (var (name, content) in files)
        {
            File.WriteAllText(path + "/" + name, content);
        }
    }

    [GeneratedRegex(@"Size: \d+")]
    private static partial Regex SizeRegex();
}
