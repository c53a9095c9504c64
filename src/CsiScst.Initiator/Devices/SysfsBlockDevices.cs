using System.Globalization;
using System.Text.RegularExpressions;
using CsiScst.Initiator.Mounts;

namespace CsiScst.Initiator.Devices;

/// <summary>
/// What the kernel says about block devices, read from sysfs: names and numbers, sizes, the SCSI
/// serial (VPD 0x80) and state, the device-mapper stack, and which iSCSI session a disk belongs to.
/// Also the two writes the node needs: rescan (new size) and delete (drop a disk before logout).
/// Everything is derived from the system on every call: nothing is cached across calls, so a restarted
/// plugin sees exactly what its predecessor left.
/// </summary>
public sealed partial class SysfsBlockDevices
{
    private readonly DeviceOptions _options;

    public SysfsBlockDevices(DeviceOptions options)
    {
        _options = options;
    }

    public string DevicePath(string name) => Path.Join(_options.DevDir, name);

    private string ClassBlock(string name) => Path.Join(_options.SysfsRoot, "class", "block", name);

    public bool Exists(string name) => Directory.Exists(ClassBlock(name));

    /// <summary>The kernel name (sda, dm-3, loop0) of a device path such as /dev/disk/by-path/… or /dev/mapper/x.</summary>
    public string? NameOfPath(string devicePath)
    {
        var target = Native.RealPath(devicePath);
        if (target is null)
        {
            return null;
        }
        var name = Path.GetFileName(target);
        return Exists(name) ? name : null;
    }

    public string? NameOf(DeviceNumber number)
    {
        var target = Native.RealPath(Path.Join(_options.SysfsRoot, "dev", "block", number.ToString()));
        return target is null ? null : Path.GetFileName(target);
    }

    public DeviceNumber? NumberOf(string name) =>
        DeviceNumber.TryParse(Read(Path.Join(ClassBlock(name), "dev")), out var number) ? number : null;

    public long? SizeBytes(string name) =>
        long.TryParse(Read(Path.Join(ClassBlock(name), "size")), NumberStyles.None, CultureInfo.InvariantCulture, out var sectors)
            ? sectors * 512
            : null;

    /// <summary>Whether the device is a SCSI disk (has a SCSI device behind it).</summary>
    public bool IsScsiDisk(string name) => Directory.Exists(Path.Join(ClassBlock(name), "device", "scsi_disk"));

    /// <summary>The Unit Serial Number (VPD page 0x80) the target reported; null when the kernel has none.</summary>
    public string? ReadSerial(string name)
    {
        var path = Path.Join(ClassBlock(name), "device", "vpd_pg80");
        try
        {
            return Vpd.ParseUnitSerial(File.ReadAllBytes(path));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>The SCSI device state: running, offline, blocked, transport-offline …</summary>
    public string? ScsiState(string name) => Read(Path.Join(ClassBlock(name), "device", "state"));

    public IReadOnlyList<string> Holders(string name) => List(Path.Join(ClassBlock(name), "holders"));
    public IReadOnlyList<string> Slaves(string name) => List(Path.Join(ClassBlock(name), "slaves"));

    public string? DmName(string name) => Read(Path.Join(ClassBlock(name), "dm", "name"));
    public string? DmUuid(string name) => Read(Path.Join(ClassBlock(name), "dm", "uuid"));

    /// <summary>A dm-multipath map (its dm uuid starts with "mpath-").</summary>
    public bool IsMultipath(string name) => DmUuid(name)?.StartsWith("mpath-", StringComparison.Ordinal) == true;

    /// <summary>The disks under a device: itself for a disk, its slaves (recursively) for a dm device.</summary>
    public IReadOnlyList<string> Disks(string name)
    {
        var slaves = Slaves(name);
        return slaves.Count == 0 ? [name] : slaves.SelectMany(Disks).Distinct().ToArray();
    }

    /// <summary>The iSCSI session id a SCSI disk belongs to (its sysfs path runs through sessionN).</summary>
    public int? IscsiSessionOf(string name)
    {
        var target = Native.RealPath(Path.Join(ClassBlock(name), "device"));
        if (target is null)
        {
            return null;
        }
        var match = SessionSegment().Match(target);
        return match.Success ? int.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture) : null;
    }

    /// <summary>The disk the kernel attached for LUN <paramref name="linuxLun"/> of an iSCSI session, if any.</summary>
    public string? FindIscsiDisk(int sid, long linuxLun)
    {
        var session = Path.Join(_options.SysfsRoot, "class", "iscsi_session", $"session{sid}", "device");
        if (!Directory.Exists(session))
        {
            return null;
        }
        var suffix = ":" + linuxLun.ToString(CultureInfo.InvariantCulture);
        foreach (var target in SafeDirectories(session, "target*"))
        {
            foreach (var lun in SafeDirectories(target, "*:*:*:*"))
            {
                if (!Path.GetFileName(lun).EndsWith(suffix, StringComparison.Ordinal))
                {
                    continue;
                }
                var block = SafeDirectories(Path.Join(lun, "block"), "*").FirstOrDefault();
                if (block is not null)
                {
                    return Path.GetFileName(block);
                }
            }
        }
        return null;
    }

    /// <summary>The kernel's session state (sysfs iscsi_session/sessionN/state): LOGGED_IN, FAILED, FREE.</summary>
    public string? IscsiSessionState(int sid) =>
        Read(Path.Join(_options.SysfsRoot, "class", "iscsi_session", $"session{sid}", "state"));

    /// <summary>Asks the SCSI layer to re-read the disk's capacity (after the target grew the LUN).</summary>
    public Task RescanAsync(string name, CancellationToken cancellationToken) =>
        File.WriteAllTextAsync(Path.Join(ClassBlock(name), "device", "rescan"), "1", cancellationToken);

    /// <summary>Removes the SCSI disk from the kernel (pending I/O fails); used before logging out.</summary>
    public Task DeleteAsync(string name, CancellationToken cancellationToken) =>
        File.WriteAllTextAsync(Path.Join(ClassBlock(name), "device", "delete"), "1", cancellationToken);

    private static string? Read(string path)
    {
        try
        {
            return File.ReadAllText(path).Trim();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static IReadOnlyList<string> List(string directory)
    {
        try
        {
            return Directory.Exists(directory)
                ? Directory.EnumerateFileSystemEntries(directory).Select(Path.GetFileName).OfType<string>().Order(StringComparer.Ordinal).ToArray()
                : [];
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return [];
        }
    }

    private static IEnumerable<string> SafeDirectories(string directory, string pattern)
    {
        try
        {
            return Directory.Exists(directory) ? Directory.GetDirectories(directory, pattern) : [];
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return [];
        }
    }

    [GeneratedRegex(@"/session(\d+)/")]
    private static partial Regex SessionSegment();
}
