using System.Globalization;
using Csi.V1;
using CsiScst.Core.Errors;
using CsiScst.Initiator.Devices;
using CsiScst.Initiator.Iscsi;
using CsiScst.Initiator.Mounts;
using Microsoft.Extensions.Logging;

namespace CsiScst.Csi.Node;

/// <summary>A published or staged volume found at a path: its device and, for filesystems, its mount.</summary>
public sealed record VolumeAtPath(string Path, string DeviceName, DeviceNumber Device, MountEntry? Mount, bool IsBlock);

/// <summary>
/// NodeGetVolumeStats (usage and a real VOLUME_CONDITION) and NodeExpandVolume (rescan, multipath
/// resize, online filesystem growth). Both find the volume from the path through mountinfo and sysfs.
/// </summary>
public sealed class NodeVolumeInspector
{
    private readonly Mounter _mounter;
    private readonly Filesystems _filesystems;
    private readonly SysfsBlockDevices _devices;
    private readonly Multipath _multipath;
    private readonly IscsiAdm _iscsiadm;
    private readonly DeviceOptions _deviceOptions;
    private readonly ILogger<NodeVolumeInspector> _logger;

    public NodeVolumeInspector(Mounter mounter, Filesystems filesystems, SysfsBlockDevices devices, Multipath multipath, IscsiAdm iscsiadm, DeviceOptions deviceOptions, ILogger<NodeVolumeInspector> logger)
    {
        _mounter = mounter;
        _filesystems = filesystems;
        _devices = devices;
        _multipath = multipath;
        _iscsiadm = iscsiadm;
        _deviceOptions = deviceOptions;
        _logger = logger;
    }

    /// <summary>The volume at a path, or NOT_FOUND (a path that does not exist or holds no volume).</summary>
    public async Task<VolumeAtPath> FindAsync(string volumeId, string path, CancellationToken cancellationToken)
    {
        // kubelet may hand over a symlink to the published file (a block volume's pod device path).
        var normalized = Native.RealPath(Mounter.Normalize(path)) ?? Mounter.Normalize(path);
        FileStatus? status;
        try
        {
            status = Native.Stat(normalized);
        }
        catch (IOException e) when (e.HResult == Native.EIO)
        {
            // A shut-down filesystem fails even stat on its mount point; find it through mountinfo.
            status = null;
        }
        var mounts = await _mounter.ReadMountsAsync(cancellationToken).ConfigureAwait(false);
        if (status is { IsBlockDevice: true })
        {
            var number = new DeviceNumber(status.RdevMajor, status.RdevMinor);
            var name = _devices.NameOf(number) ?? throw StatusException.NotFound($"volume {volumeId}: {normalized} is device {number}, which the kernel no longer has");
            return new VolumeAtPath(normalized, name, number, Mounter.MountAt(mounts, normalized), IsBlock: true);
        }
        var mount = Mounter.MountAt(mounts, normalized);
        if (mount is null)
        {
            throw StatusException.NotFound(status is null
                ? $"volume {volumeId}: path {normalized} does not exist"
                : $"volume {volumeId}: nothing is mounted at {normalized}");
        }
        var device = _devices.NameOf(mount.Device)
            ?? throw StatusException.NotFound($"volume {volumeId}: {normalized} is mounted from {mount.Source} ({mount.Device}), which is not a block device");
        return new VolumeAtPath(normalized, device, mount.Device, mount, IsBlock: false);
    }

    public async Task<NodeGetVolumeStatsResponse> StatsAsync(string volumeId, string volumePath, CancellationToken cancellationToken)
    {
        var volume = await FindAsync(volumeId, volumePath, cancellationToken).ConfigureAwait(false);
        var mounts = await _mounter.ReadMountsAsync(cancellationToken).ConfigureAwait(false);
        var problems = new List<string>();
        var response = new NodeGetVolumeStatsResponse();

        if (volume.IsBlock)
        {
            response.Usage.Add(new VolumeUsage { Unit = VolumeUsage.Types.Unit.Bytes, Total = _devices.SizeBytes(volume.DeviceName) ?? 0 });
        }
        else
        {
            var probe = Native.ProbeOpen(volume.Path);
            if (probe != 0)
            {
                problems.Add($"the filesystem at {volume.Path} fails to open its root ({System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage(probe)}): it was shut down after I/O or metadata errors");
            }
            else
            {
                var stats = Native.StatFs(volume.Path);
                response.Usage.Add(new VolumeUsage { Unit = VolumeUsage.Types.Unit.Bytes, Total = stats.TotalBytes, Available = stats.AvailableBytes, Used = stats.UsedBytes });
                response.Usage.Add(new VolumeUsage { Unit = VolumeUsage.Types.Unit.Inodes, Total = stats.TotalInodes, Available = stats.FreeInodes, Used = stats.UsedInodes });
            }
            problems.AddRange(FilesystemProblems(volume, mounts));
        }
        problems.AddRange(DeviceProblems(volume.DeviceName));

        response.VolumeCondition = problems.Count == 0
            ? new VolumeCondition { Abnormal = false, Message = "volume is healthy" }
            : new VolumeCondition { Abnormal = true, Message = string.Join("; ", problems) };
        if (problems.Count > 0)
        {
            _logger.LogWarning("Volume {VolumeId} at {VolumePath} is abnormal: {Condition}", volumeId, volume.Path, response.VolumeCondition.Message);
        }
        return response;
    }

    /// <summary>Read-only remounts by the kernel (errors=remount-ro) and errors ext4 recorded.</summary>
    private IEnumerable<string> FilesystemProblems(VolumeAtPath volume, IReadOnlyList<MountEntry> mounts)
    {
        var mount = volume.Mount!;
        // A filesystem we mounted read-write whose superblock is now read-only was switched by the kernel.
        if (mount.IsSuperblockReadOnly && mounts.Any(m => m.Device == volume.Device && !m.IsReadOnly))
        {
            yield return $"the {mount.FsType} filesystem on /dev/{volume.DeviceName} was remounted read-only by the kernel after errors";
        }
        if (mount.FsType == "ext4")
        {
            var errors = ReadInt(Path.Join(_deviceOptions.SysfsRoot, "fs", "ext4", volume.DeviceName, "errors_count"));
            if (errors > 0)
            {
                var function = ReadText(Path.Join(_deviceOptions.SysfsRoot, "fs", "ext4", volume.DeviceName, "last_error_func"));
                // Kernels since 5.17 stop an ext4 with errors=remount-ro without marking the superblock
                // read-only in mountinfo (6.1: nothing visible; recent ones: "emergency_ro"); the error
                // count is the signal every kernel gives.
                yield return $"ext4 on /dev/{volume.DeviceName} recorded {errors} error(s){(function is { Length: > 0 } ? $" (last in {function})" : "")}: it may have stopped writing (errors=remount-ro) and needs a filesystem check";
            }
        }
    }

    /// <summary>SCSI disk states and the iSCSI session of every path.</summary>
    private IEnumerable<string> DeviceProblems(string deviceName)
    {
        var disks = _devices.Disks(deviceName).Where(_devices.IsScsiDisk).ToArray();
        foreach (var disk in disks)
        {
            var state = _devices.ScsiState(disk);
            if (state is not null && state != "running")
            {
                yield return $"SCSI disk {disk} is {state}";
            }
            if (_devices.IscsiSessionOf(disk) is { } sid)
            {
                var sessionState = _devices.IscsiSessionState(sid);
                if (sessionState is not null && sessionState != "LOGGED_IN")
                {
                    yield return $"iSCSI session {sid} of disk {disk} is {sessionState} (the connection to the target is lost; I/O waits up to the replacement timeout, then fails)";
                }
            }
        }
    }

    public async Task<long> ExpandAsync(string volumeId, string volumePath, long requiredBytes, CancellationToken cancellationToken)
    {
        var volume = await FindAsync(volumeId, volumePath, cancellationToken).ConfigureAwait(false);
        var disks = _devices.Disks(volume.DeviceName).Where(_devices.IsScsiDisk).ToArray();
        foreach (var sid in disks.Select(_devices.IscsiSessionOf).OfType<int>().Distinct())
        {
            await _iscsiadm.RescanSessionAsync(sid, cancellationToken).ConfigureAwait(false);
        }
        foreach (var disk in disks)
        {
            await _devices.RescanAsync(disk, cancellationToken).ConfigureAwait(false);
        }
        if (_devices.IsMultipath(volume.DeviceName))
        {
            await _multipath.ResizeAsync(volume.DeviceName, cancellationToken).ConfigureAwait(false);
        }
        var size = _devices.SizeBytes(volume.DeviceName) ?? 0;
        if (requiredBytes > 0 && size < requiredBytes)
        {
            throw StatusException.Internal(
                $"volume {volumeId}: /dev/{volume.DeviceName} is {size} bytes after a rescan, less than the {requiredBytes} requested; has ControllerExpandVolume finished on the target?");
        }
        if (!volume.IsBlock && volume.Mount is { } mount)
        {
            await _filesystems.GrowAsync(_devices.DevicePath(volume.DeviceName), volume.Path, mount.FsType, cancellationToken).ConfigureAwait(false);
        }
        _logger.LogInformation("Expanded volume {VolumeId} at {VolumePath}: /dev/{Device} is {Bytes} bytes", volumeId, volume.Path, volume.DeviceName, size);
        return size;
    }

    private static long ReadInt(string path) =>
        long.TryParse(ReadText(path), NumberStyles.None, CultureInfo.InvariantCulture, out var value) ? value : 0;

    private static string? ReadText(string path)
    {
        try
        {
            return File.Exists(path) ? File.ReadAllText(path).Trim() : null;
        }
        catch (IOException)
        {
            return null;
        }
    }
}
