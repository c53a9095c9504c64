using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using CsiScst.Core.Errors;
using CsiScst.Core.Exec;
using CsiScst.Core.Ids;
using CsiScst.Core.Metrics;
using Microsoft.Extensions.Logging;

namespace CsiScst.Targets.Tgt;

/// <summary>
/// The tgt engine: one tgt target per volume (named by its IQN, tid allocated here), the data on LUN 1
/// (LUN 0 is tgt's controller LUN), access by initiator-name ACLs, per-volume CHAP accounts, fencing by
/// closing the connections of initiators that lost access.
/// <para>
/// tgt addresses targets by tid and can only list all of them at once, so the engine keeps a parsed view of
/// tgtd's targets and accounts (<see cref="TgtState"/>) and updates it after each of its own successful
/// tgtadm writes: a per-volume operation costs only the writes it needs, whatever the number of exports.
/// The view is read in full on first use, on every reconcile (which must see the truth and repair drift),
/// when tgtd's control socket was re-created (tgtd restarted), after any failed operation, and when a write
/// fails in a way that says the view is wrong ("can't find the target", "this target already exists", …):
/// then the step is retried once on the fresh view. Sessions are not kept: initiators log in and out on
/// their own, so fencing reads the one target's connections when it removes an access rule.
/// All tgtadm calls are serialized under one lock: tid allocation and read-then-converge must not interleave.
/// </para>
/// </summary>
public sealed class TgtEngine : ITargetEngine, IExportRules
{
    public const string EngineKind = "tgt";

    /// <summary>tgt reserves LUN 0 for its controller LUN.</summary>
    public const int DataLun = 1;

    /// <summary>rdwr: plain pread/pwrite on the file or block device; the only type with bsoflags (sync).</summary>
    private const string BackingStoreType = "rdwr";

    private readonly TgtAdm _adm;
    private readonly IToolRunner _runner;
    private readonly TgtOptions _options;
    private readonly ObjectNames _names;
    private readonly ExternalTime _externalTime;
    private readonly ILogger<TgtEngine> _logger;
    private readonly SemaphoreSlim _lock = new(1, 1);

    // tgt never shows account passwords: remember a digest of what we set, so an unchanged secret is not
    // re-created on every pass. After a restart each CHAP account is re-created once.
    private readonly Dictionary<string, string> _appliedSecrets = new(StringComparer.Ordinal);

    // The cached view of tgtd (null: read it in full before the next step) and the control socket's time
    // when it was read (a restarted tgtd re-creates the socket). Both only touched under _lock.
    private TgtState? _state;
    private DateTime? _stateStamp;

    public TgtEngine(IToolRunner runner, TgtOptions options, ObjectNames names, ExternalTime externalTime, ILogger<TgtEngine> logger)
    {
        _runner = runner;
        _options = options;
        _adm = new TgtAdm(runner, options);
        _names = names;
        _externalTime = externalTime;
        _logger = logger;
    }

    public string Kind => EngineKind;

    public TgtOptions Options => _options;

    public void Check(string key, ChapSpec? chap, IReadOnlyList<InitiatorAccess> initiators)
    {
        _ = ReadOnlyFor(initiators);
        if (chap is null)
        {
            return;
        }
        var incoming = _names.TgtIncomingAccount(key);
        var outgoing = _names.TgtOutgoingAccount(key);
        if (!string.Equals(chap.User, incoming, StringComparison.Ordinal))
        {
            throw StatusException.InvalidArgument(
                $"the tgt engine keeps CHAP accounts in one global namespace, so volume {key} needs the CHAP user '{incoming}' (got '{chap.User}'); generate per-volume credentials with that user name");
        }
        if (!string.IsNullOrEmpty(chap.MutualUser) && !string.Equals(chap.MutualUser, outgoing, StringComparison.Ordinal))
        {
            throw StatusException.InvalidArgument(
                $"the tgt engine keeps CHAP accounts in one global namespace, so volume {key} needs the mutual CHAP user '{outgoing}' (got '{chap.MutualUser}')");
        }
        if (string.IsNullOrEmpty(chap.Secret) || (chap.Mutual && string.IsNullOrEmpty(chap.MutualSecret)))
        {
            throw StatusException.InvalidArgument($"CHAP for volume {key} needs a secret for every user it names");
        }
    }

    public async Task<EngineHealth> ProbeAsync(CancellationToken cancellationToken)
    {
        try
        {
            var (system, iscsi) = TgtShowParser.ParseSystem(await _adm.ShowSystemAsync(cancellationToken).ConfigureAwait(false));
            if (system != "ready")
            {
                return EngineHealth.NotReady($"tgtd on control port {_options.ControlPort} reports state '{system}'");
            }
            if (iscsi != "ready")
            {
                return EngineHealth.NotReady($"tgtd on control port {_options.ControlPort} reports its iscsi driver as '{iscsi ?? "absent"}'");
            }
            return EngineHealth.Healthy;
        }
        catch (TgtAdmException e)
        {
            return EngineHealth.NotReady($"tgtd does not answer on control port {_options.ControlPort}: {TgtAdm.LastMessage(((ToolException)e.InnerException!).StandardError)}");
        }
        catch (StatusException e)
        {
            return EngineHealth.NotReady(e.Message);
        }
    }

    public Task EnsureExportAsync(ExportSpec spec, CancellationToken cancellationToken)
    {
        Check(spec.Key, spec.Chap, spec.Initiators);
        return LockedAsync(() => WithStateAsync(spec.Key, async state =>
        {
            var changed = await ConvergeAsync(state, spec, cancellationToken).ConfigureAwait(false);
            if (!changed && state.Reused)
            {
                // Nothing to write according to the cached view: make sure the target is still there (one small
                // read); if someone deleted it, the drift retry reads tgtd and re-creates it now.
                await _adm.RunAsync(["--mode", "target", "--op", "show", "--tid", Text(state.Find(spec.TargetIqn)!.Tid)], cancellationToken).ConfigureAwait(false);
            }
            return changed;
        }, cancellationToken), cancellationToken);
    }

    public Task RemoveExportAsync(string key, CancellationToken cancellationToken) =>
        LockedAsync(() => WithStateAsync(key, async state =>
        {
            await RemoveAsync(state, key, cancellationToken).ConfigureAwait(false);
            return true;
        }, cancellationToken), cancellationToken);

    public Task ResyncSizeAsync(ExportSpec spec, CancellationToken cancellationToken)
    {
        Check(spec.Key, spec.Chap, spec.Initiators);
        return LockedAsync(() => WithStateAsync(spec.Key, async state =>
        {
            if (state.Find(spec.TargetIqn)?.Lun(DataLun) is { } lun)
            {
                // tgt reads a LUN's size only when it opens the backing store. Taking the LUN offline and
                // setting its path again re-opens it with the new size; sessions stay logged in and the
                // initiator sees the new capacity on its next READ CAPACITY (a rescan).
                var tid = state.Find(spec.TargetIqn)!.Tid;
                await _adm.RunAsync(["--mode", "logicalunit", "--op", "update", "--tid", Text(tid), "--lun", Text(DataLun),
                    "--params", $"online=0,path={spec.BackingPath}"], cancellationToken).ConfigureAwait(false);
                lun.BackingStorePath = spec.BackingPath;
                lun.Online = true;
                _logger.LogInformation("Re-opened tgt LUN {Tid}/{Lun} of volume {Key} to pick up its new size", tid, DataLun, spec.Key);
            }
            return await ConvergeAsync(state, spec, cancellationToken).ConfigureAwait(false);
        }, cancellationToken), cancellationToken);
    }

    public Task<IReadOnlyList<ActualExport>> ListExportsAsync(CancellationToken cancellationToken) =>
        LockedAsync(async () =>
        {
            var state = await LoadAsync(accounts: false, cancellationToken).ConfigureAwait(false);
            var exports = new List<ActualExport>();
            foreach (var target in state.Targets)
            {
                if (_names.KeyFromTargetIqn(target.Name) is { } key)
                {
                    exports.Add(ToActual(key, target));
                }
            }
            return (IReadOnlyList<ActualExport>)exports;
        }, cancellationToken);

    public Task<EngineReconcileResult> ReconcileAsync(IReadOnlyCollection<ExportSpec> desired, CancellationToken cancellationToken) =>
        LockedAsync(async () =>
        {
            // A reconcile works on the truth: a full read, which also replaces the cached view.
            _state = null;
            var state = await CurrentStateAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                var result = await ReconcileStateAsync(state, desired, cancellationToken).ConfigureAwait(false);
                if (result.Errors.Count > 0)
                {
                    // A step that failed may have left tgtd different from the view.
                    _state = null;
                }
                return result;
            }
            catch
            {
                _state = null;
                throw;
            }
        }, cancellationToken);

    private async Task<EngineReconcileResult> ReconcileStateAsync(TgtState state, IReadOnlyCollection<ExportSpec> desired, CancellationToken cancellationToken)
    {
        await EnsurePortalsAsync(cancellationToken).ConfigureAwait(false);
        var errors = new List<string>();
        var repaired = 0;
        var wanted = new Dictionary<string, ExportSpec>(desired.Count, StringComparer.Ordinal);
        foreach (var spec in desired)
        {
            wanted[spec.TargetIqn] = spec;
            try
            {
                Check(spec.Key, spec.Chap, spec.Initiators);
                if (await ConvergeAsync(state, spec, cancellationToken).ConfigureAwait(false))
                {
                    repaired++;
                }
            }
            catch (Exception e) when (e is StatusException or TgtAdmException)
            {
                if (e is TgtAdmException { Error: TgtError.DaemonUnreachable })
                {
                    throw Translate((TgtAdmException)e);
                }
                errors.Add($"volume {spec.Key}: {e.Message}");
                _logger.LogWarning("Reconcile could not repair the export of volume {Key}: {Error}", spec.Key, e.Message);
            }
        }

        var orphans = 0;
        foreach (var target in state.Targets.ToList())
        {
            if (_names.KeyFromTargetIqn(target.Name) is { } key && !wanted.ContainsKey(target.Name))
            {
                try
                {
                    await RemoveAsync(state, key, cancellationToken).ConfigureAwait(false);
                    orphans++;
                    _logger.LogInformation("Removed orphaned tgt target {Tid} {Iqn}: no volume of this engine wants it", target.Tid, target.Name);
                }
                catch (TgtAdmException e) when (e.Error != TgtError.DaemonUnreachable)
                {
                    errors.Add($"orphan {target.Name}: {e.Message}");
                }
            }
        }
        // Accounts of volumes that no longer want CHAP (or no longer exist) are ours by name alone.
        var neededAccounts = new HashSet<string>(StringComparer.Ordinal);
        foreach (var spec in desired)
        {
            if (spec.Chap is { } chap)
            {
                neededAccounts.Add(_names.TgtIncomingAccount(spec.Key));
                if (chap.Mutual)
                {
                    neededAccounts.Add(_names.TgtOutgoingAccount(spec.Key));
                }
            }
        }
        foreach (var account in state.Accounts.ToList())
        {
            if (IsOurAccount(account) && !neededAccounts.Contains(account))
            {
                try
                {
                    await DeleteAccountAsync(state, account, cancellationToken).ConfigureAwait(false);
                    orphans++;
                    _logger.LogInformation("Removed orphaned tgt account {Account}", account);
                }
                catch (TgtAdmException e) when (e.Error != TgtError.DaemonUnreachable)
                {
                    errors.Add($"orphan account {account}: {e.Message}");
                }
            }
        }
        return new EngineReconcileResult(desired.Count, repaired, orphans, errors);
    }

    public Task<IReadOnlyList<SessionInfo>> ListSessionsAsync(CancellationToken cancellationToken) =>
        LockedAsync(async () =>
        {
            var state = await LoadAsync(accounts: false, cancellationToken).ConfigureAwait(false);
            var sessions = new List<SessionInfo>();
            foreach (var target in state.Targets)
            {
                if (_names.KeyFromTargetIqn(target.Name) is not { } key)
                {
                    continue;
                }
                foreach (var nexus in target.Nexuses)
                {
                    sessions.Add(new SessionInfo(key, target.Name, nexus.Initiator, nexus.Connections.FirstOrDefault()?.Address));
                }
            }
            return (IReadOnlyList<SessionInfo>)sessions;
        }, cancellationToken);

    /// <summary>tgt keeps no per-LUN I/O counters that tgtadm can report.</summary>
    public Task<IReadOnlyList<ExportStats>> GetStatsAsync(CancellationToken cancellationToken) =>
        Task.FromResult<IReadOnlyList<ExportStats>>([]);

    /// <summary>
    /// Starts tgtd when none answers on the control port (when <see cref="TgtOptions.StartDaemon"/> is set).
    /// tgtd daemonizes, so it keeps serving when this process stops or is upgraded.
    /// </summary>
    public Task EnsureDaemonAsync(CancellationToken cancellationToken) =>
        LockedAsync(async () =>
        {
            _state = null;
            await EnsureDaemonLockedAsync(cancellationToken).ConfigureAwait(false);
            return true;
        }, cancellationToken);

    // ------------------------------------------------------------------------------------ convergence

    private async Task<bool> ConvergeAsync(TgtState state, ExportSpec spec, CancellationToken cancellationToken)
    {
        var readOnly = ReadOnlyFor(spec.Initiators);
        var changed = false;

        var target = state.Find(spec.TargetIqn);
        if (target is null)
        {
            var tid = state.AllocateTid();
            await _adm.RunAsync(["--mode", "target", "--op", "new", "--tid", Text(tid), "--targetname", spec.TargetIqn], cancellationToken).ConfigureAwait(false);
            target = state.Add(new TgtTarget { Tid = tid, Name = spec.TargetIqn, State = "ready" });
            changed = true;
            _logger.LogInformation("Created tgt target {Tid} {Iqn} for volume {Key}", tid, spec.TargetIqn, spec.Key);
        }
        var tidText = Text(target.Tid);

        var flags = spec.WriteCache == WriteCacheMode.WriteThrough ? "sync" : "";
        var lun = target.Lun(DataLun);
        if (lun is not null && (lun.BackingStoreType != BackingStoreType || lun.BackingStoreFlags != flags || lun.BlockSize != (int)spec.BlockSize))
        {
            // Flags and block size are fixed when a LUN is created: replace it (only after a spec change).
            _logger.LogWarning("tgt LUN {Tid}/{Lun} of volume {Key} has type {Type}, flags '{Flags}', block size {BlockSize}; re-creating it as {WantType}, '{WantFlags}', {WantBlockSize}",
                target.Tid, DataLun, spec.Key, lun.BackingStoreType, lun.BackingStoreFlags, lun.BlockSize, BackingStoreType, flags, spec.BlockSize);
            await _adm.RunIdempotentAsync(["--mode", "logicalunit", "--op", "delete", "--tid", tidText, "--lun", Text(DataLun)], cancellationToken, TgtError.NoLun).ConfigureAwait(false);
            target.Luns.Remove(lun);
            lun = null;
            changed = true;
        }
        if (lun is not null && lun.BackingStorePath != spec.BackingPath)
        {
            // A new device path for the same volume (e.g. an RBD image mapped to another /dev/rbdN): re-point the LUN, sessions stay.
            await _adm.RunAsync(["--mode", "logicalunit", "--op", "update", "--tid", tidText, "--lun", Text(DataLun),
                "--params", $"online=0,path={spec.BackingPath}"], cancellationToken).ConfigureAwait(false);
            lun.BackingStorePath = spec.BackingPath;
            lun.Online = true;
            changed = true;
        }
        if (lun is null)
        {
            List<string> args = ["--mode", "logicalunit", "--op", "new", "--tid", tidText, "--lun", Text(DataLun),
                "--backing-store", spec.BackingPath, "--bstype", BackingStoreType, "--blocksize", Text((int)spec.BlockSize)];
            if (flags.Length > 0)
            {
                // WriteThrough: the backing store is opened O_SYNC, so every write is on stable storage before tgt acknowledges it.
                args.Add("--bsoflags");
                args.Add(flags);
            }
            await _adm.RunAsync(args, cancellationToken).ConfigureAwait(false);
            lun = new TgtLun
            {
                Number = DataLun,
                Type = "disk",
                BackingStoreType = BackingStoreType,
                BackingStoreFlags = flags,
                BackingStorePath = spec.BackingPath,
                BlockSize = (int)spec.BlockSize,
                Online = true,
            };
            target.Luns.Add(lun);
            changed = true;
        }

        var parameters = new List<string>();
        if (lun.SerialNumber != spec.Serial)
        {
            parameters.Add("scsi_sn=" + spec.Serial);
        }
        if (lun.ThinProvisioning != spec.ThinProvisioned)
        {
            parameters.Add("thin_provisioning=" + (spec.ThinProvisioned ? "1" : "0"));
        }
        if (lun.ReadOnly != readOnly)
        {
            parameters.Add("readonly=" + (readOnly ? "1" : "0"));
        }
        if (!lun.Online)
        {
            parameters.Add("online=1");
        }
        if (parameters.Count > 0)
        {
            await _adm.RunAsync(["--mode", "logicalunit", "--op", "update", "--tid", tidText, "--lun", Text(DataLun), "--params", string.Join(',', parameters)],
                cancellationToken).ConfigureAwait(false);
            lun.SerialNumber = spec.Serial;
            lun.ThinProvisioning = spec.ThinProvisioned;
            lun.ReadOnly = readOnly;
            lun.Online = true;
            changed = true;
        }

        // CHAP before ACLs: a newly allowed initiator must never get in without the credentials it is meant to need.
        var incoming = _names.TgtIncomingAccount(spec.Key);
        var outgoing = _names.TgtOutgoingAccount(spec.Key);
        changed |= await ConvergeAccountAsync(state, target, incoming, spec.Chap?.Secret, outgoingAccount: false, cancellationToken).ConfigureAwait(false);
        changed |= await ConvergeAccountAsync(state, target, outgoing, spec.Chap is { Mutual: true } c ? c.MutualSecret : null, outgoingAccount: true, cancellationToken).ConfigureAwait(false);
        foreach (var bound in target.Accounts.ToList())
        {
            if (bound.User != incoming && bound.User != outgoing)
            {
                List<string> args = ["--mode", "account", "--op", "unbind", "--tid", tidText, "--user", bound.User];
                if (bound.Outgoing)
                {
                    args.Add("--outgoing");
                }
                await _adm.RunIdempotentAsync(args, cancellationToken, TgtError.NoAccount).ConfigureAwait(false);
                target.Accounts.Remove(bound);
                changed = true;
            }
        }

        var allowed = new HashSet<string>(spec.Initiators.Select(i => i.InitiatorIqn), StringComparer.Ordinal);
        foreach (var initiator in allowed)
        {
            if (!target.Acls.Contains(initiator))
            {
                await _adm.RunIdempotentAsync(["--mode", "target", "--op", "bind", "--tid", tidText, "--initiator-name", initiator], cancellationToken, TgtError.AclExists).ConfigureAwait(false);
                target.Acls.Add(initiator);
                changed = true;
                _logger.LogInformation("Allowed initiator {Initiator} on tgt target {Tid} of volume {Key}", initiator, target.Tid, spec.Key);
            }
        }
        var ruleRemoved = false;
        foreach (var acl in target.Acls.ToList())
        {
            if (!allowed.Contains(acl))
            {
                await UnbindAclAsync(target, acl, cancellationToken).ConfigureAwait(false);
                changed = true;
                ruleRemoved = true;
                _logger.LogInformation("Removed access rule {Rule} from tgt target {Tid} of volume {Key}", acl, target.Tid, spec.Key);
            }
        }
        if (ruleRemoved)
        {
            // Sessions are not part of the cached view (initiators log in on their own). A login needs a rule that
            // lets the initiator in, and every rule this engine removes is followed by this read, so only now can a
            // session of an initiator without access exist.
            await RefreshSessionsAsync(target, cancellationToken).ConfigureAwait(false);
        }
        // Fencing: the rules only stop new logins; live sessions of initiators that lost access are closed now.
        foreach (var nexus in target.Nexuses.ToList())
        {
            if (!allowed.Contains(nexus.Initiator))
            {
                await CloseSessionAsync(target, nexus, cancellationToken).ConfigureAwait(false);
                changed = true;
                _logger.LogInformation("Closed session {Sid} of initiator {Initiator} on tgt target {Tid} of volume {Key} (fenced)", nexus.Sid, nexus.Initiator, target.Tid, spec.Key);
            }
        }
        return changed;
    }

    private async Task<bool> ConvergeAccountAsync(TgtState state, TgtTarget target, string user, string? secret, bool outgoingAccount, CancellationToken cancellationToken)
    {
        var tidText = Text(target.Tid);
        var bound = target.Accounts.Find(a => a.User == user);
        if (string.IsNullOrEmpty(secret))
        {
            var changed = false;
            if (bound is not null)
            {
                List<string> args = ["--mode", "account", "--op", "unbind", "--tid", tidText, "--user", user];
                if (bound.Outgoing)
                {
                    args.Add("--outgoing");
                }
                await _adm.RunIdempotentAsync(args, cancellationToken, TgtError.NoAccount).ConfigureAwait(false);
                target.Accounts.Remove(bound);
                changed = true;
            }
            if (state.Accounts.Contains(user))
            {
                await DeleteAccountAsync(state, user, cancellationToken).ConfigureAwait(false);
                changed = true;
            }
            return changed;
        }

        var digest = Digest(secret);
        var result = false;
        if (state.Accounts.Contains(user) && (!_appliedSecrets.TryGetValue(user, out var applied) || applied != digest))
        {
            // tgt cannot change a password in place and never shows it: re-create (this also unbinds it everywhere).
            await DeleteAccountAsync(state, user, cancellationToken).ConfigureAwait(false);
            bound = null;
            result = true;
        }
        if (!state.Accounts.Contains(user))
        {
            await _adm.RunAsync(["--mode", "account", "--op", "new", "--user", user, "--password", secret], cancellationToken, secrets: [secret]).ConfigureAwait(false);
            state.Accounts.Add(user);
            _appliedSecrets[user] = digest;
            result = true;
        }
        if (bound is null || bound.Outgoing != outgoingAccount)
        {
            if (outgoingAccount && target.Accounts.Find(a => a.Outgoing && a.User != user) is { } other)
            {
                // tgt keeps one outgoing account per target.
                await _adm.RunIdempotentAsync(["--mode", "account", "--op", "unbind", "--tid", tidText, "--user", other.User, "--outgoing"], cancellationToken, TgtError.NoAccount).ConfigureAwait(false);
                target.Accounts.Remove(other);
            }
            List<string> args = ["--mode", "account", "--op", "bind", "--tid", tidText, "--user", user];
            if (outgoingAccount)
            {
                args.Add("--outgoing");
            }
            await _adm.RunIdempotentAsync(args, cancellationToken, TgtError.AccountExists).ConfigureAwait(false);
            target.Accounts.RemoveAll(a => a.User == user);
            target.Accounts.Add(new TgtBoundAccount(user, outgoingAccount));
            result = true;
        }
        return result;
    }

    private async Task RemoveAsync(TgtState state, string key, CancellationToken cancellationToken)
    {
        var iqn = _names.TargetIqn(key);
        if (state.Find(iqn) is { } target)
        {
            // Rules first so a closed initiator cannot log straight back in, then the sessions, then the target.
            var rules = target.Acls.Count;
            foreach (var acl in target.Acls.ToList())
            {
                await UnbindAclAsync(target, acl, cancellationToken).ConfigureAwait(false);
            }
            if (rules > 0)
            {
                // Without a rule nobody could have logged in since the last read; with one, read the live sessions.
                await RefreshSessionsAsync(target, cancellationToken).ConfigureAwait(false);
            }
            foreach (var nexus in target.Nexuses.ToList())
            {
                await CloseSessionAsync(target, nexus, cancellationToken).ConfigureAwait(false);
            }
            await _adm.RunIdempotentAsync(["--mode", "target", "--op", "delete", "--force", "--tid", Text(target.Tid)], cancellationToken, TgtError.NoTarget).ConfigureAwait(false);
            state.Remove(target);
            _logger.LogInformation("Deleted tgt target {Tid} {Iqn} of volume {Key}", target.Tid, iqn, key);
        }
        foreach (var account in new[] { _names.TgtIncomingAccount(key), _names.TgtOutgoingAccount(key) })
        {
            if (state.Accounts.Contains(account))
            {
                await DeleteAccountAsync(state, account, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private async Task UnbindAclAsync(TgtTarget target, string acl, CancellationToken cancellationToken)
    {
        var option = Names.IsValidInitiatorName(acl) ? "--initiator-name" : "--initiator-address";
        await _adm.RunIdempotentAsync(["--mode", "target", "--op", "unbind", "--tid", Text(target.Tid), option, acl], cancellationToken, TgtError.NoAcl).ConfigureAwait(false);
        target.Acls.Remove(acl);
    }

    private async Task CloseSessionAsync(TgtTarget target, TgtNexus nexus, CancellationToken cancellationToken)
    {
        var connections = nexus.Connections.Count > 0 ? nexus.Connections : [new TgtConnection(0, null)];
        foreach (var connection in connections)
        {
            await _adm.RunIdempotentAsync(["--mode", "conn", "--op", "delete", "--tid", Text(target.Tid), "--sid", nexus.Sid.ToString(CultureInfo.InvariantCulture),
                "--cid", Text(connection.Cid)], cancellationToken, TgtError.NoSession).ConfigureAwait(false);
        }
        target.Nexuses.Remove(nexus);
    }

    private async Task RefreshSessionsAsync(TgtTarget target, CancellationToken cancellationToken)
    {
        var live = await _adm.ShowConnectionsAsync(target.Tid, cancellationToken).ConfigureAwait(false);
        target.Nexuses.Clear();
        target.Nexuses.AddRange(live);
    }

    private async Task DeleteAccountAsync(TgtState state, string user, CancellationToken cancellationToken)
    {
        await _adm.RunIdempotentAsync(["--mode", "account", "--op", "delete", "--user", user], cancellationToken, TgtError.NoAccount).ConfigureAwait(false);
        state.Accounts.Remove(user);
        _appliedSecrets.Remove(user);
        foreach (var target in state.Targets)
        {
            target.Accounts.RemoveAll(a => a.User == user);
        }
    }

    // ------------------------------------------------------------------------------------ state

    /// <summary>
    /// Runs one per-volume step on the cached view. When tgtd disagrees with the view in a way only drift
    /// explains (a target gone or already there, a tid taken by someone else, tgtd gone and restartable), the
    /// view is read again in full and the step retried once; any other failure drops the view so the next
    /// operation starts from the truth.
    /// </summary>
    private async Task<bool> WithStateAsync(string key, Func<TgtState, Task<bool>> step, CancellationToken cancellationToken)
    {
        try
        {
            return await step(await CurrentStateAsync(cancellationToken).ConfigureAwait(false)).ConfigureAwait(false);
        }
        catch (TgtAdmException e) when (IsDrift(e.Error))
        {
            _state = null;
            _logger.LogWarning("tgtd differs from the engine's view ({Error}) while working on volume {Key}: reading tgtd again and retrying once", e.Message, key);
        }
        catch
        {
            _state = null;
            throw;
        }
        try
        {
            return await step(await CurrentStateAsync(cancellationToken).ConfigureAwait(false)).ConfigureAwait(false);
        }
        catch
        {
            _state = null;
            throw;
        }
    }

    private bool IsDrift(TgtError error) => error switch
    {
        TgtError.NoTarget or TgtError.TargetExists or TgtError.NoLun or TgtError.LunExists or TgtError.NoAccount
            or TgtError.AccountExists or TgtError.OutgoingAccountExists or TgtError.TargetActive => true,
        TgtError.DaemonUnreachable => _options.StartDaemon,
        _ => false,
    };

    /// <summary>The cached view; read in full when there is none or tgtd's control socket changed (a restart).</summary>
    private async Task<TgtState> CurrentStateAsync(CancellationToken cancellationToken)
    {
        var stamp = _adm.DaemonStamp();
        if (_state is not null && stamp == _stateStamp)
        {
            _state.Reused = true;
            return _state;
        }
        if (_state is not null)
        {
            _logger.LogInformation("tgtd on control port {ControlPort} was restarted: reading its targets again", _options.ControlPort);
        }
        _state = null;
        var state = await LoadAsync(accounts: true, cancellationToken).ConfigureAwait(false);
        // After the read: the read may have started tgtd (a restart in the middle of a read makes the read fail).
        _stateStamp = _adm.DaemonStamp();
        _state = state;
        return state;
    }

    private async Task<TgtState> LoadAsync(bool accounts, CancellationToken cancellationToken)
    {
        List<TgtTarget> targets;
        try
        {
            targets = await _adm.ShowTargetsAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (TgtAdmException e) when (e.Error == TgtError.DaemonUnreachable && _options.StartDaemon)
        {
            await EnsureDaemonLockedAsync(cancellationToken).ConfigureAwait(false);
            targets = await _adm.ShowTargetsAsync(cancellationToken).ConfigureAwait(false);
        }
        var accountList = accounts ? await _adm.ShowAccountsAsync(cancellationToken).ConfigureAwait(false) : [];
        return new TgtState(targets, accountList);
    }

    private async Task EnsureDaemonLockedAsync(CancellationToken cancellationToken)
    {
        if ((await ProbeAsync(cancellationToken).ConfigureAwait(false)).Ready || !_options.StartDaemon)
        {
            return;
        }
        if (_options.Portals.Count > 0 && await AnswersAsync(_options.Portals[0], cancellationToken).ConfigureAwait(false))
        {
            // tgtd binds its portal with SO_REUSEPORT: a second daemon would share the port and the kernel would
            // split initiator connections between the two. Refuse instead.
            throw StatusException.Unavailable(
                $"no tgtd answers on control port {_options.ControlPort}, but something already listens on portal {_options.Portals[0]} (another tgtd?); point --tgt-control-port at it or free the portal");
        }
        List<string> args = ["-C", Text(_options.ControlPort)];
        if (_options.Portals.Count > 0)
        {
            args.Add("--iscsi");
            args.Add("portal=" + _options.Portals[0]);
        }
        _logger.LogInformation("Starting tgtd on control port {ControlPort}, portal {Portal}", _options.ControlPort, _options.Portals.FirstOrDefault() ?? "(tgtd default)");
        // Without -f tgtd daemonizes (and closes our pipes), so the tool runner returns at once and the
        // daemon outlives this process: stopping or upgrading the engine never drops the exports.
        await _runner.RunAsync(new ToolCommand(_options.TgtdPath, args) { Timeout = _options.CommandTimeout }, cancellationToken).ConfigureAwait(false);
        for (var attempt = 0; attempt < 100; attempt++)
        {
            if ((await ProbeAsync(cancellationToken).ConfigureAwait(false)).Ready)
            {
                await EnsurePortalsAsync(cancellationToken).ConfigureAwait(false);
                return;
            }
            await Task.Delay(TimeSpan.FromMilliseconds(50), cancellationToken).ConfigureAwait(false);
        }
        throw StatusException.Unavailable($"started tgtd on control port {_options.ControlPort}, but it does not answer (is portal {_options.Portals.FirstOrDefault()} free?)");
    }

    private static async Task<bool> AnswersAsync(string portal, CancellationToken cancellationToken)
    {
        if (!System.Net.IPEndPoint.TryParse(portal, out var endpoint))
        {
            return false;
        }
        if (endpoint.Address.Equals(System.Net.IPAddress.Any))
        {
            endpoint.Address = System.Net.IPAddress.Loopback;
        }
        using var client = new System.Net.Sockets.TcpClient(endpoint.AddressFamily);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(2));
        try
        {
            await client.ConnectAsync(endpoint, timeout.Token).ConfigureAwait(false);
            return true;
        }
        catch (Exception e) when (e is System.Net.Sockets.SocketException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
        {
            return false;
        }
    }

    /// <summary>Adds configured portals tgtd does not listen on yet (tgt's portals are global, not per target).</summary>
    private async Task EnsurePortalsAsync(CancellationToken cancellationToken)
    {
        if (_options.Portals.Count == 0)
        {
            return;
        }
        var existing = await _adm.ShowPortalsAsync(cancellationToken).ConfigureAwait(false);
        foreach (var portal in _options.Portals)
        {
            if (PortalCovered(portal, existing))
            {
                continue;
            }
            try
            {
                await _adm.RunAsync(["--mode", "portal", "--op", "new", "--param", "portal=" + portal], cancellationToken).ConfigureAwait(false);
                _logger.LogInformation("Added portal {Portal} to tgtd", portal);
            }
            catch (TgtAdmException e) when (e.Error != TgtError.DaemonUnreachable)
            {
                _logger.LogWarning("Could not add portal {Portal} to tgtd: {Error}", portal, e.Message);
            }
        }
    }

    internal static bool PortalCovered(string portal, IReadOnlyCollection<string> existing)
    {
        if (existing.Contains(portal))
        {
            return true;
        }
        var colon = portal.LastIndexOf(':');
        var port = colon < 0 ? "3260" : portal[(colon + 1)..];
        return existing.Any(e => e == "0.0.0.0:" + port || e == "[::]:" + port || e == ":::" + port || e == ":" + port);
    }

    private ActualExport ToActual(string key, TgtTarget target)
    {
        var lun = target.Lun(DataLun);
        var readOnly = lun?.ReadOnly ?? false;
        return new ActualExport
        {
            Key = key,
            TargetIqn = target.Name,
            BackingPath = lun?.BackingStorePath,
            Serial = lun?.SerialNumber,
            Enabled = target.State == "ready" && lun is { Online: true },
            // tgt reports sizes in whole decimal megabytes only.
            SizeBytes = lun is null ? null : lun.SizeMegabytes * 1_000_000,
            Initiators = target.Acls.Where(Names.IsValidInitiatorName).Select(a => new InitiatorAccess(a, readOnly)).ToList(),
            ChapEnabled = target.Accounts.Any(a => !a.Outgoing),
        };
    }

    /// <summary>tgt has one read-only flag per LUN, not per initiator.</summary>
    private static bool ReadOnlyFor(IReadOnlyList<InitiatorAccess> initiators)
    {
        if (initiators.Count == 0)
        {
            return false;
        }
        var readOnly = initiators[0].ReadOnly;
        if (initiators.Any(i => i.ReadOnly != readOnly))
        {
            var writers = string.Join(", ", initiators.Where(i => !i.ReadOnly).Select(i => i.InitiatorIqn));
            var readers = string.Join(", ", initiators.Where(i => i.ReadOnly).Select(i => i.InitiatorIqn));
            throw StatusException.FailedPrecondition(
                $"the tgt engine has one read-only flag per LUN, so a volume cannot be read-write for {writers} and read-only for {readers} at the same time");
        }
        return readOnly;
    }

    private bool IsOurAccount(string user)
    {
        if (!user.StartsWith(_names.VolumePrefix, StringComparison.Ordinal))
        {
            return false;
        }
        var rest = user[_names.VolumePrefix.Length..];
        return (rest.EndsWith("-in", StringComparison.Ordinal) && Names.IsValidKey(rest[..^3]))
            || (rest.EndsWith("-out", StringComparison.Ordinal) && Names.IsValidKey(rest[..^4]));
    }

    private static string Digest(string secret) => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(secret)));

    private static string Text(int value) => value.ToString(CultureInfo.InvariantCulture);

    private async Task<T> LockedAsync<T>(Func<Task<T>> action, CancellationToken cancellationToken)
    {
        using (_externalTime.Measure())
        {
            await _lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        try
        {
            return await action().ConfigureAwait(false);
        }
        catch (TgtAdmException e)
        {
            throw Translate(e);
        }
        finally
        {
            _lock.Release();
        }
    }

    private StatusException Translate(TgtAdmException e) => e.Error switch
    {
        TgtError.DaemonUnreachable => StatusException.Unavailable($"tgtd does not answer on control port {_options.ControlPort}: {e.Message}", e),
        TgtError.PreventRemoval => StatusException.FailedPrecondition($"an initiator has set Prevent Removal on the LUN: {e.Message}"),
        _ => StatusException.Internal(e.Message, e),
    };

    /// <summary>One full read of tgtd's targets and accounts, kept current as the engine's own writes change them.</summary>
    private sealed class TgtState
    {
        private readonly Dictionary<string, TgtTarget> _byName;
        private readonly HashSet<int> _tids;
        private int _nextTid;

        public TgtState(List<TgtTarget> targets, List<string> accounts)
        {
            _byName = new Dictionary<string, TgtTarget>(targets.Count, StringComparer.Ordinal);
            _tids = [];
            foreach (var target in targets)
            {
                _byName[target.Name] = target;
                _tids.Add(target.Tid);
            }
            _nextTid = targets.Count == 0 ? 1 : targets.Max(t => t.Tid) + 1;
            Accounts = new HashSet<string>(accounts, StringComparer.Ordinal);
        }

        public IEnumerable<TgtTarget> Targets => _byName.Values;

        /// <summary>False while the view is fresh from a full read; true once an operation gets it from the cache.</summary>
        public bool Reused { get; set; }
        public HashSet<string> Accounts { get; }

        public TgtTarget? Find(string name) => _byName.GetValueOrDefault(name);

        public int AllocateTid()
        {
            while (_tids.Contains(_nextTid))
            {
                _nextTid++;
            }
            return _nextTid++;
        }

        public TgtTarget Add(TgtTarget target)
        {
            _byName[target.Name] = target;
            _tids.Add(target.Tid);
            return target;
        }

        // The tid stays reserved: tgt may still be tearing the old target down.
        public void Remove(TgtTarget target) => _byName.Remove(target.Name);
    }
}
