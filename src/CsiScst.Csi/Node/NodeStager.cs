using Csi.V1;
using CsiScst.Core;
using CsiScst.Core.Errors;
using CsiScst.Core.Ids;
using CsiScst.Csi.Validation;
using CsiScst.Initiator.Devices;
using CsiScst.Initiator.Iscsi;
using CsiScst.Initiator.Mounts;
using Microsoft.Extensions.Logging;

namespace CsiScst.Csi.Node;

/// <summary>
/// NodeStageVolume and NodeUnstageVolume: log in and verify the device, then format (only a blank
/// device) and mount it, or record a block device; and the exact reverse. Idempotent both ways.
/// </summary>
public sealed class NodeStager
{
    // Options that would turn "mount this filesystem" into something else.
    private static readonly string[] ForbiddenMountFlags = ["bind", "rbind", "remount", "move", "make-shared", "make-private"];

    private readonly IscsiVolumes _iscsi;
    private readonly IscsiAdm _iscsiadm;
    private readonly Mounter _mounter;
    private readonly Filesystems _filesystems;
    private readonly SysfsBlockDevices _devices;
    private readonly DriverOptions _driver;
    private readonly NodePluginOptions _options;
    private readonly ILogger<NodeStager> _logger;

    public NodeStager(IscsiVolumes iscsi, IscsiAdm iscsiadm, Mounter mounter, Filesystems filesystems, SysfsBlockDevices devices, DriverOptions driver, NodePluginOptions options, ILogger<NodeStager> logger)
    {
        _iscsi = iscsi;
        _iscsiadm = iscsiadm;
        _mounter = mounter;
        _filesystems = filesystems;
        _devices = devices;
        _driver = driver;
        _options = options;
        _logger = logger;
    }

    /// <summary>The target IQN NodeStageVolume will log in to (for locking before any work).</summary>
    public IscsiVolumeTarget ParseTarget(NodeStageVolumeRequest request) =>
        StageParameters.Parse(request.VolumeId, request.PublishContext, request.VolumeContext, request.Secrets, _driver, _options.Iscsi);

    public async Task StageAsync(NodeStageVolumeRequest request, IscsiVolumeTarget target, CancellationToken cancellationToken)
    {
        var capability = request.VolumeCapability;
        var block = capability.AccessTypeCase == VolumeCapability.AccessTypeOneofCase.Block;
        var readOnly = CsiValidation.IsReadOnlyMode(capability.AccessMode.Mode);
        var requestedFs = block ? "" : StageParameters.RequestedFsType(capability.Mount.FsType, request.VolumeContext);
        if (requestedFs.Length > 0 && !Filesystems.Supported.Contains(requestedFs))
        {
            throw StatusException.InvalidArgument(
                $"volume_context {VolumeContextKeys.FsType} '{requestedFs}' is not supported; use one of {string.Join(", ", Filesystems.Supported)}");
        }
        var staging = Mounter.Normalize(request.StagingTargetPath);

        var mounts = await _mounter.ReadMountsAsync(cancellationToken).ConfigureAwait(false);
        var staged = VolumeLayout.Inspect(mounts, staging);
        if (staged.Kind != StagedKind.None)
        {
            CheckStagedCompatible(request.VolumeId, staged, target, block, requestedFs, readOnly);
            _logger.LogInformation("Volume {VolumeId} is already staged at {StagingPath}", request.VolumeId, staging);
            return;
        }
        var flags = block ? [] : MountFlags(capability.Mount.MountFlags);

        Directory.CreateDirectory(staging);
        var device = await _iscsi.AttachAsync(target, cancellationToken).ConfigureAwait(false);

        if (block)
        {
            var file = VolumeLayout.BlockFile(staging);
            await CreateFileAsync(file, cancellationToken).ConfigureAwait(false);
            await _mounter.BindAsync(device.DevicePath, file, readOnly, cancellationToken).ConfigureAwait(false);
            _logger.LogInformation("Staged block volume {VolumeId}: {Device} at {File}", request.VolumeId, device.DevicePath, file);
            return;
        }

        var fsType = await PrepareFilesystemAsync(request.VolumeId, device.DevicePath, requestedFs, readOnly, cancellationToken).ConfigureAwait(false);
        var options = new List<string>(flags);
        if (readOnly && !options.Contains("ro"))
        {
            options.Add("ro");
        }
        if (fsType == "xfs" && StageParameters.IsCopy(request.VolumeContext) && !options.Contains("nouuid"))
        {
            // A restored snapshot or clone carries its source's XFS UUID; XFS refuses to mount a
            // second filesystem with a UUID it already has mounted.
            options.Add("nouuid");
        }
        await _mounter.MountAsync(device.DevicePath, staging, fsType, options, cancellationToken).ConfigureAwait(false);
        _logger.LogInformation("Staged volume {VolumeId}: {Device} ({FsType}) at {StagingPath}", request.VolumeId, device.DevicePath, fsType, staging);
    }

    /// <summary>
    /// Formats only a device blkid finds blank; a device with the requested (or, when none was requested,
    /// any supported) filesystem is mounted as it is; anything else is refused untouched.
    /// </summary>
    private async Task<string> PrepareFilesystemAsync(string volumeId, string device, string requestedFs, bool readOnly, CancellationToken cancellationToken)
    {
        var content = await _filesystems.ProbeAsync(device, cancellationToken).ConfigureAwait(false);
        if (content.IsBlank)
        {
            var fsType = requestedFs.Length > 0 ? requestedFs : _options.Mounts.DefaultFsType;
            if (readOnly)
            {
                throw StatusException.FailedPrecondition(
                    $"volume {volumeId} has no filesystem yet and is staged read-only, so none can be created; stage it once with a writable access mode first");
            }
            await _filesystems.FormatAsync(device, fsType, cancellationToken).ConfigureAwait(false);
            return fsType;
        }
        if (content.Type is { } existing && Filesystems.Supported.Contains(existing))
        {
            if (requestedFs.Length > 0 && requestedFs != existing)
            {
                throw StatusException.FailedPrecondition(
                    $"volume {volumeId} ({device}) already holds an {existing} filesystem but fs_type '{requestedFs}' was requested; a volume with data is never reformatted");
            }
            return existing;
        }
        throw StatusException.FailedPrecondition(
            $"volume {volumeId} ({device}) holds {content}, not a supported filesystem ({string.Join(", ", Filesystems.Supported)}); refusing to format or mount it");
    }

    private void CheckStagedCompatible(string volumeId, StagedVolume staged, IscsiVolumeTarget target, bool block, string requestedFs, bool readOnly)
    {
        var what = staged.Kind == StagedKind.Block ? "a block volume" : "a mounted filesystem";
        if (block != (staged.Kind == StagedKind.Block))
        {
            throw StatusException.AlreadyExists(
                $"staging path {staged.MountPoint} already holds {what}, but volume {volumeId} is requested as {(block ? "a block volume" : "a mounted filesystem")}");
        }
        var name = staged.Device is { } number ? _devices.NameOf(number) : null;
        var disks = name is null ? [] : _devices.Disks(name);
        var serials = disks.Select(d => _devices.ReadSerial(d)).ToArray();
        if (disks.Count == 0 || serials.Any(s => s != target.Serial))
        {
            var found = name is null ? $"device {staged.Device}" : $"/dev/{name} (serial {string.Join(",", serials.Select(s => s ?? "none"))})";
            throw StatusException.AlreadyExists(
                $"staging path {staged.MountPoint} already holds {found}, not volume {volumeId} (serial {target.Serial})");
        }
        if (staged.Mount is { } mount && staged.Kind == StagedKind.Filesystem)
        {
            if (requestedFs.Length > 0 && mount.FsType != requestedFs)
            {
                throw StatusException.AlreadyExists(
                    $"volume {volumeId} is staged at {staged.MountPoint} as {mount.FsType}, but fs_type '{requestedFs}' was requested");
            }
            if (mount.IsReadOnly != readOnly)
            {
                throw StatusException.AlreadyExists(
                    $"volume {volumeId} is staged at {staged.MountPoint} {(mount.IsReadOnly ? "read-only" : "read-write")}, but the access mode asks for {(readOnly ? "read-only" : "read-write")}");
            }
        }
    }

    public async Task UnstageAsync(string volumeId, string stagingPath, CancellationToken cancellationToken)
    {
        var staging = Mounter.Normalize(stagingPath);
        var mounts = await _mounter.ReadMountsAsync(cancellationToken).ConfigureAwait(false);
        var staged = VolumeLayout.Inspect(mounts, staging);
        string? deviceName = null;

        if (staged.Kind != StagedKind.None)
        {
            if (staged.Device is { } device)
            {
                deviceName = _devices.NameOf(device);
                var users = VolumeLayout.DeviceUsers(mounts)
                    .Where(u => u.Device == device && u.Mount.MountPoint != staged.MountPoint)
                    .Select(u => u.Mount.MountPoint)
                    .Distinct(StringComparer.Ordinal)
                    .ToArray();
                if (users.Length > 0)
                {
                    throw StatusException.FailedPrecondition(
                        $"volume {volumeId} is still published at {string.Join(", ", users.Take(3))}{(users.Length > 3 ? $" and {users.Length - 3} more" : "")}; unpublish it before unstaging");
                }
            }
            // Stacked mounts (a repeated mount by hand, or an old plugin's) must all go.
            while (Mounter.MountAt(mounts, staged.MountPoint) is not null)
            {
                await _mounter.UnmountAsync(staged.MountPoint, cancellationToken).ConfigureAwait(false);
                mounts = await _mounter.ReadMountsAsync(cancellationToken).ConfigureAwait(false);
            }
        }
        var blockFile = VolumeLayout.BlockFile(staging);
        if (File.Exists(blockFile))
        {
            File.Delete(blockFile);
        }

        // The target to leave: the one behind the staged device, and the one the volume id names (a
        // stage that died after login but before mounting left a session and nothing mounted).
        var targets = new HashSet<string>(StringComparer.Ordinal);
        var disks = deviceName is null ? [] : _devices.Disks(deviceName).Where(_devices.IsScsiDisk).ToArray();
        if (disks.Length > 0)
        {
            var sessionIds = disks.Select(_devices.IscsiSessionOf).OfType<int>().ToHashSet();
            var sessions = await _iscsiadm.ListSessionsAsync(cancellationToken).ConfigureAwait(false);
            foreach (var session in sessions.Where(s => sessionIds.Contains(s.Sid)))
            {
                targets.Add(session.Target);
            }
        }
        if (VolumeId.TryParse(volumeId, out var id))
        {
            targets.Add(new ObjectNames(id.Instance, _driver.IqnPrefix).TargetIqn(id.Key));
        }
        foreach (var target in targets)
        {
            await _iscsi.DetachAsync(target, disks, cancellationToken).ConfigureAwait(false);
        }
        _logger.LogInformation("Unstaged volume {VolumeId} from {StagingPath} ({Targets} target(s) left)", volumeId, staging, targets.Count);
    }

    private static IReadOnlyList<string> MountFlags(IEnumerable<string> flags)
    {
        var result = new List<string>();
        foreach (var option in flags.SelectMany(f => f.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)))
        {
            if (ForbiddenMountFlags.Contains(option))
            {
                throw StatusException.InvalidArgument($"mount flag '{option}' is not allowed for a volume's filesystem");
            }
            if (!result.Contains(option))
            {
                result.Add(option);
            }
        }
        return result;
    }

    private static async Task CreateFileAsync(string path, CancellationToken cancellationToken)
    {
        if (!File.Exists(path))
        {
            await File.WriteAllBytesAsync(path, [], cancellationToken).ConfigureAwait(false);
        }
    }
}
