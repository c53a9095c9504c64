using System.Globalization;
using System.Net;
using CsiScst.Core;
using CsiScst.Core.Errors;
using CsiScst.Core.Ids;
using CsiScst.Core.Locking;
using CsiScst.Core.Metrics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using CsiScst.Targets.Native;

namespace CsiScst.Targets.Scst;

/// <summary>
/// SCST through its sysfs interface (interfaces.md A and F). One export is:
/// <list type="bullet">
/// <item>device <c>csi_&lt;inst&gt;_&lt;key&gt;</c> (vdisk_blockio for block devices, vdisk_fileio for files) with the
/// volume's serial as t10_dev_id and usn, rotational=0, and the write-cache mapping of <see cref="WriteCacheMode"/>;</item>
/// <item>one iSCSI target per volume whose default LUN set stays empty, and one ini group per published
/// initiator holding LUN 0 (read_only=1 for read-only access) and exactly that initiator;</item>
/// <item>CHAP as IncomingUser/OutgoingUser target attributes, allowed_portal from the spec's portals;</item>
/// <item>the target enabled last, once LUNs and groups are in place.</item>
/// </list>
/// Every step reads first and writes only what differs, so a retry after a crash at any point converges.
/// </summary>
public sealed class ScstEngine : ITargetEngine
{
    public const string EngineKind = "scst";

    private readonly ScstSysfs _sysfs;
    private readonly ScstStateReader _reader;
    private readonly ScstConfigWriter _config;
    private readonly ScstOptions _options;
    private readonly ObjectNames _names;
    private readonly ILogger<ScstEngine> _logger;
    private readonly TimeProvider _time;
    private readonly KeyedLocks _locks = new();
    private readonly ExternalTime _externalTime;
    private int _fullReconcileDone;

    public ScstEngine(ScstSysfs sysfs, ScstConfigWriter config, IOptions<ScstOptions> options, DriverOptions driver, ExternalTime externalTime,
        ILogger<ScstEngine> logger, TimeProvider? time = null)
    {
        _externalTime = externalTime;
        _sysfs = sysfs;
        _reader = new ScstStateReader(sysfs);
        _config = config;
        _options = options.Value;
        _names = new ObjectNames(driver.InstanceId, driver.IqnPrefix);
        _logger = logger;
        _time = time ?? TimeProvider.System;
    }

    public string Kind => EngineKind;

    public async Task<EngineHealth> ProbeAsync(CancellationToken cancellationToken)
    {
        if (!_sysfs.DirectoryExists(""))
        {
            return EngineHealth.NotReady($"SCST is not loaded: {_sysfs.Root} does not exist (modprobe scst scst_vdisk iscsi_scst)");
        }
        var version = await _sysfs.ReadLineAsync("version", cancellationToken).ConfigureAwait(false);
        if (string.IsNullOrWhiteSpace(version))
        {
            return EngineHealth.NotReady($"cannot read the SCST version from {_sysfs.PathOf("version")}");
        }
        foreach (var handler in new[] { ScstPaths.BlockioHandler, ScstPaths.FileioHandler })
        {
            if (!_sysfs.DirectoryExists($"{ScstPaths.Handlers}/{handler}"))
            {
                return EngineHealth.NotReady($"SCST handler {handler} is missing: load the scst_vdisk module");
            }
        }
        if (!_sysfs.DirectoryExists(ScstPaths.IscsiRoot))
        {
            return EngineHealth.NotReady($"the iSCSI target driver is missing ({_sysfs.PathOf(ScstPaths.IscsiRoot)}): load the iscsi_scst module");
        }
        var state = (await _sysfs.ReadLineAsync(ScstPaths.IscsiOpenState, cancellationToken).ConfigureAwait(false))?.Trim();
        if (state != "open")
        {
            return EngineHealth.NotReady($"{ScstErrors.IscsiScstdDown}: {_sysfs.PathOf(ScstPaths.IscsiOpenState)} is '{state ?? "missing"}', not 'open'");
        }
        return EngineHealth.Healthy;
    }

    public async Task EnsureExportAsync(ExportSpec spec, CancellationToken cancellationToken)
    {
        var resolved = ScstSpecValidator.Validate(spec);
        using var held = await _locks.AcquireAsync(spec.Key, cancellationToken).ConfigureAwait(false);
        var changes = new ScstChanges();
        try
        {
            var device = await _reader.ReadDeviceAsync(spec.DeviceName, cancellationToken).ConfigureAwait(false);
            var target = await _reader.ReadTargetAsync(spec.TargetIqn, cancellationToken).ConfigureAwait(false);
            await ConvergeAsync(spec, resolved, device, target, changes, cancellationToken).ConfigureAwait(false);
            await EnsureDriverEnabledAsync(changes, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            await SaveConfigAsync(changes).ConfigureAwait(false);
        }
    }

    public async Task RemoveExportAsync(string key, CancellationToken cancellationToken)
    {
        if (!Names.IsValidKey(key))
        {
            throw StatusException.InvalidArgument($"export key '{key}' must be {Names.KeyLength} lowercase hex digits");
        }
        using var held = await _locks.AcquireAsync(key, cancellationToken).ConfigureAwait(false);
        var changes = new ScstChanges();
        try
        {
            var target = await _reader.ReadTargetAsync(_names.TargetIqn(key), cancellationToken).ConfigureAwait(false);
            if (target is not null)
            {
                await TeardownTargetAsync(target, changes, cancellationToken).ConfigureAwait(false);
            }
            var device = await _reader.ReadDeviceAsync(_names.DeviceName(key), cancellationToken).ConfigureAwait(false);
            if (device is not null)
            {
                await DeleteDeviceAsync(device, changes, cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            await SaveConfigAsync(changes).ConfigureAwait(false);
        }
    }

    public async Task ResyncSizeAsync(ExportSpec spec, CancellationToken cancellationToken)
    {
        ScstSpecValidator.Validate(spec);
        using var held = await _locks.AcquireAsync(spec.Key, cancellationToken).ConfigureAwait(false);
        var changes = new ScstChanges();
        try
        {
            var path = ScstPaths.DeviceAttribute(spec.DeviceName, "resync_size");
            var command = ScstCommand.Of("1");
            var errno = await _sysfs.TryWriteAsync(path, command, cancellationToken).ConfigureAwait(false);
            changes.Device(spec.DeviceName);
            switch (errno)
            {
                case 0:
                    _logger.LogInformation("Resynced the size of SCST device {Device} of export {Key}", spec.DeviceName, spec.Key);
                    return;
                case Errno.ENOENT:
                    throw StatusException.NotFound($"SCST device {spec.DeviceName} of export {spec.Key} does not exist; ensure the export first");
                case Errno.EMEDIUMTYPE:
                    throw StatusException.FailedPrecondition(
                        $"SCST device {spec.DeviceName} cannot re-read its size: its backing storage {spec.BackingPath} is not open (active=0)");
                default:
                    throw ScstErrors.ForWrite(errno, _sysfs.PathOf(path), command);
            }
        }
        finally
        {
            await SaveConfigAsync(changes).ConfigureAwait(false);
        }
    }

    public async Task<IReadOnlyList<ActualExport>> ListExportsAsync(CancellationToken cancellationToken)
    {
        ScstSnapshot snapshot;
        using (_externalTime.Measure())
        {
            snapshot = await _reader.ReadOursAsync(_names, full: true, cancellationToken).ConfigureAwait(false);
        }
        var keys = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var iqn in snapshot.Targets.Keys)
        {
            keys.Add(_names.KeyFromTargetIqn(iqn)!);
        }
        foreach (var device in snapshot.Devices.Keys)
        {
            keys.Add(_names.KeyFromDeviceName(device)!);
        }
        var exports = new List<ActualExport>(keys.Count);
        foreach (var key in keys)
        {
            var iqn = _names.TargetIqn(key);
            snapshot.Targets.TryGetValue(iqn, out var target);
            snapshot.Devices.TryGetValue(_names.DeviceName(key), out var device);
            exports.Add(new ActualExport
            {
                Key = key,
                TargetIqn = iqn,
                BackingPath = device?.Filename,
                Serial = device?.Usn,
                Enabled = target?.Enabled ?? false,
                SizeBytes = device?.SizeBytes,
                Initiators = target?.Groups
                    .SelectMany(g => g.Initiators.Select(i => new InitiatorAccess(i, g.Lun(0)?.ReadOnly ?? false)))
                    .OrderBy(a => a.InitiatorIqn, StringComparer.Ordinal)
                    .ToList() ?? [],
                ChapEnabled = target?.IncomingUsers.Count > 0,
            });
        }
        return exports;
    }

    public async Task<EngineReconcileResult> ReconcileAsync(IReadOnlyCollection<ExportSpec> desired, CancellationToken cancellationToken)
    {
        // Someone else may have changed our objects: cached config sections are re-read.
        _config.InvalidateAll();
        // The first reconcile (start-up) checks everything. Later ones skip the creation parameters (block size,
        // caching, thin, rotational): SCST cannot change them in place, EnsureExport checks them on every call,
        // and leaving them out halves what a no-change pass reads.
        var full = Interlocked.Exchange(ref _fullReconcileDone, 1) == 0;
        ScstSnapshot snapshot;
        using (_externalTime.Measure())
        {
            snapshot = await _reader.ReadOursAsync(_names, full, cancellationToken).ConfigureAwait(false);
        }
        var changes = new ScstChanges();
        var errors = new List<string>();
        int checkedCount = 0, repaired = 0, orphans = 0;
        var wantedTargets = new HashSet<string>(desired.Select(d => d.TargetIqn), StringComparer.Ordinal);
        var wantedDevices = new HashSet<string>(desired.Select(d => d.DeviceName), StringComparer.Ordinal);
        try
        {
            foreach (var spec in desired)
            {
                cancellationToken.ThrowIfCancellationRequested();
                checkedCount++;
                try
                {
                    var resolved = ScstSpecValidator.Validate(spec);
                    using var held = await _locks.AcquireAsync(spec.Key, cancellationToken).ConfigureAwait(false);
                    var writesBefore = _sysfs.WriteCount;
                    snapshot.Devices.TryGetValue(spec.DeviceName, out var device);
                    snapshot.Targets.TryGetValue(spec.TargetIqn, out var target);
                    await ConvergeAsync(spec, resolved, device, target, changes, cancellationToken).ConfigureAwait(false);
                    if (_sysfs.WriteCount != writesBefore)
                    {
                        repaired++;
                        _logger.LogInformation("Reconcile repaired SCST export {Key} ({Target})", spec.Key, spec.TargetIqn);
                    }
                }
                catch (StatusException e)
                {
                    errors.Add($"export {spec.Key}: {e.Message}");
                    _logger.LogWarning("Reconcile could not repair SCST export {Key}: {Error}", spec.Key, e.Message);
                }
            }

            var removedDevices = new HashSet<string>(StringComparer.Ordinal);
            foreach (var (iqn, target) in snapshot.Targets)
            {
                if (wantedTargets.Contains(iqn))
                {
                    continue;
                }
                var key = _names.KeyFromTargetIqn(iqn)!;
                try
                {
                    using var held = await _locks.AcquireAsync(key, cancellationToken).ConfigureAwait(false);
                    await TeardownTargetAsync(target, changes, cancellationToken).ConfigureAwait(false);
                    var deviceName = _names.DeviceName(key);
                    if (!wantedDevices.Contains(deviceName) && snapshot.Devices.TryGetValue(deviceName, out var device))
                    {
                        await DeleteDeviceAsync(device, changes, cancellationToken).ConfigureAwait(false);
                        removedDevices.Add(deviceName);
                    }
                    orphans++;
                    _logger.LogInformation("Reconcile removed orphaned SCST export {Key} ({Target})", key, iqn);
                }
                catch (StatusException e)
                {
                    errors.Add($"orphaned target {iqn}: {e.Message}");
                }
            }
            foreach (var (name, device) in snapshot.Devices)
            {
                if (wantedDevices.Contains(name) || removedDevices.Contains(name))
                {
                    continue;
                }
                var key = _names.KeyFromDeviceName(name)!;
                try
                {
                    using var held = await _locks.AcquireAsync(key, cancellationToken).ConfigureAwait(false);
                    await DeleteDeviceAsync(device, changes, cancellationToken).ConfigureAwait(false);
                    orphans++;
                    _logger.LogInformation("Reconcile removed orphaned SCST device {Device}", name);
                }
                catch (StatusException e)
                {
                    errors.Add($"orphaned device {name}: {e.Message}");
                }
            }
            try
            {
                await EnsureDriverEnabledAsync(changes, cancellationToken).ConfigureAwait(false);
            }
            catch (StatusException e)
            {
                errors.Add(e.Message);
            }
        }
        finally
        {
            await SaveConfigAsync(changes).ConfigureAwait(false);
        }
        return new EngineReconcileResult(checkedCount, repaired, orphans, errors);
    }

    public async Task<IReadOnlyList<SessionInfo>> ListSessionsAsync(CancellationToken cancellationToken)
    {
        var sessions = new List<SessionInfo>();
        foreach (var iqn in OurTargets())
        {
            var key = _names.KeyFromTargetIqn(iqn)!;
            foreach (var session in _sysfs.ListDirectories(ScstPaths.Sessions(iqn)).Order(StringComparer.Ordinal))
            {
                var path = ScstPaths.Session(iqn, session);
                var initiator = (await _sysfs.ReadLineAsync($"{path}/initiator_name", cancellationToken).ConfigureAwait(false))?.Trim();
                if (string.IsNullOrEmpty(initiator))
                {
                    initiator = ScstPaths.InitiatorOfSession(session);
                }
                sessions.Add(new SessionInfo(key, iqn, initiator, await SessionAddressAsync(path, cancellationToken).ConfigureAwait(false)));
            }
        }
        return sessions;
    }

    /// <summary>The initiator's IP: the name of the session's connection subdirectory (its <c>ip</c> file as a fallback).</summary>
    private async Task<string?> SessionAddressAsync(string sessionPath, CancellationToken cancellationToken)
    {
        foreach (var entry in _sysfs.List(sessionPath).Where(e => e.Kind == ScstEntryKind.Directory).OrderBy(e => e.Name, StringComparer.Ordinal))
        {
            if (IPAddress.TryParse(entry.Name.Trim('[', ']'), out var address))
            {
                return address.ToString();
            }
            var ip = (await _sysfs.ReadLineAsync($"{sessionPath}/{entry.Name}/ip", cancellationToken).ConfigureAwait(false))?.Trim();
            if (!string.IsNullOrEmpty(ip))
            {
                return ip;
            }
        }
        return null;
    }

    public async Task<IReadOnlyList<ExportStats>> GetStatsAsync(CancellationToken cancellationToken)
    {
        var stats = new List<ExportStats>();
        foreach (var iqn in OurTargets())
        {
            long readKb = 0, writtenKb = 0, reads = 0, writes = 0;
            var sessions = _sysfs.ListDirectories(ScstPaths.Sessions(iqn)).ToList();
            foreach (var session in sessions)
            {
                var path = ScstPaths.Session(iqn, session);
                async Task<long> Counter(string name) =>
                    ScstStateReader.ParseLong(await _sysfs.ReadLineAsync($"{path}/{name}", cancellationToken).ConfigureAwait(false)) ?? 0;
                readKb += await Counter("read_io_count_kb").ConfigureAwait(false);
                writtenKb += await Counter("write_io_count_kb").ConfigureAwait(false);
                reads += await Counter("read_cmd_count").ConfigureAwait(false);
                writes += await Counter("write_cmd_count").ConfigureAwait(false);
            }
            stats.Add(new ExportStats(_names.KeyFromTargetIqn(iqn)!, readKb * 1024, writtenKb * 1024, reads, writes, sessions.Count));
        }
        return stats;
    }

    private IEnumerable<string> OurTargets() =>
        _sysfs.ListDirectories(ScstPaths.IscsiRoot).Where(t => _names.KeyFromTargetIqn(t) is not null).Order(StringComparer.Ordinal);

    // ---------------------------------------------------------------- convergence

    private async Task ConvergeAsync(ExportSpec spec, ScstSpecValidator.Resolved resolved, ScstDeviceState? device, ScstTargetState? target,
        ScstChanges changes, CancellationToken cancellationToken)
    {
        await ConvergeDeviceAsync(spec, device, changes, cancellationToken).ConfigureAwait(false);
        await ConvergeTargetAsync(spec, resolved, target, changes, cancellationToken).ConfigureAwait(false);
    }

    private static string HandlerOf(ExportSpec spec) => spec.IsFile ? ScstPaths.FileioHandler : ScstPaths.BlockioHandler;

    /// <summary>
    /// Write-cache mapping: WriteThrough → write_through=1 (SCST reports no volatile cache, WCE=0, and makes every
    /// write stable before acknowledging it); WriteBack → write_through=0 (WCE=1: the initiator's flushes,
    /// SYNCHRONIZE CACHE and FUA, are passed to the backing storage). nv_cache is always 0: nv_cache=1 would make
    /// SCST ignore flushes, which loses acknowledged data on power failure unless the storage has a real NV cache.
    /// </summary>
    private static bool WantsWriteThrough(ExportSpec spec) => spec.WriteCache == WriteCacheMode.WriteThrough;

    private static List<string> DeviceDifferences(ExportSpec spec, ScstDeviceState device)
    {
        var differences = new List<string>();
        if (device.Handler != HandlerOf(spec))
        {
            differences.Add($"handler {device.Handler} instead of {HandlerOf(spec)}");
        }
        if (!string.Equals(device.Filename, spec.BackingPath, StringComparison.Ordinal))
        {
            differences.Add($"filename {device.Filename ?? "(none)"} instead of {spec.BackingPath}");
        }
        if (device.WriteThrough is { } writeThrough && writeThrough != WantsWriteThrough(spec))
        {
            differences.Add($"write_through {(writeThrough ? 1 : 0)} instead of {(WantsWriteThrough(spec) ? 1 : 0)}");
        }
        if (device.NvCache == true)
        {
            differences.Add("nv_cache 1 instead of 0");
        }
        if (device.ThinProvisioned is { } thin && thin != spec.ThinProvisioned)
        {
            differences.Add($"thin_provisioned {(thin ? 1 : 0)} instead of {(spec.ThinProvisioned ? 1 : 0)}");
        }
        if (device.Rotational == true)
        {
            differences.Add("rotational 1 instead of 0");
        }
        return differences;
    }

    private async Task ConvergeDeviceAsync(ExportSpec spec, ScstDeviceState? device, ScstChanges changes, CancellationToken cancellationToken)
    {
        var name = spec.DeviceName;
        for (var attempt = 0; ; attempt++)
        {
            if (device is { Handler: null })
            {
                throw StatusException.FailedPrecondition($"{_sysfs.PathOf(ScstPaths.Device(name))} exists but is not a virtual disk (no handler link); it is not ours to change");
            }
            if (device is not null)
            {
                if (device.BlockSize is { } blockSize && blockSize != (int)spec.BlockSize)
                {
                    throw StatusException.FailedPrecondition(
                        $"SCST device {name} has block size {blockSize} but the volume wants {spec.BlockSize}; a block size is never changed under existing data");
                }
                var differences = DeviceDifferences(spec, device);
                if (differences.Count > 0)
                {
                    // Creation parameters are read-only in sysfs: the device is re-opened (its LUNs are re-added below).
                    _logger.LogWarning("Re-creating SCST device {Device} of export {Key}: {Differences}", name, spec.Key, string.Join("; ", differences));
                    await DeleteDeviceAsync(device, changes, cancellationToken).ConfigureAwait(false);
                    device = null;
                }
            }

            string? t10DevId, usn;
            if (device is { Active: false })
            {
                // Someone closed the backing storage (active=0): the LUN would fail every command.
                await _sysfs.WriteAsync(ScstPaths.DeviceAttribute(name, "active"), ScstCommand.Of("1"), cancellationToken).ConfigureAwait(false);
                changes.Device(name);
                _logger.LogInformation("Re-opened the backing storage of SCST device {Device}", name);
            }
            if (device is null)
            {
                var command = ScstCommand.Of(
                    $"add_device {name} filename={spec.BackingPath};blocksize={spec.BlockSize.ToString(CultureInfo.InvariantCulture)};" +
                    $"rotational=0;write_through={(WantsWriteThrough(spec) ? 1 : 0)};nv_cache=0" +
                    (spec.ThinProvisioned ? ";thin_provisioned=1" : "") +
                    $";t10_dev_id={spec.Serial}");
                var path = ScstPaths.HandlerMgmt(HandlerOf(spec));
                var errno = await _sysfs.TryWriteAsync(path, command, cancellationToken).ConfigureAwait(false);
                changes.Device(name);
                if (errno == Errno.EEXIST && attempt == 0)
                {
                    // Created meanwhile (or under another handler): converge what is there.
                    device = await _reader.ReadDeviceAsync(name, cancellationToken).ConfigureAwait(false);
                    continue;
                }
                if (errno == Errno.ENOENT)
                {
                    throw StatusException.FailedPrecondition(
                        $"the backing {(spec.IsFile ? "file" : "device")} {spec.BackingPath} of SCST device {name} does not exist (add_device answered ENOENT)");
                }
                if (errno != 0)
                {
                    throw ScstErrors.ForWrite(errno, _sysfs.PathOf(path), command);
                }
                _logger.LogInformation("Created SCST device {Device} ({Handler}) on {BackingPath}", name, HandlerOf(spec), spec.BackingPath);
                t10DevId = spec.Serial;
                usn = null;
            }
            else
            {
                t10DevId = device.T10DevId;
                usn = device.Usn;
            }

            if (!string.Equals(t10DevId, spec.Serial, StringComparison.Ordinal))
            {
                await _sysfs.WriteAsync(ScstPaths.DeviceAttribute(name, "t10_dev_id"), ScstCommand.Of(spec.Serial), cancellationToken).ConfigureAwait(false);
                changes.Device(name);
            }
            // usn is not an add_device parameter: it is set afterwards, which a crash may have skipped.
            if (!string.Equals(usn, spec.Serial, StringComparison.Ordinal))
            {
                await _sysfs.WriteAsync(ScstPaths.DeviceAttribute(name, "usn"), ScstCommand.Of(spec.Serial), cancellationToken).ConfigureAwait(false);
                changes.Device(name);
            }
            return;
        }
    }

    private async Task ConvergeTargetAsync(ExportSpec spec, ScstSpecValidator.Resolved resolved, ScstTargetState? target,
        ScstChanges changes, CancellationToken cancellationToken)
    {
        var iqn = spec.TargetIqn;
        if (target is null)
        {
            var command = ScstCommand.Of($"add_target {iqn}");
            var errno = await _sysfs.TryWriteAsync(ScstPaths.IscsiMgmt, command, cancellationToken).ConfigureAwait(false);
            changes.Target(iqn);
            if (errno == Errno.EEXIST)
            {
                target = await _reader.ReadTargetAsync(iqn, cancellationToken).ConfigureAwait(false);
            }
            else if (errno != 0)
            {
                throw ScstErrors.ForWrite(errno, _sysfs.PathOf(ScstPaths.IscsiMgmt), command);
            }
            else
            {
                _logger.LogInformation("Created SCST iSCSI target {Target} for export {Key}", iqn, spec.Key);
            }
            target ??= ScstTargetState.Empty(iqn);
        }

        // The default LUN set stays empty: an initiator sees a LUN only through its own group.
        foreach (var lun in target.DefaultLuns)
        {
            await DeleteLunAsync(ScstPaths.TargetLunsMgmt(iqn), lun.Number, changes, iqn, cancellationToken).ConfigureAwait(false);
        }

        var closed = new HashSet<string>(StringComparer.Ordinal);
        var wanted = resolved.Access.ToDictionary(a => a.Group, StringComparer.Ordinal);

        // Fencing first: access is taken away before anything is granted.
        foreach (var group in target.Groups.Where(g => !wanted.ContainsKey(g.Name)))
        {
            await RemoveGroupAsync(iqn, group, target.Sessions, closed, changes, cancellationToken).ConfigureAwait(false);
        }

        foreach (var (groupName, initiator, readOnly) in resolved.Access)
        {
            var group = target.Group(groupName);
            if (group is null)
            {
                var command = ScstCommand.Of($"create {groupName}");
                var errno = await _sysfs.TryWriteAsync(ScstPaths.GroupsMgmt(iqn), command, cancellationToken).ConfigureAwait(false);
                changes.Target(iqn);
                if (errno == Errno.EEXIST)
                {
                    group = (await _reader.ReadTargetAsync(iqn, cancellationToken).ConfigureAwait(false))?.Group(groupName);
                }
                else if (errno != 0)
                {
                    throw ScstErrors.ForWrite(errno, _sysfs.PathOf(ScstPaths.GroupsMgmt(iqn)), command);
                }
                group ??= new ScstGroup(groupName, [], []);
            }

            var strays = group.Initiators.Where(i => !string.Equals(i, initiator, StringComparison.Ordinal)).ToList();
            foreach (var stray in strays)
            {
                await DeleteInitiatorAsync(iqn, groupName, stray, changes, cancellationToken).ConfigureAwait(false);
            }
            await CloseSessionsAsync(iqn, strays, target.Sessions, closed, cancellationToken).ConfigureAwait(false);

            foreach (var lun in group.Luns.Where(l => l.Number != 0))
            {
                await DeleteLunAsync(ScstPaths.GroupLunsMgmt(iqn, groupName), lun.Number, changes, iqn, cancellationToken).ConfigureAwait(false);
            }
            await EnsureLunZeroAsync(iqn, groupName, group.Lun(0), spec.DeviceName, readOnly, changes, cancellationToken).ConfigureAwait(false);

            if (!group.Initiators.Contains(initiator, StringComparer.Ordinal))
            {
                var command = ScstCommand.Of($"add {initiator}");
                var errno = await _sysfs.TryWriteAsync(ScstPaths.GroupInitiatorsMgmt(iqn, groupName), command, cancellationToken).ConfigureAwait(false);
                changes.Target(iqn);
                if (errno is not (0 or Errno.EEXIST))
                {
                    throw ScstErrors.ForWrite(errno, _sysfs.PathOf(ScstPaths.GroupInitiatorsMgmt(iqn, groupName)), command);
                }
                _logger.LogInformation("Granted initiator {Initiator} {Access} access to {Target}", initiator, readOnly ? "read-only" : "read-write", iqn);
            }
        }

        // Sessions of initiators that no longer have access (however they got in) are closed at once.
        var allowed = resolved.Access.Select(a => a.Initiator).ToHashSet(StringComparer.OrdinalIgnoreCase);
        var unwanted = target.Sessions.Select(ScstPaths.InitiatorOfSession).Where(i => !allowed.Contains(i)).Distinct(StringComparer.Ordinal).ToList();
        await CloseSessionsAsync(iqn, unwanted, target.Sessions, closed, cancellationToken).ConfigureAwait(false);

        await ConvergeChapAsync(spec, target, changes, cancellationToken).ConfigureAwait(false);
        await ConvergePortalsAsync(iqn, resolved.PortalPatterns, target, changes, cancellationToken).ConfigureAwait(false);

        if (!target.Enabled)
        {
            await EnableTargetAsync(iqn, changes, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task EnsureLunZeroAsync(string iqn, string group, ScstLun? current, string device, bool readOnly, ScstChanges changes, CancellationToken cancellationToken)
    {
        if (current is not null && string.Equals(current.Device, device, StringComparison.Ordinal) && current.ReadOnly == readOnly)
        {
            return;
        }
        var path = ScstPaths.GroupLunsMgmt(iqn, group);
        ScstCommand command;
        if (current is null)
        {
            command = ScstCommand.Of(readOnly ? $"add {device} 0 read_only=1" : $"add {device} 0");
            var errno = await _sysfs.TryWriteAsync(path, command, cancellationToken).ConfigureAwait(false);
            changes.Target(iqn);
            if (errno == 0)
            {
                return;
            }
            if (errno != Errno.EEXIST)
            {
                throw ScstErrors.ForWrite(errno, _sysfs.PathOf(path), command);
            }
            // LUN 0 appeared meanwhile: make it ours with the right access below.
        }
        // "replace" swaps the device or the read-only flag in one step and tells initiators (INQUIRY DATA HAS CHANGED).
        command = ScstCommand.Of($"replace {device} 0 read_only={(readOnly ? 1 : 0)}");
        await _sysfs.WriteAsync(path, command, cancellationToken).ConfigureAwait(false);
        changes.Target(iqn);
    }

    private async Task ConvergeChapAsync(ExportSpec spec, ScstTargetState target, ScstChanges changes, CancellationToken cancellationToken)
    {
        var iqn = spec.TargetIqn;
        var chap = spec.Chap;
        // New credentials go in before old ones go out, so the target never accepts a login without CHAP in between.
        if (chap is not null)
        {
            var current = target.IncomingUsers.FirstOrDefault(u => string.Equals(u.User, chap.User, StringComparison.Ordinal));
            if (current is null)
            {
                await _sysfs.WriteAsync(ScstPaths.IscsiMgmt, ScstCommand.WithSecret($"add_target_attribute {iqn} IncomingUser {chap.User}", chap.Secret), cancellationToken).ConfigureAwait(false);
                changes.Target(iqn);
            }
            else if (!string.Equals(current.Secret, chap.Secret, StringComparison.Ordinal))
            {
                // Writing "user secret" into an existing IncomingUser file replaces that entry in place.
                await _sysfs.WriteAsync(ScstPaths.TargetAttribute(iqn, current.Attribute), ScstCommand.WithSecret(chap.User, chap.Secret), cancellationToken).ConfigureAwait(false);
                changes.Target(iqn);
            }
        }
        foreach (var user in target.IncomingUsers.Where(u => chap is null || !string.Equals(u.User, chap.User, StringComparison.Ordinal)))
        {
            await DeleteTargetAttributeAsync(iqn, "IncomingUser", user.User, changes, cancellationToken).ConfigureAwait(false);
        }

        var outgoing = target.OutgoingUser;
        if (chap is { Mutual: true })
        {
            if (outgoing is null || !string.Equals(outgoing.User, chap.MutualUser, StringComparison.Ordinal) || !string.Equals(outgoing.Secret, chap.MutualSecret, StringComparison.Ordinal))
            {
                // A target keeps one OutgoingUser: adding replaces it.
                await _sysfs.WriteAsync(ScstPaths.IscsiMgmt, ScstCommand.WithSecret($"add_target_attribute {iqn} OutgoingUser {chap.MutualUser}", chap.MutualSecret!), cancellationToken).ConfigureAwait(false);
                changes.Target(iqn);
            }
        }
        else if (outgoing is not null)
        {
            await DeleteTargetAttributeAsync(iqn, "OutgoingUser", outgoing.User, changes, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task ConvergePortalsAsync(string iqn, IReadOnlyList<string> wanted, ScstTargetState target, ScstChanges changes, CancellationToken cancellationToken)
    {
        var present = target.AllowedPortals.Select(p => p.Pattern).ToHashSet(StringComparer.Ordinal);
        foreach (var pattern in wanted.Where(p => !present.Contains(p)))
        {
            await _sysfs.WriteAsync(ScstPaths.IscsiMgmt, ScstCommand.Of($"add_target_attribute {iqn} allowed_portal {pattern}"), cancellationToken).ConfigureAwait(false);
            changes.Target(iqn);
        }
        foreach (var pattern in present.Where(p => !wanted.Contains(p, StringComparer.Ordinal)))
        {
            await DeleteTargetAttributeAsync(iqn, "allowed_portal", pattern, changes, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task DeleteTargetAttributeAsync(string iqn, string attribute, string value, ScstChanges changes, CancellationToken cancellationToken)
    {
        var command = ScstCommand.Of($"del_target_attribute {iqn} {attribute} {value}");
        var errno = await _sysfs.TryWriteAsync(ScstPaths.IscsiMgmt, command, cancellationToken).ConfigureAwait(false);
        changes.Target(iqn);
        // ENOENT/EINVAL: the entry is already gone (a retry after a crash).
        if (errno is not (0 or Errno.ENOENT or Errno.EINVAL))
        {
            throw ScstErrors.ForWrite(errno, _sysfs.PathOf(ScstPaths.IscsiMgmt), command);
        }
    }

    private async Task EnableTargetAsync(string iqn, ScstChanges changes, CancellationToken cancellationToken)
    {
        var path = ScstPaths.TargetAttribute(iqn, "enabled");
        var command = ScstCommand.Of("1");
        var errno = await _sysfs.TryWriteAsync(path, command, cancellationToken).ConfigureAwait(false);
        changes.Target(iqn);
        if (errno == Errno.EBADSLT)
        {
            // Another target holds this rel_tgt_id (e.g. one restored from an old scst.conf): take a free one.
            var free = await FreeRelativeTargetIdAsync(cancellationToken).ConfigureAwait(false);
            _logger.LogWarning("rel_tgt_id of {Target} is taken by another target; using {RelTgtId}", iqn, free);
            await _sysfs.WriteAsync(ScstPaths.TargetAttribute(iqn, "rel_tgt_id"), ScstCommand.Of(free.ToString(CultureInfo.InvariantCulture)), cancellationToken).ConfigureAwait(false);
            errno = await _sysfs.TryWriteAsync(path, command, cancellationToken).ConfigureAwait(false);
        }
        if (errno != 0)
        {
            throw ScstErrors.ForWrite(errno, _sysfs.PathOf(path), command);
        }
        _logger.LogInformation("Enabled SCST iSCSI target {Target}", iqn);
    }

    private async Task<int> FreeRelativeTargetIdAsync(CancellationToken cancellationToken)
    {
        var used = new HashSet<int>();
        foreach (var driver in _sysfs.ListDirectories(ScstPaths.Targets))
        {
            foreach (var target in _sysfs.ListDirectories($"{ScstPaths.Targets}/{driver}"))
            {
                var text = await _sysfs.ReadLineAsync($"{ScstPaths.Targets}/{driver}/{target}/rel_tgt_id", cancellationToken).ConfigureAwait(false);
                if (ScstStateReader.ParseInt(text) is { } id)
                {
                    used.Add(id);
                }
            }
        }
        for (var id = 1; id <= ushort.MaxValue; id++)
        {
            if (!used.Contains(id))
            {
                return id;
            }
        }
        throw StatusException.ResourceExhausted("every SCST relative target id (1-65535) is in use");
    }

    private async Task EnsureDriverEnabledAsync(ScstChanges changes, CancellationToken cancellationToken)
    {
        var enabled = ScstStateReader.ParseBool(await _sysfs.ReadLineAsync(ScstPaths.IscsiEnabled, cancellationToken).ConfigureAwait(false));
        if (enabled == false)
        {
            await _sysfs.WriteAsync(ScstPaths.IscsiEnabled, ScstCommand.Of("1"), cancellationToken).ConfigureAwait(false);
            changes.Driver = true;
            _logger.LogInformation("Enabled the SCST iSCSI target driver");
        }
    }

    // ---------------------------------------------------------------- removal and fencing

    private async Task TeardownTargetAsync(ScstTargetState target, ScstChanges changes, CancellationToken cancellationToken)
    {
        var iqn = target.Iqn;
        var closed = new HashSet<string>(StringComparer.Ordinal);
        foreach (var group in target.Groups)
        {
            await RemoveGroupAsync(iqn, group, target.Sessions, closed, changes, cancellationToken).ConfigureAwait(false);
        }
        foreach (var lun in target.DefaultLuns)
        {
            await DeleteLunAsync(ScstPaths.TargetLunsMgmt(iqn), lun.Number, changes, iqn, cancellationToken).ConfigureAwait(false);
        }
        // del_target closes whatever sessions remain and waits for them.
        var command = ScstCommand.Of($"del_target {iqn}");
        var errno = await _sysfs.TryWriteAsync(ScstPaths.IscsiMgmt, command, cancellationToken).ConfigureAwait(false);
        changes.Target(iqn);
        if (errno is not (0 or Errno.ENOENT))
        {
            throw ScstErrors.ForWrite(errno, _sysfs.PathOf(ScstPaths.IscsiMgmt), command);
        }
        _logger.LogInformation("Deleted SCST iSCSI target {Target}", iqn);
    }

    /// <summary>
    /// Takes an initiator group away: its initiators first (SCST re-binds their live sessions to the empty default
    /// LUN set at once), then their sessions are force-closed, then the LUNs and the group go.
    /// </summary>
    private async Task RemoveGroupAsync(string iqn, ScstGroup group, IReadOnlyList<string> sessions, HashSet<string> closed, ScstChanges changes, CancellationToken cancellationToken)
    {
        foreach (var initiator in group.Initiators)
        {
            await DeleteInitiatorAsync(iqn, group.Name, initiator, changes, cancellationToken).ConfigureAwait(false);
        }
        await CloseSessionsAsync(iqn, group.Initiators, sessions, closed, cancellationToken).ConfigureAwait(false);
        foreach (var lun in group.Luns)
        {
            await DeleteLunAsync(ScstPaths.GroupLunsMgmt(iqn, group.Name), lun.Number, changes, iqn, cancellationToken).ConfigureAwait(false);
        }

        var path = ScstPaths.GroupsMgmt(iqn);
        var command = ScstCommand.Of($"del {group.Name}");
        var deadline = _time.GetTimestamp() + (long)(_options.SessionCloseTimeout.TotalSeconds * _time.TimestampFrequency);
        while (true)
        {
            var errno = await _sysfs.TryWriteAsync(path, command, cancellationToken).ConfigureAwait(false);
            changes.Target(iqn);
            if (errno == 0 || (errno == Errno.EINVAL && !_sysfs.DirectoryExists(ScstPaths.Group(iqn, group.Name))))
            {
                break;
            }
            if (errno != Errno.EBUSY)
            {
                throw ScstErrors.ForWrite(errno, _sysfs.PathOf(path), command);
            }
            if (_time.GetTimestamp() > deadline)
            {
                throw StatusException.Unavailable(
                    $"initiator group {group.Name} of {iqn} still has sessions attached after {_options.SessionCloseTimeout.TotalSeconds:0} s (EBUSY); retry later");
            }
            // Sessions still closing: close any that are left (fresh listing) and wait for them to go.
            await CloseSessionsAsync(iqn, group.Initiators, null, null, cancellationToken).ConfigureAwait(false);
            await Task.Delay(_options.PollInterval, _time, cancellationToken).ConfigureAwait(false);
        }
        _logger.LogInformation("Removed initiator group {Group} ({Initiators}) from {Target}", group.Name, string.Join(",", group.Initiators), iqn);
    }

    private async Task DeleteInitiatorAsync(string iqn, string group, string initiator, ScstChanges changes, CancellationToken cancellationToken)
    {
        var path = ScstPaths.GroupInitiatorsMgmt(iqn, group);
        var command = ScstCommand.Of($"del {initiator}");
        var errno = await _sysfs.TryWriteAsync(path, command, cancellationToken).ConfigureAwait(false);
        changes.Target(iqn);
        if (errno == 0)
        {
            _logger.LogInformation("Revoked initiator {Initiator} from {Target}", initiator, iqn);
            return;
        }
        // EINVAL: not in the group (any more).
        if (errno != Errno.EINVAL || File.Exists(_sysfs.PathOf($"{ScstPaths.GroupInitiators(iqn, group)}/{initiator}")))
        {
            throw ScstErrors.ForWrite(errno, _sysfs.PathOf(path), command);
        }
    }

    private async Task DeleteLunAsync(string mgmtPath, int lun, ScstChanges changes, string iqn, CancellationToken cancellationToken)
    {
        var command = ScstCommand.Of($"del {lun.ToString(CultureInfo.InvariantCulture)}");
        var errno = await _sysfs.TryWriteAsync(mgmtPath, command, cancellationToken).ConfigureAwait(false);
        changes.Target(iqn);
        var lunDirectory = $"{mgmtPath[..^"/mgmt".Length]}/{lun.ToString(CultureInfo.InvariantCulture)}";
        if (errno != 0 && (errno != Errno.EINVAL || _sysfs.DirectoryExists(lunDirectory)))
        {
            throw ScstErrors.ForWrite(errno, _sysfs.PathOf(mgmtPath), command);
        }
    }

    /// <summary>Force-closes every session (name, name_1, …) of the given initiators; already gone is fine.</summary>
    private async Task CloseSessionsAsync(string iqn, IReadOnlyCollection<string> initiators, IReadOnlyList<string>? sessions, HashSet<string>? closed, CancellationToken cancellationToken)
    {
        if (initiators.Count == 0)
        {
            return;
        }
        // SCST matches initiator names case-insensitively, so a session of "IQN…:Host" is bound by "iqn…:host".
        var names = initiators.ToHashSet(StringComparer.OrdinalIgnoreCase);
        foreach (var session in sessions ?? _sysfs.ListDirectories(ScstPaths.Sessions(iqn)).ToList())
        {
            if (!names.Contains(ScstPaths.InitiatorOfSession(session)) || (closed is not null && !closed.Add(session)))
            {
                continue;
            }
            var path = $"{ScstPaths.Session(iqn, session)}/force_close";
            var command = ScstCommand.Of("1");
            var errno = await _sysfs.TryWriteAsync(path, command, cancellationToken).ConfigureAwait(false);
            if (errno == 0)
            {
                _logger.LogInformation("Closed session {Session} on {Target}: its initiator lost access", session, iqn);
            }
            else if (errno is not (Errno.ENOENT or Errno.ENODEV))
            {
                throw ScstErrors.ForWrite(errno, _sysfs.PathOf(path), command);
            }
        }
    }

    private async Task DeleteDeviceAsync(ScstDeviceState device, ScstChanges changes, CancellationToken cancellationToken)
    {
        var handler = device.Handler ?? throw StatusException.FailedPrecondition($"SCST device {device.Name} has no handler; it is not ours to delete");
        var path = ScstPaths.HandlerMgmt(handler);
        var command = ScstCommand.Of($"del_device {device.Name}");
        var errno = await _sysfs.TryWriteAsync(path, command, cancellationToken).ConfigureAwait(false);
        changes.Device(device.Name);
        if (errno != 0 && (errno is not (Errno.EINVAL or Errno.ENOENT) || _sysfs.DirectoryExists(ScstPaths.Device(device.Name))))
        {
            throw ScstErrors.ForWrite(errno, _sysfs.PathOf(path), command);
        }
        _logger.LogInformation("Deleted SCST device {Device}", device.Name);
    }

    private async Task SaveConfigAsync(ScstChanges changes)
    {
        if (!changes.Any || !_config.Enabled)
        {
            return;
        }
        try
        {
            await _config.SaveAsync(changes, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or StatusException)
        {
            // The export itself is fine; the engine's own state restores it at start-up even without scst.conf.
            _logger.LogError(e, "Could not save the SCST configuration to {ConfigFile}", _options.ConfigFile);
        }
    }
}
