using CsiScst.Core.Errors;
using CsiScst.Core.Exec;
using CsiScst.Core.Ids;
using CsiScst.Targets;
using CsiScst.Targets.Lio;
using Grpc.Core;
using Microsoft.Extensions.Logging.Abstractions;

namespace CsiScst.Tests.Lio;

/// <summary>
/// The LIO engine's configfs operations, run with the real system calls against a temporary tree whose
/// kernel-made files <see cref="KernelPlay"/> provides (interfaces.md B; the kernel rules cited there).
/// </summary>
public sealed class LioEngineTests : IDisposable
{
    private const string Node1 = "iqn.1993-08.org.debian:01:node1";
    private const string Node2 = "iqn.1993-08.org.debian:01:node2";

    private readonly KernelPlay _kernel = new();
    private readonly ObjectNames _names = new("t1");
    private readonly RecordingRunner _runner = new();
    private readonly LioEngine _engine;

    public LioEngineTests()
    {
        _engine = NewEngine();
        Assert.Equal(0, _kernel.MakeDirectory(_kernel.Abs("iscsi")));
        _kernel.ClearLog();
    }

    public void Dispose() => _kernel.Dispose();

    private LioEngine NewEngine(Action<LioOptions>? configure = null)
    {
        var options = new LioOptions
        {
            ConfigfsRoot = _kernel.Root,
            SysfsRoot = _kernel.Base + "/sys",
            MountsFile = _kernel.Base + "/mounts",
            LoadModules = false,
        };
        configure?.Invoke(options);
        return new LioEngine(_kernel, _runner, options, _names, NullLogger<LioEngine>.Instance);
    }

    private ExportSpec Spec(string name, bool isFile = false, params InitiatorAccess[] initiators)
    {
        var key = _names.VolumeKey(name);
        var backing = $"{_kernel.Base}/files/{name}.img";
        if (!File.Exists(backing))
        {
            using var file = File.Create(backing);
            file.SetLength(8 << 20);
        }
        return new ExportSpec
        {
            Key = key,
            TargetIqn = _names.TargetIqn(key),
            DeviceName = _names.DeviceName(key),
            BackingPath = backing,
            IsFile = isFile,
            Serial = ObjectNames.Serial(key),
            Initiators = initiators,
            Portals = ["127.0.0.1:3260"],
        };
    }

    private static string Tpg(ExportSpec spec) => $"iscsi/{spec.TargetIqn}/tpgt_1";

    [Fact]
    public async Task An_iblock_export_builds_the_documented_tree_in_order_with_enable_last()
    {
        var spec = Spec("vol-a", initiators: new InitiatorAccess(Node1, false));
        await _engine.EnsureExportAsync(spec, CancellationToken.None);

        var so = $"core/iblock_0/{spec.DeviceName}";
        var tpg = Tpg(spec);
        Assert.Equal(
        [
            "mkdir core/iblock_0",
            $"mkdir {so}",
            $"write {so}/control=udev_path={spec.BackingPath}",
            $"write {so}/udev_path={spec.BackingPath}",
            $"write {so}/enable=1",
            $"write {so}/wwn/vpd_unit_serial={spec.Serial}",
            $"write {so}/attrib/emulate_write_cache=0",
            $"mkdir iscsi/{spec.TargetIqn}",
            $"mkdir {tpg}",
            $"write {tpg}/attrib/prod_mode_write_protect=1",
            $"write {tpg}/attrib/demo_mode_discovery=0",
            $"write {tpg}/attrib/authentication=0",
            $"mkdir {tpg}/lun/lun_0",
            $"symlink {tpg}/lun/lun_0/{spec.DeviceName} -> {so}",
            $"mkdir {tpg}/np/127.0.0.1:3260",
            $"mkdir {tpg}/acls/{Node1}",
            $"mkdir {tpg}/acls/{Node1}/lun_0",
            $"symlink {tpg}/acls/{Node1}/lun_0/lun_0 -> {tpg}/lun/lun_0",
            $"write {tpg}/acls/{Node1}/lun_0/write_protect=0",
            $"write {tpg}/enable=1",
        ], _kernel.Log);

        // Values as the kernel shows them afterwards.
        Assert.Equal($"T10 VPD Unit Serial Number: {spec.Serial}\n", _kernel.Content($"{so}/wwn/vpd_unit_serial"));
        Assert.Equal("0\n", _kernel.Content($"{tpg}/attrib/generate_node_acls"));
        Assert.Equal("1\n", _kernel.Content($"{tpg}/attrib/demo_mode_write_protect"));
        Assert.Equal("0\n", _kernel.Content($"{tpg}/attrib/cache_dynamic_acls"));
        Assert.Equal("0\n", _kernel.Content($"{so}/attrib/emulate_tpu"));
        Assert.Equal("1\n", _kernel.Content($"{tpg}/enable"));

        var exports = await _engine.ListExportsAsync(CancellationToken.None);
        var export = Assert.Single(exports);
        Assert.Equal(spec.Key, export.Key);
        Assert.Equal(spec.BackingPath, export.BackingPath);
        Assert.Equal(spec.Serial, export.Serial);
        Assert.True(export.Enabled);
        Assert.False(export.ChapEnabled);
        Assert.Equal([new InitiatorAccess(Node1, false)], export.Initiators);
    }

    [Fact]
    public async Task A_converged_export_is_left_alone()
    {
        var spec = Spec("vol-a", isFile: true, new InitiatorAccess(Node1, false), new InitiatorAccess(Node2, true)) with
        {
            Chap = new ChapSpec("user-a", "secret-aaaaaaaa", "target-a", "secret-bbbbbbbb"),
            ThinProvisioned = true,
        };
        await _engine.EnsureExportAsync(spec, CancellationToken.None);
        _kernel.ClearLog();

        await _engine.EnsureExportAsync(spec, CancellationToken.None);
        Assert.Empty(_kernel.Log);

        var result = await _engine.ReconcileAsync([spec], CancellationToken.None);
        Assert.Equal(new EngineReconcileResult(1, 0, 0, result.Errors), result);
        Assert.Empty(result.Errors);
        Assert.Empty(_kernel.Log);
    }

    [Fact]
    public async Task A_read_only_initiator_gets_write_protect_and_mapped_luns_start_read_only()
    {
        var spec = Spec("vol-a", initiators: new InitiatorAccess(Node2, true));
        await _engine.EnsureExportAsync(spec, CancellationToken.None);
        var acl = $"{Tpg(spec)}/acls/{Node2}";

        Assert.Equal("1\n", _kernel.Content(acl + "/lun_0/write_protect"));
        // prod_mode_write_protect=1 is set before any ACL exists, so a mapped LUN is never read-write by default.
        var prod = _kernel.Log.IndexOf($"write {Tpg(spec)}/attrib/prod_mode_write_protect=1");
        Assert.True(prod >= 0 && prod < _kernel.Log.IndexOf($"mkdir {acl}"));
        Assert.DoesNotContain(_kernel.Log, l => l.StartsWith($"write {acl}/lun_0/write_protect", StringComparison.Ordinal));

        // Read-only → read-write is one attribute write on the live mapping.
        _kernel.ClearLog();
        await _engine.EnsureExportAsync(spec with { Initiators = [new InitiatorAccess(Node2, false)] }, CancellationToken.None);
        Assert.Equal([$"write {acl}/lun_0/write_protect=0"], _kernel.Log);
    }

    [Fact]
    public async Task Chap_goes_into_each_acl_without_a_newline_and_authentication_follows_it()
    {
        var chap = new ChapSpec("user-a", "secret-aaaaaaaa", "target-a", "secret-bbbbbbbb");
        var spec = Spec("vol-a", initiators: [new InitiatorAccess(Node1, false), new InitiatorAccess(Node2, false)]);
        await _engine.EnsureExportAsync(spec, CancellationToken.None);
        var tpg = Tpg(spec);
        Assert.Equal("0\n", _kernel.Content($"{tpg}/attrib/authentication"));

        _kernel.ClearLog();
        spec = spec with { Chap = chap };
        await _engine.EnsureExportAsync(spec, CancellationToken.None);
        var expected = new List<string>();
        foreach (var node in new[] { Node1, Node2 })
        {
            var auth = $"{tpg}/acls/{node}/auth/";
            expected.AddRange([$"write {auth}userid=user-a", $"write {auth}password=secret-aaaaaaaa",
                $"write {auth}userid_mutual=target-a", $"write {auth}password_mutual=secret-bbbbbbbb"]);
        }
        // Credentials first, then authentication=1: a login in between is refused, never let in without CHAP.
        expected.Add($"write {tpg}/attrib/authentication=1");
        Assert.Equal(expected, _kernel.Log);
        Assert.Equal("secret-aaaaaaaa\n", _kernel.Content($"{tpg}/acls/{Node1}/auth/password"));
        Assert.True((await _engine.ListExportsAsync(CancellationToken.None))[0].ChapEnabled);

        // A new export with CHAP: the credentials are in place before its LUN is mapped and before enable.
        var fresh = Spec("vol-b", initiators: new InitiatorAccess(Node1, false)) with { Chap = chap };
        _kernel.ClearLog();
        await _engine.EnsureExportAsync(fresh, CancellationToken.None);
        var freshAcl = $"{Tpg(fresh)}/acls/{Node1}";
        Assert.True(_kernel.Log.IndexOf($"write {freshAcl}/auth/password_mutual=secret-bbbbbbbb") < _kernel.Log.IndexOf($"mkdir {freshAcl}/lun_0"));
        Assert.Equal("1\n", _kernel.Content($"{Tpg(fresh)}/attrib/authentication"));

        // One-way CHAP: the mutual pair is cleared with LIO's NULL.
        _kernel.ClearLog();
        await _engine.EnsureExportAsync(spec with { Chap = new ChapSpec("user-a", "secret-aaaaaaaa") }, CancellationToken.None);
        Assert.Equal(
        [
            $"write {tpg}/acls/{Node1}/auth/userid_mutual=NULL",
            $"write {tpg}/acls/{Node1}/auth/password_mutual=NULL",
            $"write {tpg}/acls/{Node2}/auth/userid_mutual=NULL",
            $"write {tpg}/acls/{Node2}/auth/password_mutual=NULL",
        ], _kernel.Log);

        // CHAP off: authentication=0 is written (the kernel default is 1) and the credentials are cleared.
        _kernel.ClearLog();
        await _engine.EnsureExportAsync(spec with { Chap = null }, CancellationToken.None);
        Assert.Equal($"write {tpg}/attrib/authentication=0", _kernel.Log[0]);
        Assert.Contains($"write {tpg}/acls/{Node1}/auth/password=NULL", _kernel.Log);
        Assert.False((await _engine.ListExportsAsync(CancellationToken.None))[0].ChapEnabled);
    }

    [Fact]
    public async Task A_refused_secret_write_names_the_path_but_never_the_secret()
    {
        var spec = Spec("vol-a", initiators: new InitiatorAccess(Node1, false)) with { Chap = new ChapSpec("user-a", "secret-zzzzzzzz") };
        _kernel.Fail("write", $"{Tpg(spec)}/acls/{Node1}/auth/password", 22);
        var e = await Assert.ThrowsAsync<StatusException>(() => _engine.EnsureExportAsync(spec, CancellationToken.None));
        Assert.Contains("auth/password", e.Message);
        Assert.Contains("EINVAL", e.Message);
        Assert.DoesNotContain("secret-zzzzzzzz", e.Message);
    }

    [Fact]
    public async Task Removing_an_initiator_fences_it_and_leaves_the_others()
    {
        var spec = Spec("vol-a", initiators: [new InitiatorAccess(Node1, false), new InitiatorAccess(Node2, false)]);
        await _engine.EnsureExportAsync(spec, CancellationToken.None);
        _kernel.ClearLog();

        await _engine.EnsureExportAsync(spec with { Initiators = [new InitiatorAccess(Node2, false)] }, CancellationToken.None);
        var acl = $"{Tpg(spec)}/acls/{Node1}";
        Assert.Equal(
        [
            $"unlink {acl}/lun_0/lun_0",
            $"rmdir {acl}/lun_0",
            $"rmdir {acl}",
        ], _kernel.Log);
        Assert.True(_kernel.Exists($"{Tpg(spec)}/acls/{Node2}/lun_0/lun_0"));
        Assert.Equal("1\n", _kernel.Content($"{Tpg(spec)}/enable"));
    }

    [Fact]
    public async Task A_file_is_exported_with_fileio_its_size_and_the_write_cache_mode()
    {
        var through = Spec("vol-wt", isFile: true, new InitiatorAccess(Node1, false));
        await _engine.EnsureExportAsync(through, CancellationToken.None);
        var so = $"core/fileio_0/{through.DeviceName}";
        Assert.Contains($"write {so}/control=fd_dev_name={through.BackingPath},fd_dev_size={8 << 20}", _kernel.Log);
        Assert.Equal("0\n", _kernel.Content(so + "/attrib/emulate_write_cache"));
        Assert.Contains("Mode: O_DSYNC", _kernel.Content(so + "/info"));

        var back = Spec("vol-wb", isFile: true) with { WriteCache = WriteCacheMode.WriteBack };
        await _engine.EnsureExportAsync(back, CancellationToken.None);
        var so2 = $"core/fileio_1/{back.DeviceName}";
        Assert.Contains($"write {so2}/control=fd_dev_name={back.BackingPath},fd_dev_size={8 << 20},fd_buffered_io=1", _kernel.Log);
        Assert.Equal("1\n", _kernel.Content(so2 + "/attrib/emulate_write_cache"));

        var sizes = (await _engine.ListExportsAsync(CancellationToken.None)).Select(e => e.SizeBytes).ToList();
        Assert.Equal([8L << 20, 8L << 20], sizes);
    }

    [Fact]
    public async Task Resync_writes_the_grown_size_of_a_file_and_nothing_for_a_block_device()
    {
        var file = Spec("vol-f", isFile: true);
        var block = Spec("vol-b");
        await _engine.EnsureExportAsync(file, CancellationToken.None);
        await _engine.EnsureExportAsync(block, CancellationToken.None);
        using (var stream = File.OpenWrite(file.BackingPath))
        {
            stream.SetLength(24 << 20);
        }
        _kernel.ClearLog();

        await _engine.ResyncSizeAsync(file, CancellationToken.None);
        await _engine.ResyncSizeAsync(block, CancellationToken.None);
        Assert.Equal([$"write core/fileio_0/{file.DeviceName}/control=fd_dev_size={24 << 20}"], _kernel.Log);
        Assert.Equal(24L << 20, (await _engine.ListExportsAsync(CancellationToken.None)).Single(e => e.Key == file.Key).SizeBytes);

        _kernel.ClearLog();
        await _engine.ResyncSizeAsync(file, CancellationToken.None);
        Assert.Empty(_kernel.Log);

        var e = await Assert.ThrowsAsync<StatusException>(() => _engine.ResyncSizeAsync(Spec("vol-missing"), CancellationToken.None));
        Assert.Equal(StatusCode.NotFound, e.Code);
    }

    [Fact]
    public async Task Removal_tears_down_in_reverse_order_and_tolerates_what_is_already_gone()
    {
        var spec = Spec("vol-a", initiators: new InitiatorAccess(Node1, false));
        await _engine.EnsureExportAsync(spec, CancellationToken.None);
        _kernel.ClearLog();

        await _engine.RemoveExportAsync(spec.Key, CancellationToken.None);
        var tpg = Tpg(spec);
        var so = $"core/iblock_0/{spec.DeviceName}";
        Assert.Equal(
        [
            $"write {tpg}/enable=0",
            $"unlink {tpg}/acls/{Node1}/lun_0/lun_0",
            $"rmdir {tpg}/acls/{Node1}/lun_0",
            $"rmdir {tpg}/acls/{Node1}",
            $"unlink {tpg}/lun/lun_0/{spec.DeviceName}",
            $"rmdir {tpg}/lun/lun_0",
            $"rmdir {tpg}/np/127.0.0.1:3260",
            $"rmdir {tpg}",
            $"rmdir iscsi/{spec.TargetIqn}",
            $"rmdir {so}",
            "rmdir core/iblock_0",
        ], _kernel.Log);

        _kernel.ClearLog();
        await _engine.RemoveExportAsync(spec.Key, CancellationToken.None);
        Assert.Empty(_kernel.Log);

        // Half-made: a backstore whose target never came.
        var half = Spec("vol-half");
        _kernel.Fail("mkdir", $"iscsi/{half.TargetIqn}", 12);
        var e = await Assert.ThrowsAsync<StatusException>(() => _engine.EnsureExportAsync(half, CancellationToken.None));
        Assert.Equal(StatusCode.ResourceExhausted, e.Code);
        await _engine.RemoveExportAsync(half.Key, CancellationToken.None);
        Assert.Empty(await _engine.ListExportsAsync(CancellationToken.None));
        Assert.Equal(["alua"], Directory.EnumerateFileSystemEntries(_kernel.Abs("core")).Select(Path.GetFileName));
    }

    [Fact]
    public async Task An_interrupted_create_is_finished_by_the_retry()
    {
        var spec = Spec("vol-a", initiators: new InitiatorAccess(Node1, false));
        // Interrupted after the backstore was made but before it was enabled: a retry rebuilds it.
        _kernel.Fail("write", $"core/iblock_0/{spec.DeviceName}/udev_path", 5);
        await Assert.ThrowsAsync<StatusException>(() => _engine.EnsureExportAsync(spec, CancellationToken.None));
        // Interrupted just before the TPG is enabled.
        _kernel.Fail("write", $"{Tpg(spec)}/enable", 5);
        var e = await Assert.ThrowsAsync<StatusException>(() => _engine.EnsureExportAsync(spec, CancellationToken.None));
        Assert.Equal(StatusCode.Internal, e.Code);
        Assert.Contains("EIO", e.Message);
        Assert.False((await _engine.ListExportsAsync(CancellationToken.None))[0].Enabled);

        _kernel.ClearLog();
        await _engine.EnsureExportAsync(spec, CancellationToken.None);
        Assert.Equal([$"write {Tpg(spec)}/enable=1"], _kernel.Log);
        var export = Assert.Single(await _engine.ListExportsAsync(CancellationToken.None));
        Assert.True(export.Enabled);
        Assert.Equal(spec.Serial, export.Serial);
    }

    [Fact]
    public async Task Kernel_refusals_become_statuses_that_name_the_backing_device()
    {
        var missing = Spec("vol-a") with { BackingPath = _kernel.Base + "/files/no-such-device" };
        var e = await Assert.ThrowsAsync<StatusException>(() => _engine.EnsureExportAsync(missing, CancellationToken.None));
        Assert.Equal(StatusCode.NotFound, e.Code);
        Assert.Contains("no-such-device", e.Message);
        // The half-made backstore and its HBA are gone again.
        Assert.Equal(["alua"], Directory.EnumerateFileSystemEntries(_kernel.Abs("core")).Select(Path.GetFileName));

        var busy = Spec("vol-b");
        _kernel.Fail("write", $"core/iblock_0/{busy.DeviceName}/enable", 16);
        e = await Assert.ThrowsAsync<StatusException>(() => _engine.EnsureExportAsync(busy, CancellationToken.None));
        Assert.Equal(StatusCode.FailedPrecondition, e.Code);
        Assert.Contains(busy.BackingPath, e.Message);
        Assert.Contains("EBUSY", e.Message);

        _kernel.Fail("mkdir", $"iscsi/{busy.TargetIqn}", 1);
        e = await Assert.ThrowsAsync<StatusException>(() => _engine.EnsureExportAsync(busy, CancellationToken.None));
        Assert.Equal(StatusCode.FailedPrecondition, e.Code);
        Assert.Contains("CAP_SYS_ADMIN", e.Message);
    }

    [Fact]
    public async Task A_wrong_serial_is_rewritten_before_export_and_rebuilt_once_exported()
    {
        var spec = Spec("vol-a", initiators: new InitiatorAccess(Node1, false));
        await _engine.EnsureExportAsync(spec, CancellationToken.None);
        // Someone changed the identity behind our back (the kernel only allows it with the LUN unlinked).
        var so = $"core/iblock_0/{spec.DeviceName}";
        _kernel.SetFile(so + "/wwn/vpd_unit_serial", "T10 VPD Unit Serial Number: 0123-foreign\n");
        _kernel.ClearLog();

        await _engine.EnsureExportAsync(spec, CancellationToken.None);
        Assert.Contains($"rmdir {so}", _kernel.Log);
        var export = Assert.Single(await _engine.ListExportsAsync(CancellationToken.None));
        Assert.Equal(spec.Serial, export.Serial);
        Assert.True(export.Enabled);
        Assert.Equal([new InitiatorAccess(Node1, false)], export.Initiators);
    }

    [Fact]
    public async Task Portals_take_ipv6_brackets_a_default_port_and_lose_what_is_not_wanted()
    {
        var spec = Spec("vol-a") with { Portals = ["[FD00::1]:3261", "fd00::5", "10.1.2.3"] };
        await _engine.EnsureExportAsync(spec, CancellationToken.None);
        var np = $"{Tpg(spec)}/np";
        Assert.Equal(["10.1.2.3:3260", "[fd00::1]:3261", "[fd00::5]:3260"],
            Directory.EnumerateDirectories(_kernel.Abs(np)).Select(Path.GetFileName).Order(StringComparer.Ordinal));

        _kernel.ClearLog();
        await _engine.EnsureExportAsync(spec with { Portals = [] }, CancellationToken.None);
        Assert.Equal(["0.0.0.0:3260"], Directory.EnumerateDirectories(_kernel.Abs(np)).Select(Path.GetFileName));

        var bad = await Assert.ThrowsAsync<StatusException>(() => _engine.EnsureExportAsync(spec with { Portals = ["storage.example:3260"] }, CancellationToken.None));
        Assert.Equal(StatusCode.InvalidArgument, bad.Code);
        Assert.Contains("storage.example", bad.Message);
    }

    [Fact]
    public async Task Reconcile_restores_a_wiped_tree_removes_orphans_and_keeps_foreign_objects()
    {
        var a = Spec("vol-a", initiators: new InitiatorAccess(Node1, false)) with { Chap = new ChapSpec("user-a", "secret-aaaaaaaa") };
        var b = Spec("vol-b", isFile: true, new InitiatorAccess(Node2, true));
        var orphan = Spec("vol-orphan", initiators: new InitiatorAccess(Node1, false));
        foreach (var spec in new[] { a, b, orphan })
        {
            await _engine.EnsureExportAsync(spec, CancellationToken.None);
        }
        var before = (await _engine.ListExportsAsync(CancellationToken.None)).Where(e => e.Key != orphan.Key).ToList();

        // Wipe (module reload, targetcli clearconfig), then another tool's objects appear.
        _kernel.Wipe();
        Assert.Equal(0, _kernel.MakeDirectory(_kernel.Abs("core/iblock_0")));
        Assert.Equal(0, _kernel.MakeDirectory(_kernel.Abs("core/iblock_0/their_disk")));
        Assert.Equal(0, _kernel.MakeDirectory(_kernel.Abs("iscsi")));
        Assert.Equal(0, _kernel.MakeDirectory(_kernel.Abs("iscsi/iqn.2003-01.org.linux-iscsi.other:sn.1")));
        var otherNames = new ObjectNames("t2");
        var otherInstance = otherNames.TargetIqn(_names.VolumeKey("vol-a"));
        Assert.Equal(0, _kernel.MakeDirectory(_kernel.Abs("iscsi/" + otherInstance)));
        // Our orphan survived the wipe only as a target (e.g. restored by another tool).
        Assert.Equal(0, _kernel.MakeDirectory(_kernel.Abs("iscsi/" + orphan.TargetIqn)));
        Assert.Equal(0, _kernel.MakeDirectory(_kernel.Abs($"iscsi/{orphan.TargetIqn}/tpgt_1")));
        _kernel.ClearLog();

        var result = await _engine.ReconcileAsync([a, b], CancellationToken.None);
        Assert.Empty(result.Errors);
        Assert.Equal(2, result.Checked);
        Assert.Equal(2, result.Repaired);
        Assert.Equal(1, result.OrphansRemoved);

        var after = await _engine.ListExportsAsync(CancellationToken.None);
        Assert.Equal(before.Select(Describe), after.Select(Describe));
        Assert.True(after.Single(e => e.Key == a.Key).ChapEnabled);
        Assert.Equal($"T10 VPD Unit Serial Number: {b.Serial}\n", _kernel.Content($"core/fileio_0/{b.DeviceName}/wwn/vpd_unit_serial"));
        // Foreign objects untouched; our new HBA skipped the foreign index.
        Assert.True(_kernel.Exists("core/iblock_0/their_disk"));
        Assert.True(_kernel.Exists("iscsi/iqn.2003-01.org.linux-iscsi.other:sn.1"));
        Assert.True(_kernel.Exists("iscsi/" + otherInstance));
        Assert.True(_kernel.Exists($"core/iblock_1/{a.DeviceName}"));
        Assert.False(_kernel.Exists("iscsi/" + orphan.TargetIqn));
        Assert.DoesNotContain(_kernel.Log, l => l.Contains("their_disk", StringComparison.Ordinal) || l.Contains("other", StringComparison.Ordinal));

        // Converged: a second pass changes nothing.
        _kernel.ClearLog();
        result = await _engine.ReconcileAsync([a, b], CancellationToken.None);
        Assert.Equal(new EngineReconcileResult(2, 0, 0, result.Errors), result);
        Assert.Empty(_kernel.Log);
    }

    [Fact]
    public async Task Reconcile_reads_the_tree_once_in_bulk()
    {
        var specs = Enumerable.Range(0, 12).Select(i => Spec("vol-" + i, isFile: i % 2 == 0, new InitiatorAccess(Node1, false))).ToList();
        foreach (var spec in specs)
        {
            await _engine.EnsureExportAsync(spec, CancellationToken.None);
        }
        _kernel.Wipe();
        _kernel.Listed.Clear();

        var result = await _engine.ReconcileAsync(specs, CancellationToken.None);
        Assert.Equal(12, result.Repaired);
        Assert.Equal(1, _kernel.Listed.Count(l => l == "core"));
        Assert.Equal(1, _kernel.Listed.Count(l => l == "iscsi"));
        // Every other listing is inside one export's own objects: a bounded number per export.
        var perExport = _kernel.Listed.Where(l => l != "core" && l != "iscsi")
            .GroupBy(l => specs.First(s => l.Contains(s.TargetIqn, StringComparison.Ordinal) || l.Contains(s.DeviceName, StringComparison.Ordinal)).Key)
            .Select(g => g.Count()).ToList();
        Assert.Equal(12, perExport.Count);
        Assert.All(perExport, count => Assert.InRange(count, 1, 12));
    }

    [Fact]
    public async Task Sessions_and_stats_come_from_acl_info_and_lun_statistics()
    {
        var spec = Spec("vol-a", initiators: [new InitiatorAccess(Node1, false), new InitiatorAccess(Node2, true)]);
        await _engine.EnsureExportAsync(spec, CancellationToken.None);
        Assert.Empty(await _engine.ListSessionsAsync(CancellationToken.None));

        _kernel.SetSession($"{Tpg(spec)}/acls/{Node1}", Node1, "fd00::a");
        _kernel.SetFile($"{Tpg(spec)}/lun/lun_0/statistics/scsi_tgt_port/read_mbytes", "3\n");
        _kernel.SetFile($"{Tpg(spec)}/lun/lun_0/statistics/scsi_tgt_port/write_mbytes", "5\n");
        _kernel.SetFile($"{Tpg(spec)}/lun/lun_0/statistics/scsi_tgt_port/in_cmds", "1234\n");

        var session = Assert.Single(await _engine.ListSessionsAsync(CancellationToken.None));
        Assert.Equal(new SessionInfo(spec.Key, spec.TargetIqn, Node1, "fd00::a"), session);
        var stats = Assert.Single(await _engine.GetStatsAsync(CancellationToken.None));
        Assert.Equal(new ExportStats(spec.Key, 3L << 20, 5L << 20, 0, 0, 1), stats);
        Assert.Equal(1234, _engine.ReadCommandCount(spec.Key));
    }

    [Fact]
    public async Task Specs_that_would_touch_foreign_names_or_break_the_control_syntax_are_refused()
    {
        var good = Spec("vol-a");
        var cases = new[]
        {
            good with { TargetIqn = "iqn.2003-01.org.linux-iscsi.other:sn.1" },
            good with { DeviceName = "their_disk" },
            good with { BackingPath = "relative/path" },
            good with { BackingPath = "/dev/a,udev_path=/dev/b" },
            good with { BlockSize = 1000 },
            good with { Initiators = [new InitiatorAccess("not an iqn", false)] },
            good with { Initiators = [new InitiatorAccess(Node1, false), new InitiatorAccess(Node1, true)] },
            good with { Chap = new ChapSpec("NULLuser", "secret-aaaaaaaa") },
            good with { Chap = new ChapSpec("user", "secret with space") },
            good with { Chap = new ChapSpec("user", "secret-aaaaaaaa", "mutual-user", null) },
        };
        foreach (var spec in cases)
        {
            var e = await Assert.ThrowsAsync<StatusException>(() => _engine.EnsureExportAsync(spec, CancellationToken.None));
            Assert.Equal(StatusCode.InvalidArgument, e.Code);
            Assert.DoesNotContain("secret with space", e.Message);
        }
        Assert.Empty(_kernel.Log);
    }

    [Fact]
    public async Task Probe_loads_modules_mounts_configfs_and_creates_the_fabric_group()
    {
        Directory.Delete(_kernel.Root, recursive: true);
        File.WriteAllText(_kernel.Base + "/mounts", "sysfs /sys sysfs rw 0 0\n");
        var engine = NewEngine(o => o.LoadModules = true);
        _runner.OnRun = command =>
        {
            if (command.FileName == "modprobe" && command.Arguments[0] == "target_core_mod")
            {
                Directory.CreateDirectory(_kernel.Root + "/core");
            }
        };

        var health = await engine.ProbeAsync(CancellationToken.None);
        Assert.True(health.Ready, health.Reason);
        Assert.Equal(
        [
            $"mount -t configfs configfs {_kernel.Base}",
            "modprobe target_core_mod",
            "modprobe target_core_iblock",
            "modprobe target_core_file",
            "modprobe iscsi_target_mod",
        ], _runner.Commands);
        Assert.Equal(["mkdir iscsi"], _kernel.Log);

        // Healthy afterwards without another tool call.
        _runner.Commands.Clear();
        Assert.True((await engine.ProbeAsync(CancellationToken.None)).Ready);
        Assert.Empty(_runner.Commands);
    }

    [Fact]
    public async Task Probe_without_module_loading_says_what_is_missing()
    {
        Directory.Delete(_kernel.Root, recursive: true);
        var health = await _engine.ProbeAsync(CancellationToken.None);
        Assert.False(health.Ready);
        Assert.Contains(_kernel.Root, health.Reason);
        Assert.Contains("target_core_mod", health.Reason);
        Assert.Empty(_runner.Commands);

        _runner.Fail = true;
        File.WriteAllText(_kernel.Base + "/mounts", $"configfs {_kernel.Base} configfs rw 0 0\n");
        health = await NewEngine(o => o.LoadModules = true).ProbeAsync(CancellationToken.None);
        Assert.False(health.Ready);
        Assert.Contains("target_core_mod", health.Reason);
    }

    private static string Describe(ActualExport e) =>
        $"{e.Key} {e.TargetIqn} {e.BackingPath} {e.Serial} {e.Enabled} {e.SizeBytes} {e.ChapEnabled} " + string.Join(",", e.Initiators.Select(i => $"{i.InitiatorIqn}:{i.ReadOnly}"));

    /// <summary>Records tool calls (probe logic only; the real modprobe runs in the VM scenario).</summary>
    private sealed class RecordingRunner : IToolRunner
    {
        public List<string> Commands { get; } = [];
        public Action<ToolCommand>? OnRun { get; set; }
        public bool Fail { get; set; }

        public Task<ToolResult> RunAsync(ToolCommand command, CancellationToken cancellationToken)
        {
            Commands.Add(command.Display());
            if (Fail)
            {
                throw new ToolException(command, ToolFailure.ExitCode, 1, "", "modprobe: FATAL: Module not found");
            }
            OnRun?.Invoke(command);
            return Task.FromResult(new ToolResult(0, "", "", TimeSpan.Zero));
        }
    }
}
