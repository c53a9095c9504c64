using CsiScst.Core.Errors;
using CsiScst.Initiator.Devices;
using CsiScst.Initiator.Mounts;
using Microsoft.Extensions.Logging;

namespace CsiScst.Initiator.Iscsi;

/// <summary>Where and how to log in for one volume, and the identity its disk must have.</summary>
public sealed record IscsiVolumeTarget(
    string TargetIqn,
    IReadOnlyList<Portal> Portals,
    int Lun,
    string Serial,
    NodeRecordSettings Settings,
    ChapCredentials? Chap)
{
    public bool IsMultipath => Portals.Count > 1;
}

/// <summary>The verified block device of a logged-in volume.</summary>
public sealed record AttachedDevice(string Name, string DevicePath, IReadOnlyList<string> Disks, bool IsMultipath);

/// <summary>
/// The iSCSI half of staging: node records, login, rescan, waiting for the disk, multipath, and the
/// SCSI identity check; and its reverse: flush, delete the disks, log out, delete the records.
/// </summary>
public sealed class IscsiVolumes
{
    private readonly IscsiAdm _iscsiadm;
    private readonly SysfsBlockDevices _devices;
    private readonly Multipath _multipath;
    private readonly Filesystems _filesystems;
    private readonly DeviceOptions _options;
    private readonly ILogger<IscsiVolumes> _logger;

    public IscsiVolumes(IscsiAdm iscsiadm, SysfsBlockDevices devices, Multipath multipath, Filesystems filesystems, DeviceOptions options, ILogger<IscsiVolumes> logger)
    {
        _iscsiadm = iscsiadm;
        _devices = devices;
        _multipath = multipath;
        _filesystems = filesystems;
        _options = options;
        _logger = logger;
    }

    public async Task<AttachedDevice> AttachAsync(IscsiVolumeTarget target, CancellationToken cancellationToken)
    {
        if (target.IsMultipath && !await _multipath.IsDaemonRunningAsync(cancellationToken).ConfigureAwait(false))
        {
            throw StatusException.FailedPrecondition(
                $"volume target {target.TargetIqn} has {target.Portals.Count} portals ({string.Join(", ", target.Portals)}) but multipathd is not running on this node; " +
                "install and start multipath-tools (multipathd), or publish the volume with a single portal");
        }

        // Portals log in in parallel: each may wait for its login timeout.
        var logins = target.Portals.Select(async portal =>
        {
            try
            {
                await _iscsiadm.WriteNodeRecordAsync(target.TargetIqn, portal, target.Settings, target.Chap, cancellationToken).ConfigureAwait(false);
                await _iscsiadm.LoginAsync(target.TargetIqn, portal, cancellationToken).ConfigureAwait(false);
                return (portal, Error: (StatusException?)null);
            }
            catch (StatusException e)
            {
                return (portal, Error: e);
            }
        }).ToArray();
        var results = await Task.WhenAll(logins).ConfigureAwait(false);
        var failed = results.Where(r => r.Error is not null).ToArray();
        if (failed.Length == results.Length)
        {
            throw failed[0].Error!;
        }
        foreach (var (portal, error) in failed)
        {
            _logger.LogWarning("Volume target {Target}: portal {Portal} failed, continuing on the other paths: {Error}", target.TargetIqn, portal, error!.Message);
        }
        var loggedIn = results.Where(r => r.Error is null).Select(r => r.portal).ToArray();

        var sessions = await _iscsiadm.SessionsOfAsync(target.TargetIqn, cancellationToken).ConfigureAwait(false);
        var paths = new List<(Portal Portal, IscsiSession Session)>();
        foreach (var portal in loggedIn)
        {
            // A portal given as a host name is listed by its address: with one portal and one session there is no doubt.
            var session = sessions.FirstOrDefault(s => s.PersistentPortal == portal || s.CurrentPortal == portal)
                ?? (loggedIn.Length == 1 && sessions.Count == 1 ? sessions[0] : null)
                ?? throw StatusException.Internal($"logged in to {target.TargetIqn} at {portal}, but iscsiadm lists no session for it through iface {_iscsiadm.Iface}");
            paths.Add((portal, session));
            // A session that already existed (login exit 15) may predate this LUN or its new size.
            await _iscsiadm.RescanSessionAsync(session.Sid, cancellationToken).ConfigureAwait(false);
        }

        var disks = await Task.WhenAll(paths.Select(p => WaitForDiskAsync(target, p.Portal, p.Session, cancellationToken))).ConfigureAwait(false);
        foreach (var disk in disks)
        {
            VerifySerial(target, disk);
        }

        if (!target.IsMultipath)
        {
            var disk = disks[0];
            var byPath = Path.Join(_options.DevDir, "disk", "by-path", ByPath.LinkName(loggedIn[0], target.TargetIqn, target.Lun));
            var devicePath = _devices.NameOfPath(byPath) == disk ? byPath : _devices.DevicePath(disk);
            return new AttachedDevice(disk, devicePath, disks, IsMultipath: false);
        }

        var map = await _multipath.WaitForMapAsync(disks, cancellationToken).ConfigureAwait(false);
        var mapper = _devices.DmName(map) is { } dmName ? Path.Join(_options.DevDir, "mapper", dmName) : null;
        var mapPath = mapper is not null && File.Exists(mapper) ? mapper : _devices.DevicePath(map);
        return new AttachedDevice(map, mapPath, disks, IsMultipath: true);
    }

    /// <summary>
    /// Refuses a disk whose unit serial is not the volume's: a stale disk from an earlier LUN, or LUN
    /// reuse on the target, must never be formatted or mounted as this volume.
    /// </summary>
    public void VerifySerial(IscsiVolumeTarget target, string disk)
    {
        var actual = _devices.ReadSerial(disk);
        if (actual is null)
        {
            throw StatusException.Internal(
                $"cannot read the SCSI unit serial (VPD page 0x80) of /dev/{disk} for volume target {target.TargetIqn}; refusing to use a device whose identity is unknown");
        }
        if (!string.Equals(actual, target.Serial, StringComparison.Ordinal))
        {
            throw StatusException.Internal(
                $"device /dev/{disk} (target {target.TargetIqn}, LUN {target.Lun}) has SCSI serial '{actual}', but the volume's serial is '{target.Serial}'; refusing to touch it (stale device or LUN reuse)");
        }
    }

    private async Task<string> WaitForDiskAsync(IscsiVolumeTarget target, Portal portal, IscsiSession session, CancellationToken cancellationToken)
    {
        var byPath = Path.Join(_options.DevDir, "disk", "by-path", ByPath.LinkName(portal, target.TargetIqn, target.Lun));
        var linuxLun = ByPath.LinuxLun(target.Lun);
        var deadline = DateTime.UtcNow + _options.DeviceTimeout;
        var rescanAt = DateTime.UtcNow + _options.DeviceTimeout / 2;
        while (true)
        {
            // The disk of *our* session, from sysfs. udev's by-path link names the same target and
            // LUN for every iface, so with two ifaces logged in to one target it may point at the
            // other iface's disk: it only counts when it leads to a disk of this session.
            var disk = _devices.FindIscsiDisk(session.Sid, linuxLun);
            if (disk is null && _devices.NameOfPath(byPath) is { } linked && _devices.IscsiSessionOf(linked) == session.Sid)
            {
                disk = linked;
            }
            if (disk is not null && File.Exists(_devices.DevicePath(disk)))
            {
                _logger.LogInformation("Volume target {Target} LUN {Lun} at {Portal} is /dev/{Disk}", target.TargetIqn, target.Lun, portal, disk);
                return disk;
            }
            var now = DateTime.UtcNow;
            if (now >= deadline)
            {
                throw StatusException.Internal(
                    $"no disk appeared for LUN {target.Lun} of {target.TargetIqn} at {portal} (session {session.Sid}) within {_options.DeviceTimeout.TotalSeconds:0} s; looked for {byPath} and in sysfs. Is the LUN exported to this initiator?");
            }
            if (now >= rescanAt)
            {
                rescanAt = DateTime.MaxValue;
                await _iscsiadm.RescanSessionAsync(session.Sid, cancellationToken).ConfigureAwait(false);
            }
            await Task.Delay(_options.PollInterval, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Tears down everything of one target on our iface: multipath maps, disks (flushed, then deleted so
    /// no stale device is left for a later LUN), sessions and node records. Nothing left is success.
    /// </summary>
    public async Task DetachAsync(string targetIqn, IReadOnlyCollection<string> knownDisks, CancellationToken cancellationToken)
    {
        var sessions = await _iscsiadm.SessionsOfAsync(targetIqn, cancellationToken).ConfigureAwait(false);
        var disks = knownDisks
            .Concat(sessions.SelectMany(s => s.Luns).Select(l => l.Disk).OfType<string>())
            .Where(_devices.Exists)
            .Distinct(StringComparer.Ordinal)
            .ToArray();

        foreach (var map in disks.SelectMany(_devices.Holders).Where(_devices.IsMultipath).Distinct(StringComparer.Ordinal).ToArray())
        {
            await FlushIfPresentAsync(map, cancellationToken).ConfigureAwait(false);
            await _multipath.FlushAsync(map, cancellationToken).ConfigureAwait(false);
        }
        foreach (var disk in disks)
        {
            await FlushIfPresentAsync(disk, cancellationToken).ConfigureAwait(false);
            await _devices.DeleteAsync(disk, cancellationToken).ConfigureAwait(false);
            _logger.LogInformation("Deleted SCSI disk {Disk} of {Target}", disk, targetIqn);
        }
        foreach (var session in sessions)
        {
            await _iscsiadm.LogoutSessionAsync(session.Sid, cancellationToken).ConfigureAwait(false);
        }
        await _iscsiadm.DeleteNodeRecordsAsync(targetIqn, cancellationToken).ConfigureAwait(false);
        _logger.LogInformation("Detached {Target}: {Sessions} session(s), {Disks} disk(s)", targetIqn, sessions.Count, disks.Length);
    }

    // A fenced or lost target leaves a disk that cannot be opened any more (ENXIO once the session gave up):
    // nothing can be flushed to it, and refusing to go on would leave the disk, session and records for ever
    // (kubelet retries NodeUnstage, which would fail the same way). The filesystem was unmounted before.
    private async Task FlushIfPresentAsync(string name, CancellationToken cancellationToken)
    {
        var path = _devices.DevicePath(name);
        if (File.Exists(path))
        {
            try
            {
                await _filesystems.FlushAsync(path, cancellationToken).ConfigureAwait(false);
            }
            catch (StatusException e)
            {
                _logger.LogWarning("Flushing {Device} failed, removing it anyway: {Error}", path, e.Message);
            }
        }
    }
}
