using System.Globalization;
using CsiScst.Core.Errors;
using CsiScst.Core.Exec;
using CsiScst.Core.Ids;
using Grpc.Core;
using Microsoft.Extensions.Logging;
using CsiScst.Targets.Native;

namespace CsiScst.Targets.Lio;

/// <summary>
/// The LIO engine: the kernel's own iSCSI target, driven through configfs (interfaces.md B; layout and
/// decisions in README.md next to this file). Every call reads what is there and changes only what differs,
/// so a retry after any interruption converges and a converged export costs reads only.
/// </summary>
public sealed partial class LioEngine : ITargetEngine
{
    private static readonly string[] Modules = ["target_core_mod", "target_core_iblock", "target_core_file", "iscsi_target_mod"];

    private readonly IConfigfs _fs;
    private readonly IToolRunner _runner;
    private readonly LioOptions _options;
    private readonly ObjectNames _names;
    private readonly LioLayout _layout;
    private readonly ILogger<LioEngine> _logger;
    // One writer at a time: HBA index allocation must not race, and a teardown must not interleave with a
    // rebuild of the same objects. Reads (lists, sessions, stats) take no lock.
    private readonly SemaphoreSlim _mutations = new(1, 1);

    public LioEngine(IConfigfs configfs, IToolRunner runner, LioOptions options, ObjectNames names, ILogger<LioEngine> logger)
    {
        _fs = configfs;
        _runner = runner;
        _options = options;
        _names = names;
        _layout = new LioLayout(options.ConfigfsRoot);
        _logger = logger;
    }

    public string Kind => "lio";

    public LioLayout Layout => _layout;

    // ------------------------------------------------------------------ probe

    public async Task<EngineHealth> ProbeAsync(CancellationToken cancellationToken)
    {
        if (_fs.DirectoryExists(_layout.Iscsi))
        {
            return EngineHealth.Healthy;
        }
        await _mutations.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (!_fs.DirectoryExists(_layout.Root))
            {
                if (!_options.LoadModules)
                {
                    return EngineHealth.NotReady($"{_layout.Root} does not exist: configfs is not mounted or target_core_mod is not loaded (module loading is off)");
                }
                var failure = await MountConfigfsAsync(cancellationToken).ConfigureAwait(false)
                    ?? await LoadModulesAsync(cancellationToken).ConfigureAwait(false);
                if (failure is not null)
                {
                    return EngineHealth.NotReady(failure);
                }
                if (!_fs.DirectoryExists(_layout.Root))
                {
                    return EngineHealth.NotReady($"{_layout.Root} does not exist after loading target_core_mod: is configfs mounted at {Path.GetDirectoryName(_layout.Root)}?");
                }
            }
            else if (_options.LoadModules && await LoadModulesAsync(cancellationToken).ConfigureAwait(false) is { } failure)
            {
                return EngineHealth.NotReady(failure);
            }
            // Creating the fabric group is what makes LIO serve iSCSI; the kernel loads iscsi_target_mod for it.
            var errno = _fs.MakeDirectory(_layout.Iscsi);
            if (errno is not (0 or Errno.EEXIST))
            {
                return EngineHealth.NotReady($"mkdir {_layout.Iscsi} failed with {Errno.Name(errno)}: iscsi_target_mod is missing or cannot load");
            }
            LogFabricReady(_layout.Iscsi);
            return EngineHealth.Healthy;
        }
        finally
        {
            _mutations.Release();
        }
    }

    private async Task<string?> MountConfigfsAsync(CancellationToken cancellationToken)
    {
        var mountPoint = Path.GetDirectoryName(_layout.Root) ?? "/sys/kernel/config";
        string mounts;
        try
        {
            mounts = await File.ReadAllTextAsync(_options.MountsFile, cancellationToken).ConfigureAwait(false);
        }
        catch (IOException e)
        {
            return $"cannot read {_options.MountsFile}: {e.Message}";
        }
        foreach (var line in mounts.Split('\n'))
        {
            var fields = line.Split(' ');
            if (fields.Length > 2 && fields[1] == mountPoint && fields[2] == "configfs")
            {
                return null;
            }
        }
        try
        {
            await _runner.RunAsync(new ToolCommand("mount", "-t", "configfs", "configfs", mountPoint) { Timeout = _options.ToolTimeout }, cancellationToken).ConfigureAwait(false);
            return null;
        }
        catch (ToolException e)
        {
            return $"configfs is not mounted at {mountPoint} and mounting it failed: {e.Message}";
        }
    }

    private async Task<string?> LoadModulesAsync(CancellationToken cancellationToken)
    {
        foreach (var module in Modules)
        {
            try
            {
                await _runner.RunAsync(new ToolCommand("modprobe", module) { Timeout = _options.ToolTimeout }, cancellationToken).ConfigureAwait(false);
            }
            catch (ToolException e)
            {
                return $"loading kernel module {module} failed: {e.Message}";
            }
        }
        return null;
    }

    // ------------------------------------------------------------------ ensure / remove / resync

    public async Task EnsureExportAsync(ExportSpec spec, CancellationToken cancellationToken)
    {
        Validate(spec);
        await _mutations.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var inventory = ReadInventory();
            var changes = EnsureCore(spec, inventory, cancellationToken);
            LogEnsured(spec.Key, spec.TargetIqn, changes);
        }
        finally
        {
            _mutations.Release();
        }
    }

    public async Task RemoveExportAsync(string key, CancellationToken cancellationToken)
    {
        if (!Names.IsValidKey(key))
        {
            throw StatusException.InvalidArgument($"volume key '{key}' must be {Names.KeyLength} lowercase hex digits");
        }
        await _mutations.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var changes = new Changes();
            RemoveCore(key, ReadInventory(), changes, cancellationToken);
            LogRemoved(key, changes.Count);
        }
        finally
        {
            _mutations.Release();
        }
    }

    public async Task ResyncSizeAsync(ExportSpec spec, CancellationToken cancellationToken)
    {
        Validate(spec);
        await _mutations.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var location = ReadInventory().Find(spec.DeviceName).FirstOrDefault()
                ?? throw StatusException.NotFound($"LIO backstore {spec.DeviceName} of volume {spec.Key} does not exist");
            if (location.Plugin == LioLayout.IblockPlugin)
            {
                // iblock answers READ CAPACITY from bdev_nr_bytes() of the open block device on every call
                // (target_core_iblock.c iblock_get_blocks): a grown LV or RBD is visible at the next rescan.
                return;
            }
            // fileio on a regular file reports its fixed fd_dev_size (target_core_file.c fd_get_blocks); the
            // control attribute accepts fd_dev_size= on a live backstore and READ CAPACITY uses it at once.
            var size = FileSize(spec.BackingPath);
            var (current, _) = LioText.ParseFileioInfo(Read(location.Path + "/info"));
            if (current == size)
            {
                return;
            }
            WriteOrThrow(location.Path + "/control", "fd_dev_size=" + size.ToString(CultureInfo.InvariantCulture), new Changes());
            LogResized(spec.Key, current ?? -1, size);
        }
        finally
        {
            _mutations.Release();
        }
    }

    // ------------------------------------------------------------------ reads

    public Task<IReadOnlyList<ActualExport>> ListExportsAsync(CancellationToken cancellationToken)
    {
        var inventory = ReadInventory();
        var keys = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var iqn in inventory.Targets)
        {
            keys.Add(_names.KeyFromTargetIqn(iqn)!);
        }
        foreach (var name in inventory.Backstores.Keys)
        {
            keys.Add(_names.KeyFromDeviceName(name)!);
        }
        var exports = new List<ActualExport>(keys.Count);
        foreach (var key in keys)
        {
            cancellationToken.ThrowIfCancellationRequested();
            exports.Add(ReadExport(key, inventory));
        }
        return Task.FromResult<IReadOnlyList<ActualExport>>(exports);
    }

    public Task<IReadOnlyList<SessionInfo>> ListSessionsAsync(CancellationToken cancellationToken)
    {
        var sessions = new List<SessionInfo>();
        foreach (var iqn in ReadInventory().Targets.Order(StringComparer.Ordinal))
        {
            cancellationToken.ThrowIfCancellationRequested();
            var key = _names.KeyFromTargetIqn(iqn)!;
            foreach (var acl in Directories(_layout.AclGroup(iqn)))
            {
                if (ReadSession(iqn, acl) is { } session)
                {
                    sessions.Add(new SessionInfo(key, iqn, session.InitiatorName, session.Address));
                }
            }
        }
        return Task.FromResult<IReadOnlyList<SessionInfo>>(sessions);
    }

    public Task<IReadOnlyList<ExportStats>> GetStatsAsync(CancellationToken cancellationToken)
    {
        var stats = new List<ExportStats>();
        foreach (var iqn in ReadInventory().Targets.Order(StringComparer.Ordinal))
        {
            cancellationToken.ThrowIfCancellationRequested();
            var key = _names.KeyFromTargetIqn(iqn)!;
            // target_core_stat.c: read_mbytes / write_mbytes are the LUN's data octets >> 20 (whole MiB);
            // in_cmds counts every command. LIO keeps no per-direction command counts.
            var port = _layout.Lun(iqn) + "/statistics/scsi_tgt_port/";
            var readMiB = ReadNumber(port + "read_mbytes") ?? 0;
            var writtenMiB = ReadNumber(port + "write_mbytes") ?? 0;
            var sessions = Directories(_layout.AclGroup(iqn)).Count(acl => ReadSession(iqn, acl) is not null);
            stats.Add(new ExportStats(key, readMiB << 20, writtenMiB << 20, 0, 0, sessions));
        }
        return Task.FromResult<IReadOnlyList<ExportStats>>(stats);
    }

    /// <summary>Total commands the LUN received (LIO's in_cmds), which <see cref="ExportStats"/> cannot carry.</summary>
    public long? ReadCommandCount(string key) => ReadNumber(_layout.Lun(_names.TargetIqn(key)) + "/statistics/scsi_tgt_port/in_cmds");

    // ------------------------------------------------------------------ reconcile

    public async Task<EngineReconcileResult> ReconcileAsync(IReadOnlyCollection<ExportSpec> desired, CancellationToken cancellationToken)
    {
        var errors = new List<string>();
        var wanted = new Dictionary<string, ExportSpec>(StringComparer.Ordinal);
        foreach (var spec in desired)
        {
            try
            {
                Validate(spec);
                wanted[spec.Key] = spec;
            }
            catch (StatusException e)
            {
                errors.Add($"{spec.Key}: {e.Message}");
            }
        }
        await _mutations.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var inventory = ReadInventory();
            var repaired = 0;
            foreach (var spec in wanted.Values.OrderBy(s => s.Key, StringComparer.Ordinal))
            {
                cancellationToken.ThrowIfCancellationRequested();
                try
                {
                    var changes = EnsureCore(spec, inventory, cancellationToken);
                    if (changes.Count > 0)
                    {
                        repaired++;
                        LogRepaired(spec.Key, changes);
                    }
                }
                catch (StatusException e)
                {
                    errors.Add($"{spec.Key}: {e.Message}");
                    LogReconcileFailed(spec.Key, e.Message);
                }
            }
            var orphans = 0;
            var ours = inventory.Targets.Select(iqn => _names.KeyFromTargetIqn(iqn)!)
                .Concat(inventory.Backstores.Keys.Select(name => _names.KeyFromDeviceName(name)!))
                .Where(key => !wanted.ContainsKey(key))
                .Distinct(StringComparer.Ordinal)
                .Order(StringComparer.Ordinal)
                .ToList();
            foreach (var key in ours)
            {
                cancellationToken.ThrowIfCancellationRequested();
                try
                {
                    var changes = new Changes();
                    RemoveCore(key, inventory, changes, cancellationToken);
                    orphans++;
                    LogOrphanRemoved(key, changes.Count);
                }
                catch (StatusException e)
                {
                    errors.Add($"{key}: {e.Message}");
                    LogReconcileFailed(key, e.Message);
                }
            }
            return new EngineReconcileResult(wanted.Count, repaired, orphans, errors);
        }
        finally
        {
            _mutations.Release();
        }
    }

    // ------------------------------------------------------------------ the converging core

    private LioInventory ReadInventory() =>
        LioInventory.Read(_fs, _layout, name => _names.KeyFromDeviceName(name) is not null, iqn => _names.KeyFromTargetIqn(iqn) is not null);

    /// <summary>Converges one export; returns what it changed (nothing when it already matched).</summary>
    private Changes EnsureCore(ExportSpec spec, LioInventory inventory, CancellationToken cancellationToken)
    {
        var changes = new Changes();
        var iqn = spec.TargetIqn;
        if (!_fs.DirectoryExists(_layout.Iscsi))
        {
            // Gone with a wipe of the fabric (rmdir iscsi, module reload); the kernel reloads the module for it.
            Mkdir(_layout.Iscsi, changes);
        }
        var backstore = EnsureBackstore(spec, inventory, changes);
        cancellationToken.ThrowIfCancellationRequested();

        Mkdir(_layout.Target(iqn), changes);
        Mkdir(_layout.Tpg(iqn), changes);
        // Demo mode off: only explicit ACLs get in, nobody discovers a target without one, and a mapped LUN
        // starts read-only (prod_mode_write_protect) until write_protect=0 is written for a read-write ACL.
        EnsureAttribute(_layout.TpgAttrib(iqn, "generate_node_acls"), "0", changes);
        EnsureAttribute(_layout.TpgAttrib(iqn, "cache_dynamic_acls"), "0", changes);
        EnsureAttribute(_layout.TpgAttrib(iqn, "demo_mode_write_protect"), "1", changes);
        EnsureAttribute(_layout.TpgAttrib(iqn, "prod_mode_write_protect"), "1", changes);
        EnsureAttribute(_layout.TpgAttrib(iqn, "demo_mode_discovery"), "0", changes, optional: true);
        if (spec.Chap is null)
        {
            EnsureAttribute(_layout.TpgAttrib(iqn, "authentication"), "0", changes);
        }

        EnsureLun(iqn, backstore, changes);
        EnsurePortals(spec, changes);
        cancellationToken.ThrowIfCancellationRequested();

        var wanted = spec.Initiators.ToDictionary(i => i.InitiatorIqn, i => i.ReadOnly, StringComparer.Ordinal);
        // Fence first: access that must end ends before anything new is granted.
        foreach (var acl in Directories(_layout.AclGroup(iqn)))
        {
            if (!wanted.ContainsKey(acl))
            {
                Fence(iqn, acl, changes);
            }
        }
        foreach (var (initiator, readOnly) in wanted.OrderBy(w => w.Key, StringComparer.Ordinal))
        {
            EnsureAcl(iqn, initiator, readOnly, spec.Chap, changes);
        }
        if (spec.Chap is not null)
        {
            // After the ACLs hold their credentials: a login in between is refused, never let in without CHAP.
            EnsureAttribute(_layout.TpgAttrib(iqn, "authentication"), "1", changes);
        }
        EnsureAttribute(_layout.TpgEnable(iqn), "1", changes);
        return changes;
    }

    private BackstoreLocation EnsureBackstore(ExportSpec spec, LioInventory inventory, Changes changes)
    {
        var plugin = spec.IsFile ? LioLayout.FileioPlugin : LioLayout.IblockPlugin;
        var linked = LunLinkTarget(spec.TargetIqn);
        var found = inventory.Find(spec.DeviceName).ToList();
        var current = found.FirstOrDefault(l => l.Path == linked) ?? found.FirstOrDefault();
        foreach (var duplicate in found.Where(l => l != current))
        {
            // A second object of the same name (e.g. restored by targetcli into another HBA) is never exported by us.
            RemoveBackstore(duplicate, inventory, changes);
        }

        if (current is not null)
        {
            var enabled = Read(current.Path + "/enable").Trim() == "1";
            var backing = Read(current.Path + "/udev_path").Trim();
            if (!enabled)
            {
                // Never configured (interrupted create): it cannot be exported, so it is safe to build it again.
                RemoveBackstore(current, inventory, changes);
                current = null;
            }
            else if (current.Plugin != plugin || backing != spec.BackingPath)
            {
                LogBackstoreReplaced(spec.Key, current.Path, current.Plugin + ":" + backing, plugin + ":" + spec.BackingPath);
                RemoveCore(spec.Key, inventory, changes, CancellationToken.None);
                current = null;
            }
            else
            {
                var serial = LioText.ParseUnitSerial(Read(current.Path + "/wwn/vpd_unit_serial"));
                if (serial != spec.Serial)
                {
                    if (linked == current.Path)
                    {
                        // LIO refuses a new serial while the backstore is exported (EINVAL); the identity is wrong,
                        // so the export is rebuilt rather than served with a serial the node would reject.
                        LogBackstoreReplaced(spec.Key, current.Path, "serial " + serial, "serial " + spec.Serial);
                        RemoveCore(spec.Key, inventory, changes, CancellationToken.None);
                        current = null;
                    }
                    else
                    {
                        WriteOrThrow(current.Path + "/wwn/vpd_unit_serial", spec.Serial, changes);
                    }
                }
            }
        }

        var created = current is null;
        current ??= CreateBackstore(spec, plugin, inventory, changes);
        EnsureBackstoreAttributes(spec, current, created, exported: !created && LunLinkTarget(spec.TargetIqn) == current.Path, changes);
        return current;
    }

    private BackstoreLocation CreateBackstore(ExportSpec spec, string plugin, LioInventory inventory, Changes changes)
    {
        var control = plugin == LioLayout.IblockPlugin
            ? "udev_path=" + spec.BackingPath
            : $"fd_dev_name={spec.BackingPath},fd_dev_size={FileSize(spec.BackingPath).ToString(CultureInfo.InvariantCulture)}"
              + (spec.WriteCache == WriteCacheMode.WriteBack ? ",fd_buffered_io=1" : "");
        string hba;
        int index;
        while (true)
        {
            index = inventory.NextFreeIndex(plugin);
            hba = _layout.Hba(plugin, index);
            var errno = _fs.MakeDirectory(hba);
            inventory.MarkUsed(plugin, index);
            if (errno == 0)
            {
                changes.Add("mkdir " + hba);
                break;
            }
            if (errno != Errno.EEXIST)
            {
                throw LioErrors.Failure("mkdir", hba, errno);
            }
        }
        var location = new BackstoreLocation(spec.DeviceName, plugin, index, hba, LioLayout.Backstore(hba, spec.DeviceName));
        try
        {
            var errno = _fs.MakeDirectory(location.Path);
            if (errno != 0)
            {
                throw LioErrors.Failure("mkdir", location.Path, errno);
            }
            changes.Add("mkdir " + location.Path);
            WriteOrThrow(location.Path + "/control", control, changes);
            // Informational for LIO, but it is where targetcli and our reads find the backing path.
            WriteOrThrow(location.Path + "/udev_path", spec.BackingPath, changes);
            var enable = _fs.Write(location.Path + "/enable", "1");
            if (enable != 0)
            {
                throw LioErrors.BackingFailure(spec.BackingPath, location.Path, enable);
            }
            changes.Add("write " + location.Path + "/enable");
            // Before any LUN links it: LIO refuses vpd_unit_serial on an exported backstore (EINVAL).
            WriteOrThrow(location.Path + "/wwn/vpd_unit_serial", spec.Serial, changes);
        }
        catch (StatusException)
        {
            _fs.RemoveDirectory(location.Path);
            _fs.RemoveDirectory(hba);
            throw;
        }
        inventory.Add(location);
        return location;
    }

    private void EnsureBackstoreAttributes(ExportSpec spec, BackstoreLocation backstore, bool created, bool exported, Changes changes)
    {
        var attrib = backstore.Path + "/attrib/";
        var blockSize = spec.BlockSize.ToString(CultureInfo.InvariantCulture);
        if (Read(attrib + "block_size").Trim() != blockSize)
        {
            if (exported)
            {
                // LIO refuses a block size change while the backstore is exported; changing it under a mounted
                // filesystem would be wrong anyway.
                LogCannotChange(spec.Key, "block_size", blockSize);
            }
            else
            {
                WriteOrThrow(attrib + "block_size", blockSize, changes);
            }
        }

        var writeBack = spec.WriteCache == WriteCacheMode.WriteBack;
        if (backstore.Plugin == LioLayout.FileioPlugin)
        {
            var (_, buffered) = LioText.ParseFileioInfo(Read(backstore.Path + "/info"));
            if (buffered is { } isBuffered && isBuffered != writeBack)
            {
                // fd_buffered_io is read when the backstore is enabled; only a new backstore can change it.
                LogCannotChange(spec.Key, "fd_buffered_io", writeBack ? "1" : "0");
            }
            else
            {
                EnsureAttribute(attrib + "emulate_write_cache", writeBack ? "1" : "0", changes);
            }
        }
        else if (created)
        {
            // iblock: kernels whose iblock reports the block device's own volatile cache keep that value and
            // ignore this store (while passing every FUA and SYNCHRONIZE CACHE down), so it is written once.
            WriteOrThrow(attrib + "emulate_write_cache", writeBack ? "1" : "0", changes);
        }

        var thin = spec.ThinProvisioned ? "1" : "0";
        foreach (var name in new[] { "emulate_tpu", "emulate_tpws" })
        {
            if (Read(attrib + name).Trim() == thin)
            {
                continue;
            }
            var errno = _fs.Write(attrib + name, thin);
            if (errno == 0)
            {
                changes.Add("write " + attrib + name);
            }
            else if (spec.ThinProvisioned && errno is Errno.EINVAL or Errno.ENOSYS or Errno.EOPNOTSUPP)
            {
                // The backing device has no discard: the LUN is served without UNMAP rather than not at all.
                LogNoUnmap(spec.Key, spec.BackingPath, Errno.Name(errno));
            }
            else
            {
                throw LioErrors.Failure("write", attrib + name, errno, thin);
            }
        }
    }

    private void EnsureLun(string iqn, BackstoreLocation backstore, Changes changes)
    {
        var lun = _layout.Lun(iqn);
        Mkdir(lun, changes);
        var links = _fs.List(lun).Where(e => e.Kind == ConfigfsEntryKind.Symlink).ToList();
        if (links.Count == 1 && Resolve(lun, links[0].Name) == backstore.Path)
        {
            return;
        }
        if (links.Count > 0)
        {
            // Relinking a LUN drops it from every ACL's device list; the mapped LUNs are rebuilt below.
            foreach (var acl in Directories(_layout.AclGroup(iqn)))
            {
                RemoveMappedLuns(iqn, acl, changes);
            }
            foreach (var link in links)
            {
                Unlink(lun + "/" + link.Name, changes);
            }
        }
        var path = lun + "/" + backstore.Name;
        var errno = _fs.CreateSymlink(backstore.Path, path);
        if (errno != 0)
        {
            throw LioErrors.Failure("symlink", path, errno, backstore.Path);
        }
        changes.Add("symlink " + path);
    }

    private void EnsurePortals(ExportSpec spec, Changes changes)
    {
        var iqn = spec.TargetIqn;
        var wanted = (spec.Portals.Count > 0 ? spec.Portals : (IEnumerable<string>)_options.DefaultPortals)
            .Select(LioLayout.PortalDirectory).ToHashSet(StringComparer.Ordinal);
        var present = new HashSet<string>(StringComparer.Ordinal);
        foreach (var np in Directories(_layout.NpGroup(iqn)))
        {
            var canonical = LioLayout.TryCanonicalPortal(np);
            if (canonical is not null && wanted.Contains(canonical) && present.Add(canonical))
            {
                continue;
            }
            Rmdir(_layout.Np(iqn, np), changes);
        }
        foreach (var portal in wanted.Order(StringComparer.Ordinal))
        {
            if (!present.Contains(portal))
            {
                Mkdir(_layout.Np(iqn, portal), changes);
            }
        }
    }

    private void EnsureAcl(string iqn, string initiator, bool readOnly, ChapSpec? chap, Changes changes)
    {
        var acl = _layout.Acl(iqn, initiator);
        Mkdir(acl, changes);
        // Credentials before the LUN is mapped. Written without a newline: LIO stores the bytes as given.
        EnsureSecret(acl + "/auth/userid", chap?.User, secret: false, changes);
        EnsureSecret(acl + "/auth/password", chap?.Secret, secret: true, changes);
        EnsureSecret(acl + "/auth/userid_mutual", chap is { Mutual: true } ? chap.MutualUser : null, secret: false, changes);
        EnsureSecret(acl + "/auth/password_mutual", chap is { Mutual: true } ? chap.MutualSecret : null, secret: true, changes);

        foreach (var entry in _fs.List(acl))
        {
            if (entry.Kind == ConfigfsEntryKind.Directory && entry.Name.StartsWith("lun_", StringComparison.Ordinal) && entry.Name != LioLayout.LunName)
            {
                RemoveMappedLun(acl + "/" + entry.Name, changes);
            }
        }
        var mapped = _layout.MappedLun(iqn, initiator);
        Mkdir(mapped, changes);
        var tpgLun = _layout.Lun(iqn);
        var links = _fs.List(mapped).Where(e => e.Kind == ConfigfsEntryKind.Symlink).ToList();
        if (links.Count != 1 || Resolve(mapped, links[0].Name) != tpgLun)
        {
            foreach (var link in links)
            {
                Unlink(mapped + "/" + link.Name, changes);
            }
            var path = mapped + "/" + LioLayout.LunName;
            var errno = _fs.CreateSymlink(tpgLun, path);
            if (errno != 0)
            {
                throw LioErrors.Failure("symlink", path, errno, tpgLun);
            }
            changes.Add("symlink " + path);
        }
        EnsureAttribute(mapped + "/write_protect", readOnly ? "1" : "0", changes);
    }

    /// <summary>
    /// Ends one initiator's access. Unmapping the LUN stops its new commands at once; removing the ACL then
    /// shuts its sessions down (target_core_tpg.c core_tpg_del_initiator_node_acl → target_shutdown_sessions →
    /// lio_tpg_close_session → iscsit_stop_session) and the rmdir returns only after they are gone, so no I/O
    /// from it reaches the backstore afterwards. Commands already submitted to the backstore complete there;
    /// their responses are lost with the connection and the initiator's re-login is refused (no ACL).
    /// </summary>
    private void Fence(string iqn, string initiator, Changes changes)
    {
        RemoveMappedLuns(iqn, initiator, changes);
        Rmdir(_layout.Acl(iqn, initiator), changes);
        LogFenced(iqn, initiator);
    }

    private void RemoveMappedLuns(string iqn, string initiator, Changes changes)
    {
        var acl = _layout.Acl(iqn, initiator);
        foreach (var entry in _fs.List(acl))
        {
            if (entry.Kind == ConfigfsEntryKind.Directory && entry.Name.StartsWith("lun_", StringComparison.Ordinal))
            {
                RemoveMappedLun(acl + "/" + entry.Name, changes);
            }
        }
    }

    private void RemoveMappedLun(string mapped, Changes changes)
    {
        foreach (var link in _fs.List(mapped).Where(e => e.Kind == ConfigfsEntryKind.Symlink))
        {
            Unlink(mapped + "/" + link.Name, changes);
        }
        Rmdir(mapped, changes);
    }

    /// <summary>
    /// Tears one export down in the reverse order of creation, tolerating anything already gone: disable
    /// (closes every session of the TPG), mapped-LUN links, mapped LUNs, ACLs, LUN links, LUNs, portals, TPG,
    /// target, backstore, HBA directory.
    /// </summary>
    private void RemoveCore(string key, LioInventory inventory, Changes changes, CancellationToken cancellationToken)
    {
        var iqn = _names.TargetIqn(key);
        var target = _layout.Target(iqn);
        foreach (var tpg in Directories(target).Where(d => d.StartsWith("tpgt_", StringComparison.Ordinal)))
        {
            var tpgPath = target + "/" + tpg;
            if (Read(tpgPath + "/enable", missingOk: true).Trim() == "1")
            {
                WriteOrThrow(tpgPath + "/enable", "0", changes, missingOk: true);
            }
            foreach (var acl in Directories(tpgPath + "/acls"))
            {
                var aclPath = tpgPath + "/acls/" + acl;
                foreach (var mapped in Directories(aclPath).Where(d => d.StartsWith("lun_", StringComparison.Ordinal)))
                {
                    RemoveMappedLun(aclPath + "/" + mapped, changes);
                }
                Rmdir(aclPath, changes);
            }
            foreach (var lun in Directories(tpgPath + "/lun"))
            {
                RemoveMappedLun(tpgPath + "/lun/" + lun, changes);
            }
            foreach (var np in Directories(tpgPath + "/np"))
            {
                Rmdir(tpgPath + "/np/" + np, changes);
            }
            Rmdir(tpgPath, changes);
            cancellationToken.ThrowIfCancellationRequested();
        }
        Rmdir(target, changes);
        inventory.Targets.Remove(iqn);
        foreach (var backstore in inventory.Find(_names.DeviceName(key)).ToList())
        {
            RemoveBackstore(backstore, inventory, changes);
        }
    }

    private void RemoveBackstore(BackstoreLocation backstore, LioInventory inventory, Changes changes)
    {
        Rmdir(backstore.Path, changes);
        inventory.Remove(backstore);
        // One HBA per backstore; another tool's object in the same HBA keeps it (ENOTEMPTY is not a failure).
        var errno = _fs.RemoveDirectory(backstore.HbaPath);
        if (errno == 0)
        {
            changes.Add("rmdir " + backstore.HbaPath);
        }
        else if (errno is not (Errno.ENOENT or Errno.ENOTEMPTY or Errno.EBUSY))
        {
            throw LioErrors.Failure("rmdir", backstore.HbaPath, errno);
        }
    }

    // ------------------------------------------------------------------ reading one export

    private ActualExport ReadExport(string key, LioInventory inventory)
    {
        var iqn = _names.TargetIqn(key);
        var backstore = inventory.Find(_names.DeviceName(key)).FirstOrDefault(b => b.Path == LunLinkTarget(iqn))
            ?? inventory.Find(_names.DeviceName(key)).FirstOrDefault();
        string? backing = null;
        string? serial = null;
        long? size = null;
        if (backstore is not null)
        {
            backing = Read(backstore.Path + "/udev_path", missingOk: true).Trim() is { Length: > 0 } path ? path : null;
            serial = LioText.ParseUnitSerial(Read(backstore.Path + "/wwn/vpd_unit_serial", missingOk: true));
            var info = Read(backstore.Path + "/info", missingOk: true);
            size = backstore.Plugin == LioLayout.FileioPlugin ? LioText.ParseFileioInfo(info).Size : BlockDeviceSize(info);
        }
        var initiators = new List<InitiatorAccess>();
        foreach (var acl in Directories(_layout.AclGroup(iqn)))
        {
            var protect = Read(_layout.MappedLun(iqn, acl) + "/write_protect", missingOk: true).Trim();
            initiators.Add(new InitiatorAccess(acl, protect != "0"));
        }
        return new ActualExport
        {
            Key = key,
            TargetIqn = iqn,
            BackingPath = backing,
            Serial = serial,
            Enabled = inventory.Targets.Contains(iqn) && Read(_layout.TpgEnable(iqn), missingOk: true).Trim() == "1",
            SizeBytes = size,
            Initiators = initiators,
            ChapEnabled = Read(_layout.TpgAttrib(iqn, "authentication"), missingOk: true).Trim() == "1",
        };
    }

    private long? BlockDeviceSize(string iblockInfo)
    {
        if (LioText.ParseIblockDevice(iblockInfo) is not { } device)
        {
            return null;
        }
        var sectors = _fs.Read($"{_options.SysfsRoot}/dev/block/{device.Major}:{device.Minor}/size");
        return sectors.Errno == 0 && LioText.ParseLong(sectors.Value) is { } count ? count * 512 : null;
    }

    private AclSession? ReadSession(string iqn, string initiator) =>
        LioText.ParseAclInfo(Read(_layout.Acl(iqn, initiator) + "/info", missingOk: true));

    /// <summary>The backstore directory the target's LUN 0 links to, or null.</summary>
    private string? LunLinkTarget(string iqn)
    {
        var lun = _layout.Lun(iqn);
        var link = _fs.List(lun).FirstOrDefault(e => e.Kind == ConfigfsEntryKind.Symlink);
        return link.Name is null ? null : Resolve(lun, link.Name);
    }

    /// <summary>configfs readlink gives "../../…/core/iblock_0/name" relative to the link; compare absolute paths.</summary>
    private string? Resolve(string directory, string linkName)
    {
        var target = _fs.ReadLink(directory + "/" + linkName);
        return target is null ? null : Path.GetFullPath(Path.IsPathRooted(target) ? target : Path.Combine(directory, target)).TrimEnd('/');
    }

    // ------------------------------------------------------------------ primitives

    private IEnumerable<string> Directories(string path) =>
        _fs.List(path).Where(e => e.Kind == ConfigfsEntryKind.Directory).Select(e => e.Name);

    private void Mkdir(string path, Changes changes)
    {
        var errno = _fs.MakeDirectory(path);
        if (errno == 0)
        {
            changes.Add("mkdir " + path);
        }
        else if (errno != Errno.EEXIST)
        {
            throw LioErrors.Failure("mkdir", path, errno);
        }
    }

    private void Rmdir(string path, Changes changes)
    {
        var errno = _fs.RemoveDirectory(path);
        if (errno == 0)
        {
            changes.Add("rmdir " + path);
        }
        else if (errno != Errno.ENOENT)
        {
            throw LioErrors.Failure("rmdir", path, errno);
        }
    }

    private void Unlink(string path, Changes changes)
    {
        var errno = _fs.RemoveLink(path);
        if (errno == 0)
        {
            changes.Add("unlink " + path);
        }
        else if (errno != Errno.ENOENT)
        {
            throw LioErrors.Failure("unlink", path, errno);
        }
    }

    private string Read(string path, bool missingOk = false)
    {
        var (errno, value) = _fs.Read(path);
        if (errno == 0)
        {
            return value;
        }
        if (missingOk || errno is Errno.ENOENT or Errno.ENODEV)
        {
            // ENODEV: LIO's show handlers answer it for objects without a device behind them.
            return "";
        }
        throw LioErrors.Failure("read", path, errno);
    }

    private long? ReadNumber(string path) => LioText.ParseLong(Read(path, missingOk: true));

    private void EnsureAttribute(string path, string value, Changes changes, bool optional = false)
    {
        var (errno, current) = _fs.Read(path);
        if (errno == Errno.ENOENT && optional)
        {
            return;
        }
        if (errno == 0 && current.Trim() == value)
        {
            return;
        }
        WriteOrThrow(path, value, changes);
    }

    private void EnsureSecret(string path, string? value, bool secret, Changes changes)
    {
        var (errno, current) = _fs.Read(path);
        var present = errno == 0 ? current.TrimEnd('\n') : "";
        if (present == "NULL")
        {
            present = "";
        }
        var wanted = value ?? "";
        if (errno == 0 && string.Equals(present, wanted, StringComparison.Ordinal))
        {
            return;
        }
        // "NULL" is LIO's word for "unset" in the auth attributes.
        var write = _fs.Write(path, wanted.Length == 0 ? "NULL" : wanted);
        if (write != 0)
        {
            throw LioErrors.Failure("write", path, write, secret ? null : wanted);
        }
        changes.Add("write " + path);
    }

    private void WriteOrThrow(string path, string value, Changes changes, bool missingOk = false)
    {
        var errno = _fs.Write(path, value);
        if (errno == 0)
        {
            changes.Add("write " + path);
            return;
        }
        if (missingOk && errno == Errno.ENOENT)
        {
            return;
        }
        throw LioErrors.Failure("write", path, errno, value);
    }

    private static long FileSize(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists)
        {
            throw StatusException.NotFound($"backing file {path} does not exist");
        }
        if (info.Length <= 0)
        {
            throw StatusException.FailedPrecondition($"backing file {path} is empty; LIO fileio needs its size");
        }
        return info.Length;
    }

    private void Validate(ExportSpec spec)
    {
        if (!Names.IsValidKey(spec.Key))
        {
            throw StatusException.InvalidArgument($"volume key '{spec.Key}' must be {Names.KeyLength} lowercase hex digits");
        }
        // Only objects named for this instance and key are ever touched.
        if (_names.KeyFromTargetIqn(spec.TargetIqn) != spec.Key)
        {
            throw StatusException.InvalidArgument($"target IQN '{spec.TargetIqn}' is not this instance's name for volume {spec.Key} ({_names.TargetIqn(spec.Key)})");
        }
        if (_names.KeyFromDeviceName(spec.DeviceName) != spec.Key)
        {
            throw StatusException.InvalidArgument($"backstore name '{spec.DeviceName}' is not this instance's name for volume {spec.Key} ({_names.DeviceName(spec.Key)})");
        }
        if (!spec.BackingPath.StartsWith('/') || spec.BackingPath.IndexOfAny([',', '\n', '\0']) >= 0 || spec.BackingPath.Length >= 256)
        {
            throw StatusException.InvalidArgument($"backing path '{spec.BackingPath}' must be absolute, shorter than 256 bytes and free of ',' and newlines (LIO's control syntax)");
        }
        if (string.IsNullOrWhiteSpace(spec.Serial) || spec.Serial.Length >= 254 || spec.Serial.Any(char.IsWhiteSpace))
        {
            throw StatusException.InvalidArgument($"SCSI serial '{spec.Serial}' must be 1-253 characters without spaces");
        }
        if (spec.BlockSize is not (512 or 1024 or 2048 or 4096))
        {
            throw StatusException.InvalidArgument($"block size {spec.BlockSize} must be 512, 1024, 2048 or 4096");
        }
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var initiator in spec.Initiators)
        {
            if (!Names.IsValidInitiatorName(initiator.InitiatorIqn))
            {
                throw StatusException.InvalidArgument($"initiator name '{initiator.InitiatorIqn}' is not a valid iSCSI name");
            }
            if (!seen.Add(initiator.InitiatorIqn))
            {
                throw StatusException.InvalidArgument($"initiator '{initiator.InitiatorIqn}' is listed twice for volume {spec.Key}");
            }
        }
        if (spec.Chap is { } chap)
        {
            CheckChapValue(chap.User, "CHAP user", spec.Key, showValue: true);
            CheckChapValue(chap.Secret, "CHAP secret", spec.Key, showValue: false);
            if (!string.IsNullOrEmpty(chap.MutualUser) || !string.IsNullOrEmpty(chap.MutualSecret))
            {
                if (!chap.Mutual)
                {
                    throw StatusException.InvalidArgument($"mutual CHAP of volume {spec.Key} needs both a user and a secret");
                }
                CheckChapValue(chap.MutualUser!, "mutual CHAP user", spec.Key, showValue: true);
                CheckChapValue(chap.MutualSecret!, "mutual CHAP secret", spec.Key, showValue: false);
            }
        }
        foreach (var portal in spec.Portals)
        {
            LioLayout.PortalDirectory(portal);
        }
    }

    private static void CheckChapValue(string value, string what, string key, bool showValue)
    {
        // LIO keeps up to 255 bytes and treats a value starting with "NULL" as "unset".
        if (string.IsNullOrEmpty(value) || value.Length > 255 || value.StartsWith("NULL", StringComparison.Ordinal)
            || value.Any(c => char.IsControl(c) || c == ' '))
        {
            var shown = showValue ? $" '{value}'" : "";
            throw StatusException.InvalidArgument($"{what}{shown} of volume {key} must be 1-255 printable characters without spaces and must not start with NULL");
        }
    }

    // ------------------------------------------------------------------ logging

    [LoggerMessage(Level = LogLevel.Information, Message = "LIO iSCSI fabric ready at {Path}")]
    private partial void LogFabricReady(string path);

    [LoggerMessage(Level = LogLevel.Information, Message = "LIO export {Key} ({Iqn}) converged with {ChangeCount} changes")]
    private partial void LogEnsuredCore(string key, string iqn, int changeCount);

    private void LogEnsured(string key, string iqn, Changes changes)
    {
        if (changes.Count > 0)
        {
            LogEnsuredCore(key, iqn, changes.Count);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "LIO export {Key} removed ({ChangeCount} changes)")]
    private partial void LogRemoved(string key, int changeCount);

    [LoggerMessage(Level = LogLevel.Information, Message = "LIO fileio backstore of {Key} resized from {OldBytes} to {NewBytes} bytes")]
    private partial void LogResized(string key, long oldBytes, long newBytes);

    [LoggerMessage(Level = LogLevel.Warning, Message = "LIO export {Key} repaired by reconcile: {Changes}")]
    private partial void LogRepairedCore(string key, string changes);

    private void LogRepaired(string key, Changes changes) => LogRepairedCore(key, changes.Summary());

    [LoggerMessage(Level = LogLevel.Warning, Message = "LIO reconcile removed orphan export {Key} ({ChangeCount} changes)")]
    private partial void LogOrphanRemoved(string key, int changeCount);

    [LoggerMessage(Level = LogLevel.Error, Message = "LIO reconcile of {Key} failed: {Reason}")]
    private partial void LogReconcileFailed(string key, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "LIO backstore of {Key} at {Path} is {Found}, wanted {Wanted}: rebuilding the export")]
    private partial void LogBackstoreReplaced(string key, string path, string found, string wanted);

    [LoggerMessage(Level = LogLevel.Warning, Message = "LIO export {Key}: {Attribute} cannot change to {Value} on an existing backstore; kept as is")]
    private partial void LogCannotChange(string key, string attribute, string value);

    [LoggerMessage(Level = LogLevel.Warning, Message = "LIO export {Key}: {BackingPath} has no discard support ({Errno}); served without UNMAP")]
    private partial void LogNoUnmap(string key, string backingPath, string errno);

    [LoggerMessage(Level = LogLevel.Information, Message = "LIO target {Iqn}: access of initiator {Initiator} removed and its sessions closed")]
    private partial void LogFenced(string iqn, string initiator);

    /// <summary>What one converge changed (for logs, metrics and the reconcile's repaired count).</summary>
    private sealed class Changes
    {
        private readonly List<string> _items = [];

        public int Count => _items.Count;

        public void Add(string change) => _items.Add(change);

        public string Summary() => string.Join(", ", _items.Take(8)) + (_items.Count > 8 ? $" … ({_items.Count} in all)" : "");
    }
}

/// <summary>errno from configfs → the CSI status code and a message naming the path and value (never a secret).</summary>
internal static class LioErrors
{
    public static StatusException Failure(string operation, string path, int errno, string? value = null)
    {
        var what = value is null ? $"{operation} {path}" : $"{operation} of '{value}' to {path}";
        var message = $"LIO refused {what}: {Errno.Name(errno)}";
        return errno switch
        {
            Errno.EBUSY => StatusException.FailedPrecondition(message + " (the object is in use)"),
            Errno.EPERM or Errno.EACCES => StatusException.FailedPrecondition(message + " (the target engine needs root and CAP_SYS_ADMIN)"),
            Errno.ENOMEM or Errno.ENOSPC => StatusException.ResourceExhausted(message),
            Errno.EEXIST => StatusException.AlreadyExists(message),
            Errno.ENOENT => new StatusException(StatusCode.FailedPrecondition, message + " (the LIO object or attribute does not exist)"),
            _ => StatusException.Internal(message),
        };
    }

    /// <summary>Enabling a backstore opens its device or file: name the backing path in the failure.</summary>
    public static StatusException BackingFailure(string backingPath, string backstorePath, int errno) => errno switch
    {
        Errno.ENOENT or Errno.ENXIO or Errno.ENODEV =>
            StatusException.NotFound($"LIO cannot open backing device {backingPath} for {backstorePath}: {Errno.Name(errno)}"),
        Errno.EBUSY =>
            StatusException.FailedPrecondition($"backing device {backingPath} is held exclusively by another user (already exported or mounted?): {Errno.Name(errno)}"),
        _ => Failure("write", backstorePath + "/enable", errno, "1"),
    };
}
