using CsiScst.Core.Errors;
using CsiScst.Core.Exec;
using CsiScst.Core.Ids;
using CsiScst.Core.Metrics;
using CsiScst.Targets;
using CsiScst.Targets.Tgt;
using Grpc.Core;
using Microsoft.Extensions.Logging.Abstractions;

namespace CsiScst.IntegrationTests.Tgt;

/// <summary>
/// The tgt engine against a real tgtd (private control port and address) with libiscsi and qemu as the
/// initiator: what an initiator sees is what counts.
/// </summary>
public sealed class TgtEngineTests : IAsyncLifetime
{
    private const string AllowedIqn = "iqn.2026-01.io.csi-scst.test:allowed";
    private const string OtherIqn = "iqn.2026-01.io.csi-scst.test:other";
    private const long Size = 64L << 20;

    private TgtdInstance _tgtd = null!;
    private string _scratch = null!;
    private ObjectNames _names = null!;
    private TgtEngine _engine = null!;

    public async Task InitializeAsync()
    {
        _tgtd = await TgtdInstance.CreateAsync();
        _scratch = Path.Combine(Path.GetTempPath(), "csi-scst-tgt-" + Run.RandomSuffix());
        Directory.CreateDirectory(_scratch);
        _names = new ObjectNames("t" + Run.RandomSuffix(6));
        _engine = CreateEngine(_tgtd);
    }

    public async Task DisposeAsync()
    {
        await _tgtd.DisposeAsync();
        Directory.Delete(_scratch, recursive: true);
    }

    private TgtEngine CreateEngine(TgtdInstance tgtd, bool startDaemon = false) =>
        new(new ToolRunner(new DriverMetrics(), new ExternalTime(), NullLogger<ToolRunner>.Instance),
            new TgtOptions { ControlPort = tgtd.ControlPort, Portals = [tgtd.Portal], StartDaemon = startDaemon },
            _names, new ExternalTime(), NullLogger<TgtEngine>.Instance);

    private ExportSpec Spec(string key, string path, params InitiatorAccess[] initiators) => new()
    {
        Key = key,
        TargetIqn = _names.TargetIqn(key),
        DeviceName = _names.DeviceName(key),
        BackingPath = path,
        IsFile = true,
        Serial = ObjectNames.Serial(key),
        Initiators = initiators,
        Portals = [_tgtd.Portal],
    };

    private string NewFile(string key, long size = Size)
    {
        var path = Path.Combine(_scratch, key + ".img");
        using (var file = File.Create(path))
        {
            file.SetLength(size);
        }
        return path;
    }

    private static string Key() => Names.Hash(Guid.NewGuid().ToString());

    [Fact]
    public async Task Allowed_initiator_sees_the_lun_with_its_size_and_serial_and_round_trips_data_other_initiator_is_refused()
    {
        var key = Key();
        var spec = Spec(key, NewFile(key), new InitiatorAccess(AllowedIqn, false));
        await _engine.EnsureExportAsync(spec, Run.Timeout());

        var allowed = new IscsiInitiator(AllowedIqn);
        var capacity = await allowed.CapacityAsync(_tgtd.Portal, spec.TargetIqn, TgtEngine.DataLun);
        Assert.Equal((Size, 512), capacity);
        var (serial, error) = await allowed.SerialAsync(_tgtd.Portal, spec.TargetIqn, TgtEngine.DataLun);
        Assert.True(serial == ObjectNames.Serial(key), error);

        var io = await allowed.QemuIoAsync(_tgtd.Portal, spec.TargetIqn, TgtEngine.DataLun, _scratch,
            "write -P 0x5a 1048576 1048576", "read -P 0x5a 1048576 1048576");
        Assert.True(io.ExitCode == 0, io.All);
        Assert.DoesNotContain("Pattern verification failed", io.All);
        // The bytes really went to the backing file at that offset.
        var bytes = new byte[4096];
        await using (var file = File.OpenRead(spec.BackingPath))
        {
            file.Seek(1048576, SeekOrigin.Begin);
            await file.ReadExactlyAsync(bytes);
        }
        Assert.All(bytes, b => Assert.Equal(0x5a, b));

        var (ok, output) = await new IscsiInitiator(OtherIqn).LoginAsync(_tgtd.Portal, spec.TargetIqn, TgtEngine.DataLun);
        Assert.False(ok, output);

        // Idempotent: the same spec again changes nothing and keeps one target.
        await _engine.EnsureExportAsync(spec, Run.Timeout());
        Assert.Single(await _tgtd.TargetsAsync(), t => t.Name == spec.TargetIqn);
        var exports = await _engine.ListExportsAsync(Run.Timeout());
        var export = Assert.Single(exports);
        Assert.Equal(key, export.Key);
        Assert.Equal(spec.BackingPath, export.BackingPath);
        Assert.Equal(spec.Serial, export.Serial);
        Assert.True(export.Enabled);
        Assert.Equal([new InitiatorAccess(AllowedIqn, false)], export.Initiators);
    }

    [Fact]
    public async Task Chap_wrong_secret_is_refused_right_secret_accepted_and_mutual_chap_works()
    {
        var key = Key();
        var chap = new ChapSpec(_names.TgtIncomingAccount(key), "initiator-secret-1", _names.TgtOutgoingAccount(key), "target-secret-22");
        var spec = Spec(key, NewFile(key), new InitiatorAccess(AllowedIqn, false)) with { Chap = chap };
        await _engine.EnsureExportAsync(spec, Run.Timeout());

        var iqn = spec.TargetIqn;
        Assert.False((await new IscsiInitiator(AllowedIqn).LoginAsync(_tgtd.Portal, iqn, 1)).Ok, "login without CHAP must fail");
        Assert.False((await new IscsiInitiator(AllowedIqn, chap.User, "wrong-secret-xx").LoginAsync(_tgtd.Portal, iqn, 1)).Ok, "wrong secret must fail");
        var mutual = new IscsiInitiator(AllowedIqn, chap.User, chap.Secret, chap.MutualUser, chap.MutualSecret);
        var (ok, output) = await mutual.LoginAsync(_tgtd.Portal, iqn, 1);
        Assert.True(ok, output);
        var wrongTarget = new IscsiInitiator(AllowedIqn, chap.User, chap.Secret, chap.MutualUser, "not-the-target-secret");
        Assert.False((await wrongTarget.LoginAsync(_tgtd.Portal, iqn, 1)).Ok, "the initiator must refuse a target that does not know the mutual secret");
        // The right credentials from an initiator name without access are still refused.
        Assert.False((await new IscsiInitiator(OtherIqn, chap.User, chap.Secret).LoginAsync(_tgtd.Portal, iqn, 1)).Ok);

        // Secret rotation: the old secret stops working, the new one works.
        var rotated = spec with { Chap = chap with { Secret = "initiator-secret-2" } };
        await _engine.EnsureExportAsync(rotated, Run.Timeout());
        Assert.False((await new IscsiInitiator(AllowedIqn, chap.User, chap.Secret).LoginAsync(_tgtd.Portal, iqn, 1)).Ok);
        Assert.True((await new IscsiInitiator(AllowedIqn, chap.User, "initiator-secret-2").LoginAsync(_tgtd.Portal, iqn, 1)).Ok);

        // CHAP off: accounts deleted, login without credentials works.
        await _engine.EnsureExportAsync(spec with { Chap = null }, Run.Timeout());
        Assert.DoesNotContain(await _tgtd.AccountsAsync(), a => a.Contains(key, StringComparison.Ordinal));
        Assert.True((await new IscsiInitiator(AllowedIqn).LoginAsync(_tgtd.Portal, iqn, 1)).Ok);
    }

    [Fact]
    public async Task Chap_user_names_must_be_the_per_volume_account_names()
    {
        var key = Key();
        var spec = Spec(key, NewFile(key), new InitiatorAccess(AllowedIqn, false)) with { Chap = new ChapSpec("alice", "initiator-secret-1") };
        var e = await Assert.ThrowsAsync<StatusException>(() => _engine.EnsureExportAsync(spec, Run.Timeout()));
        Assert.Equal(StatusCode.InvalidArgument, e.Code);
        Assert.Contains(_names.TgtIncomingAccount(key), e.Message);
        Assert.DoesNotContain("initiator-secret-1", e.Message);
        Assert.Empty(await _tgtd.TargetsAsync());
    }

    [Fact]
    public async Task Revoking_access_closes_the_live_session_and_the_initiator_cannot_log_back_in()
    {
        var key = Key();
        var spec = Spec(key, NewFile(key), new InitiatorAccess(AllowedIqn, false), new InitiatorAccess(OtherIqn, false));
        await _engine.EnsureExportAsync(spec, Run.Timeout());
        await using var session = new IscsiInitiator(AllowedIqn).Session(_tgtd.Portal, spec.TargetIqn, 1, _scratch);
        await Run.EventuallyAsync(async () => (await _tgtd.ShowAsync()).Contains("Initiator: " + AllowedIqn, StringComparison.Ordinal), "the qemu-io session logging in");
        var sessions = await _engine.ListSessionsAsync(Run.Timeout());
        Assert.Contains(sessions, s => s.Key == key && s.InitiatorIqn == AllowedIqn);

        await _engine.EnsureExportAsync(spec with { Initiators = [new InitiatorAccess(OtherIqn, false)] }, Run.Timeout());

        Assert.DoesNotContain("Initiator: " + AllowedIqn, await _tgtd.ShowAsync());
        // libiscsi reconnects on its own; it must not get back in.
        await Task.Delay(1500);
        Assert.DoesNotContain("Initiator: " + AllowedIqn, await _tgtd.ShowAsync());
        Assert.False((await new IscsiInitiator(AllowedIqn).LoginAsync(_tgtd.Portal, spec.TargetIqn, 1)).Ok);
        Assert.True((await new IscsiInitiator(OtherIqn).LoginAsync(_tgtd.Portal, spec.TargetIqn, 1)).Ok);
    }

    [Fact]
    public async Task Resync_after_growing_the_file_shows_the_new_size_and_keeps_the_live_session()
    {
        var key = Key();
        var spec = Spec(key, NewFile(key), new InitiatorAccess(AllowedIqn, false));
        await _engine.EnsureExportAsync(spec, Run.Timeout());
        var initiator = new IscsiInitiator(AllowedIqn);
        await using var session = initiator.Session(_tgtd.Portal, spec.TargetIqn, 1, _scratch);
        await Run.EventuallyAsync(async () => (await _tgtd.ShowAsync()).Contains("Initiator: " + AllowedIqn, StringComparison.Ordinal), "the session logging in");
        var before = SessionIds(await _tgtd.ShowAsync());

        using (var file = File.OpenWrite(spec.BackingPath))
        {
            file.SetLength(2 * Size);
        }
        // tgt does not notice by itself.
        Assert.Equal(Size, (await initiator.CapacityAsync(_tgtd.Portal, spec.TargetIqn, 1))?.Bytes);
        await _engine.ResyncSizeAsync(spec, Run.Timeout());
        Assert.Equal(2 * Size, (await initiator.CapacityAsync(_tgtd.Portal, spec.TargetIqn, 1))?.Bytes);

        // Same session, still working.
        Assert.Equal(before, SessionIds(await _tgtd.ShowAsync()));
        // qemu-io takes one command per read of its stdin: send the next only after the previous answered.
        await session.SendAsync("write -P 0x11 0 4096");
        await Run.EventuallyAsync(() => Task.FromResult(session.Output.Contains("wrote 4096/4096", StringComparison.Ordinal)), "qemu-io writing on the old session");
        await session.SendAsync("read -P 0x11 0 4096");
        await Run.EventuallyAsync(() => Task.FromResult(session.Output.Contains("read 4096/4096", StringComparison.Ordinal)), "qemu-io reading on the old session");
        Assert.DoesNotContain("Pattern verification failed", session.Output);
    }

    private static List<string> SessionIds(string show) =>
        show.Split('\n').Where(l => l.Trim().StartsWith("I_T nexus:", StringComparison.Ordinal)).Select(l => l.Trim()).ToList();

    [Fact]
    public async Task Reconcile_after_a_tgtd_crash_restores_every_export_with_its_identity_and_data()
    {
        var keys = new[] { Key(), Key() };
        var specs = keys.Select(k => Spec(k, NewFile(k), new InitiatorAccess(AllowedIqn, false)) with
        {
            Chap = new ChapSpec(_names.TgtIncomingAccount(k), "initiator-secret-" + k[..4]),
        }).ToList();
        foreach (var spec in specs)
        {
            await _engine.EnsureExportAsync(spec, Run.Timeout());
            var io = await new IscsiInitiator(AllowedIqn, spec.Chap!.User, spec.Chap.Secret).QemuIoAsync(_tgtd.Portal, spec.TargetIqn, 1, _scratch, "write -P 0x77 0 65536");
            Assert.True(io.ExitCode == 0, io.All);
        }

        await _tgtd.KillAsync();
        await _tgtd.StartAsync();
        Assert.Empty(await _tgtd.TargetsAsync());

        var result = await _engine.ReconcileAsync(specs, Run.Timeout());
        Assert.Empty(result.Errors);
        Assert.Equal(2, result.Checked);
        Assert.Equal(2, result.Repaired);

        foreach (var spec in specs)
        {
            var initiator = new IscsiInitiator(AllowedIqn, spec.Chap!.User, spec.Chap.Secret);
            Assert.Equal(spec.Serial, (await initiator.SerialAsync(_tgtd.Portal, spec.TargetIqn, 1)).Serial);
            var io = await initiator.QemuIoAsync(_tgtd.Portal, spec.TargetIqn, 1, _scratch, "read -P 0x77 0 65536");
            Assert.True(io.ExitCode == 0 && !io.All.Contains("Pattern verification failed", StringComparison.Ordinal), io.All);
            Assert.False((await new IscsiInitiator(OtherIqn, spec.Chap.User, spec.Chap.Secret).LoginAsync(_tgtd.Portal, spec.TargetIqn, 1)).Ok);
            Assert.False((await new IscsiInitiator(AllowedIqn).LoginAsync(_tgtd.Portal, spec.TargetIqn, 1)).Ok, "CHAP must be required again after the restore");
        }

        // A second pass finds nothing to do.
        var again = await _engine.ReconcileAsync(specs, Run.Timeout());
        Assert.Equal(0, again.Repaired);
        Assert.Equal(0, again.OrphansRemoved);
    }

    // The engine keeps a view of tgtd between operations: drift behind its back must not break it.

    [Fact]
    public async Task Export_deleted_behind_the_engines_back_is_recreated_by_the_next_ensure_grant_and_reconcile()
    {
        var key = Key();
        var spec = Spec(key, NewFile(key), new InitiatorAccess(AllowedIqn, false));
        await _engine.EnsureExportAsync(spec, Run.Timeout());

        async Task DeleteBehindTheBackAsync()
        {
            var (tid, _) = Assert.Single(await _tgtd.TargetsAsync(), t => t.Name == spec.TargetIqn);
            Assert.Equal(0, (await _tgtd.AdmAsync(["--mode", "target", "--op", "delete", "--force", "--tid", tid.ToString()])).ExitCode);
            Assert.DoesNotContain(await _tgtd.TargetsAsync(), t => t.Name == spec.TargetIqn);
        }

        // The same spec again: nothing to write by the engine's view, yet the target is back.
        await DeleteBehindTheBackAsync();
        await _engine.EnsureExportAsync(spec, Run.Timeout());
        Assert.Single(await _tgtd.TargetsAsync(), t => t.Name == spec.TargetIqn);
        Assert.True((await new IscsiInitiator(AllowedIqn).LoginAsync(_tgtd.Portal, spec.TargetIqn, 1)).Ok);

        // A grant on a vanished target: the bind fails, the engine reads tgtd again and re-creates it.
        await DeleteBehindTheBackAsync();
        var granted = spec with { Initiators = [new InitiatorAccess(AllowedIqn, false), new InitiatorAccess(OtherIqn, false)] };
        await _engine.EnsureExportAsync(granted, Run.Timeout());
        Assert.Equal((Size, 512), await new IscsiInitiator(OtherIqn).CapacityAsync(_tgtd.Portal, spec.TargetIqn, 1));
        Assert.Equal(spec.Serial, (await new IscsiInitiator(AllowedIqn).SerialAsync(_tgtd.Portal, spec.TargetIqn, 1)).Serial);

        // A revoke on a vanished target, then a reconcile: both succeed and the export is back with the right access.
        await DeleteBehindTheBackAsync();
        await _engine.EnsureExportAsync(spec, Run.Timeout());
        await DeleteBehindTheBackAsync();
        var result = await _engine.ReconcileAsync([spec], Run.Timeout());
        Assert.Empty(result.Errors);
        Assert.Equal(1, result.Repaired);
        Assert.True((await new IscsiInitiator(AllowedIqn).LoginAsync(_tgtd.Portal, spec.TargetIqn, 1)).Ok);
        Assert.False((await new IscsiInitiator(OtherIqn).LoginAsync(_tgtd.Portal, spec.TargetIqn, 1)).Ok);
    }

    [Fact]
    public async Task After_tgtd_restarts_the_next_operations_work_and_reconcile_restores_the_rest()
    {
        var keys = new[] { Key(), Key(), Key() };
        var specs = keys.Select(k => Spec(k, NewFile(k), new InitiatorAccess(AllowedIqn, false))).ToList();
        await _engine.EnsureExportAsync(specs[0], Run.Timeout());
        await _engine.EnsureExportAsync(specs[1], Run.Timeout());

        await _tgtd.KillAsync();
        await _tgtd.StartAsync();
        Assert.Empty(await _tgtd.TargetsAsync());

        // A new volume and a grant on an old one, before any reconcile.
        await _engine.EnsureExportAsync(specs[2], Run.Timeout());
        var granted = specs[0] with { Initiators = [new InitiatorAccess(AllowedIqn, false), new InitiatorAccess(OtherIqn, false)] };
        await _engine.EnsureExportAsync(granted, Run.Timeout());
        Assert.True((await new IscsiInitiator(AllowedIqn).LoginAsync(_tgtd.Portal, specs[2].TargetIqn, 1)).Ok);
        Assert.True((await new IscsiInitiator(OtherIqn).LoginAsync(_tgtd.Portal, specs[0].TargetIqn, 1)).Ok);
        Assert.DoesNotContain(await _tgtd.TargetsAsync(), t => t.Name == specs[1].TargetIqn);

        var result = await _engine.ReconcileAsync([granted, specs[1], specs[2]], Run.Timeout());
        Assert.Empty(result.Errors);
        Assert.Equal(1, result.Repaired);
        Assert.Equal(specs.Select(s => s.TargetIqn).Order(), (await _tgtd.TargetsAsync()).Select(t => t.Name).Order());
        foreach (var spec in specs)
        {
            Assert.Equal(spec.Serial, (await new IscsiInitiator(AllowedIqn).SerialAsync(_tgtd.Portal, spec.TargetIqn, 1)).Serial);
        }
        // Removing works on the restored view too.
        await _engine.RemoveExportAsync(keys[1], Run.Timeout());
        Assert.DoesNotContain(await _tgtd.TargetsAsync(), t => t.Name == specs[1].TargetIqn);
    }

    [Fact]
    public async Task A_foreign_target_on_the_tid_the_engine_would_pick_next_is_left_alone_and_the_create_succeeds()
    {
        var first = Key();
        await _engine.EnsureExportAsync(Spec(first, NewFile(first), new InitiatorAccess(AllowedIqn, false)), Run.Timeout());
        var taken = (await _tgtd.TargetsAsync()).Max(t => t.Tid) + 1;
        const string Foreign = "iqn.2003-01.org.example:foreign";
        Assert.Equal(0, (await _tgtd.AdmAsync(["--mode", "target", "--op", "new", "--tid", taken.ToString(), "--targetname", Foreign])).ExitCode);
        Assert.Equal(0, (await _tgtd.AdmAsync(["--mode", "target", "--op", "bind", "--tid", taken.ToString(), "--initiator-address", "ALL"])).ExitCode);
        var foreignBefore = ForeignSection(await _tgtd.ShowAsync());

        var key = Key();
        var spec = Spec(key, NewFile(key), new InitiatorAccess(AllowedIqn, false));
        await _engine.EnsureExportAsync(spec, Run.Timeout());

        var targets = await _tgtd.TargetsAsync();
        Assert.Contains((taken, Foreign), targets);
        var (tid, _) = Assert.Single(targets, t => t.Name == spec.TargetIqn);
        Assert.NotEqual(taken, tid);
        Assert.Equal(spec.Serial, (await new IscsiInitiator(AllowedIqn).SerialAsync(_tgtd.Portal, spec.TargetIqn, 1)).Serial);
        Assert.Equal(foreignBefore, ForeignSection(await _tgtd.ShowAsync()));

        // Access changes and a reconcile leave it alone too.
        await _engine.EnsureExportAsync(spec with { Initiators = [new InitiatorAccess(OtherIqn, false)] }, Run.Timeout());
        await _engine.ReconcileAsync([spec, Spec(first, Path.Combine(_scratch, first + ".img"), new InitiatorAccess(AllowedIqn, false))], Run.Timeout());
        Assert.Equal(foreignBefore, ForeignSection(await _tgtd.ShowAsync()));

        static string ForeignSection(string show) =>
            show.Split("\nTarget ").Single(section => section.Contains(Foreign, StringComparison.Ordinal)).TrimEnd();
    }

    [Fact]
    public async Task Reconcile_removes_only_this_instances_orphans()
    {
        var wanted = Key();
        var orphan = Key();
        var wantedSpec = Spec(wanted, NewFile(wanted), new InitiatorAccess(AllowedIqn, false));
        var orphanSpec = Spec(orphan, NewFile(orphan), new InitiatorAccess(AllowedIqn, false)) with
        {
            Chap = new ChapSpec(_names.TgtIncomingAccount(orphan), "orphan-secret-123"),
        };
        await _engine.EnsureExportAsync(wantedSpec, Run.Timeout());
        await _engine.EnsureExportAsync(orphanSpec, Run.Timeout());
        // Someone else's target and account on the same tgtd, and another instance's target.
        var foreignFile = NewFile("foreign");
        await _tgtd.AdmAsync(["--mode", "target", "--op", "new", "--tid", "900", "--targetname", "iqn.2003-01.org.example:not-ours"]);
        await _tgtd.AdmAsync(["--mode", "logicalunit", "--op", "new", "--tid", "900", "--lun", "1", "--backing-store", foreignFile]);
        await _tgtd.AdmAsync(["--mode", "account", "--op", "new", "--user", "someone-else", "--password", "their-secret-1"]);
        var otherInstance = new ObjectNames("zz" + Run.RandomSuffix(4));
        await _tgtd.AdmAsync(["--mode", "target", "--op", "new", "--tid", "901", "--targetname", otherInstance.TargetIqn(orphan)]);
        await _tgtd.AdmAsync(["--mode", "account", "--op", "new", "--user", otherInstance.TgtIncomingAccount(orphan), "--password", "their-secret-2"]);

        var result = await _engine.ReconcileAsync([wantedSpec], Run.Timeout());

        Assert.Empty(result.Errors);
        Assert.Equal(1, result.OrphansRemoved); // the orphan target (its account goes with it)
        var names = (await _tgtd.TargetsAsync()).Select(t => t.Name).ToList();
        Assert.Contains(wantedSpec.TargetIqn, names);
        Assert.DoesNotContain(orphanSpec.TargetIqn, names);
        Assert.Contains("iqn.2003-01.org.example:not-ours", names);
        Assert.Contains(otherInstance.TargetIqn(orphan), names);
        var accounts = await _tgtd.AccountsAsync();
        Assert.DoesNotContain(_names.TgtIncomingAccount(orphan), accounts);
        Assert.Contains("someone-else", accounts);
        Assert.Contains(otherInstance.TgtIncomingAccount(orphan), accounts);
    }

    [Fact]
    public async Task Remove_export_deletes_target_and_accounts_and_is_idempotent()
    {
        var key = Key();
        var spec = Spec(key, NewFile(key), new InitiatorAccess(AllowedIqn, false)) with
        {
            Chap = new ChapSpec(_names.TgtIncomingAccount(key), "initiator-secret-1", _names.TgtOutgoingAccount(key), "target-secret-22"),
        };
        await _engine.EnsureExportAsync(spec, Run.Timeout());
        await using var session = new IscsiInitiator(AllowedIqn, spec.Chap!.User, spec.Chap.Secret).Session(_tgtd.Portal, spec.TargetIqn, 1, _scratch);
        await Run.EventuallyAsync(async () => (await _tgtd.ShowAsync()).Contains("Initiator: " + AllowedIqn, StringComparison.Ordinal), "the session logging in");

        await _engine.RemoveExportAsync(key, Run.Timeout());
        await _engine.RemoveExportAsync(key, Run.Timeout());

        Assert.Empty(await _tgtd.TargetsAsync());
        Assert.Empty(await _tgtd.AccountsAsync());
    }

    [Fact]
    public async Task Write_cache_block_size_thin_and_read_only_reach_the_lun()
    {
        var key = Key();
        var spec = Spec(key, NewFile(key), new InitiatorAccess(AllowedIqn, true)) with { BlockSize = 4096, ThinProvisioned = true };
        await _engine.EnsureExportAsync(spec, Run.Timeout());
        var show = await _tgtd.ShowAsync();
        Assert.Contains("Backing store flags: sync", show);
        Assert.Contains("Thin-provisioning: Yes", show);
        Assert.Contains("Readonly: Yes", show);
        Assert.Equal((Size, 4096), await new IscsiInitiator(AllowedIqn).CapacityAsync(_tgtd.Portal, spec.TargetIqn, 1));
        var write = await new IscsiInitiator(AllowedIqn).QemuIoAsync(_tgtd.Portal, spec.TargetIqn, 1, _scratch, "write -P 0x1 0 4096");
        Assert.True(write.ExitCode != 0 || write.All.Contains("error", StringComparison.OrdinalIgnoreCase), write.All);

        // Write-back: the LUN is re-created without O_SYNC (flags are fixed at creation).
        await _engine.EnsureExportAsync(spec with { WriteCache = WriteCacheMode.WriteBack, Initiators = [new InitiatorAccess(AllowedIqn, false)] }, Run.Timeout());
        show = await _tgtd.ShowAsync();
        Assert.DoesNotContain("Backing store flags: sync", show);
        Assert.Contains("Readonly: No", show.Split("LUN: 1")[1]);

        var e = await Assert.ThrowsAsync<StatusException>(() => _engine.EnsureExportAsync(
            spec with { Initiators = [new InitiatorAccess(AllowedIqn, true), new InitiatorAccess(OtherIqn, false)] }, Run.Timeout()));
        Assert.Equal(StatusCode.FailedPrecondition, e.Code);
    }

    [Fact]
    public async Task Probe_is_not_ready_without_tgtd_and_start_daemon_starts_one_that_outlives_the_engine()
    {
        var idle = await TgtdInstance.CreateAsync(start: false);
        await using (idle)
        {
            var engine = CreateEngine(idle);
            var health = await engine.ProbeAsync(Run.Timeout());
            Assert.False(health.Ready);
            Assert.Contains(idle.ControlPort.ToString(), health.Reason);
            var e = await Assert.ThrowsAsync<StatusException>(() => engine.ListExportsAsync(Run.Timeout()));
            Assert.Equal(StatusCode.Unavailable, e.Code);

            var starting = CreateEngine(idle, startDaemon: true);
            // Something else on the portal: no second listener is started (tgtd would share the port).
            using (var squatter = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Parse(idle.Address), 3260))
            {
                squatter.Start();
                var busy = await Assert.ThrowsAsync<StatusException>(() => starting.EnsureDaemonAsync(Run.Timeout()));
                Assert.Equal(StatusCode.Unavailable, busy.Code);
                Assert.Contains(idle.Portal, busy.Message);
                Assert.False(await idle.AnswersAsync());
            }
            await starting.EnsureDaemonAsync(Run.Timeout());
            Assert.True((await engine.ProbeAsync(Run.Timeout())).Ready);
            var portals = (await idle.AdmAsync(["--mode", "portal", "--op", "show"])).Stdout;
            Assert.Contains(idle.Portal, portals);
            var key = Key();
            await starting.EnsureExportAsync(Spec(key, NewFile(key), new InitiatorAccess(AllowedIqn, false)) with { Portals = [idle.Portal] }, Run.Timeout());
            Assert.True((await new IscsiInitiator(AllowedIqn).LoginAsync(idle.Portal, _names.TargetIqn(key), 1)).Ok);
        }
        Assert.False(await idle.AnswersAsync());
    }
}
