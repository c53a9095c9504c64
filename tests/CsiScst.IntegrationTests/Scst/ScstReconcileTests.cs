using CsiScst.Core.Ids;
using CsiScst.Targets;
using Xunit.Abstractions;

namespace CsiScst.IntegrationTests.Scst;

/// <summary>Reconcile after a reboot, orphan removal that touches only our objects, and what must be ignored.</summary>
public sealed class ScstReconcileTests(ITestOutputHelper output) : IAsyncLifetime
{
    private ScstTestTarget _scst = null!;

    public async Task InitializeAsync() => _scst = await ScstTestTarget.StartAsync(output);

    public async Task DisposeAsync() => await _scst.DisposeAsync();

    private IReadOnlyList<ExportSpec> ThreeExports() =>
    [
        _scst.Spec("pvc-a", new InitiatorAccess(ScstTestTarget.Initiator1, false)),
        _scst.Spec("pvc-b", new InitiatorAccess(ScstTestTarget.Initiator1, false), new InitiatorAccess(ScstTestTarget.Initiator2, true)) with
        {
            Chap = new ChapSpec("user-b", "secret-b-0123456", "target-b", "mutual-b-654321"),
            Portals = ["198.51.100.7:3260"],
        },
        _scst.Spec("pvc-c") with { IsFile = true, BackingPath = _scst.NewBackingFile("c-file"), WriteCache = WriteCacheMode.WriteBack, ThinProvisioned = true },
    ];

    /// <summary>Everything that identifies an export to an initiator, read straight from sysfs.</summary>
    private string Identity(ExportSpec spec)
    {
        var dev = $"devices/{spec.DeviceName}";
        var tgt = $"targets/iscsi/{spec.TargetIqn}";
        var lines = new List<string>
        {
            $"handler={_scst.LinkName($"{dev}/handler")}",
            $"filename={_scst.Attr($"{dev}/filename")}",
            $"t10_dev_id={_scst.Attr($"{dev}/t10_dev_id")}",
            $"usn={_scst.Attr($"{dev}/usn")}",
            $"blocksize={_scst.Attr($"{dev}/blocksize")}",
            $"write_through={_scst.Attr($"{dev}/write_through")}",
            $"thin={_scst.Attr($"{dev}/thin_provisioned")}",
            $"enabled={_scst.Attr($"{tgt}/enabled")}",
            $"default-luns={string.Join(",", _scst.Dirs($"{tgt}/luns"))}",
        };
        foreach (var file in _scst.Files(tgt).Where(f => f.StartsWith("IncomingUser", StringComparison.Ordinal) || f.StartsWith("OutgoingUser", StringComparison.Ordinal) || f.StartsWith("allowed_portal", StringComparison.Ordinal)))
        {
            lines.Add($"{file}={_scst.Attr($"{tgt}/{file}")}");
        }
        foreach (var group in _scst.Dirs($"{tgt}/ini_groups"))
        {
            lines.Add($"group {group}: initiators={string.Join(",", _scst.Files($"{tgt}/ini_groups/{group}/initiators"))}");
            foreach (var lun in _scst.Dirs($"{tgt}/ini_groups/{group}/luns"))
            {
                lines.Add($"group {group}: lun {lun}={_scst.LinkName($"{tgt}/ini_groups/{group}/luns/{lun}/device")} ro={_scst.Attr($"{tgt}/ini_groups/{group}/luns/{lun}/read_only")}");
            }
        }
        return string.Join("\n", lines);
    }

    [ModelFact]
    public async Task After_a_reboot_reconcile_restores_every_export_with_the_same_identity()
    {
        var (engine, sysfs) = _scst.CreateEngineAndSysfs();
        var desired = ThreeExports();
        foreach (var spec in desired)
        {
            await engine.EnsureExportAsync(spec, CancellationToken.None);
        }
        var before = desired.Select(Identity).ToList();
        var listedBefore = await engine.ListExportsAsync(CancellationToken.None);

        Assert.Equal(0, _scst.Control("reboot", "1"));
        Assert.Empty(await engine.ListExportsAsync(CancellationToken.None));

        var result = await engine.ReconcileAsync(desired, CancellationToken.None);

        Assert.Empty(result.Errors);
        Assert.Equal(3, result.Checked);
        Assert.Equal(3, result.Repaired);
        Assert.Equal(0, result.OrphansRemoved);
        Assert.Equal(before, desired.Select(Identity).ToList());
        Assert.Equal(listedBefore, await engine.ListExportsAsync(CancellationToken.None), new ActualExportComparer());
        Assert.Equal(0, _scst.Login(desired[1].TargetIqn, ScstTestTarget.Initiator2, portal: "198.51.100.7", user: "user-b", secret: "secret-b-0123456"));

        // Nothing changed since: a second reconcile reads but writes nothing and keeps the saved config as it is.
        var written = File.GetLastWriteTimeUtc(_scst.ConfigPath);
        var writes = sysfs.WriteCount;
        var again = await engine.ReconcileAsync(desired, CancellationToken.None);
        Assert.Equal((3, 0, 0), (again.Checked, again.Repaired, again.OrphansRemoved));
        Assert.Equal(writes, sysfs.WriteCount);
        Assert.Equal(written, File.GetLastWriteTimeUtc(_scst.ConfigPath));
    }

    [Fact]
    public async Task Reconcile_removes_only_our_orphans()
    {
        var engine = _scst.CreateEngine();
        var kept = _scst.Spec("pvc-kept", new InitiatorAccess(ScstTestTarget.Initiator1, false));
        var orphan = _scst.Spec("pvc-orphan", new InitiatorAccess(ScstTestTarget.Initiator1, false));
        await engine.EnsureExportAsync(kept, CancellationToken.None);
        await engine.EnsureExportAsync(orphan, CancellationToken.None);

        // Another installation (instance id) on the same SCST, and objects an operator made by hand.
        var otherNames = new ObjectNames("zz" + _scst.InstanceId[2..]);
        var otherEngine = _scst.CreateEngine(otherNames.InstanceId);
        var other = _scst.Spec("pvc-other", otherNames, new InitiatorAccess(ScstTestTarget.Initiator1, false));
        await otherEngine.EnsureExportAsync(other, CancellationToken.None);
        var foreignTarget = "iqn.2026-01.org.example:handmade";
        var foreignDevice = "handmade_disk";
        Assert.Equal(0, _scst.Write("handlers/vdisk_fileio/mgmt", $"add_device {foreignDevice} filename={_scst.NewBackingFile("handmade")}"));
        Assert.Equal(0, _scst.Write("targets/iscsi/mgmt", $"add_target {foreignTarget}"));
        Assert.Equal(0, _scst.Write($"targets/iscsi/{foreignTarget}/luns/mgmt", $"add {foreignDevice} 0"));
        // Half an export of ours: a device whose target never got made (a crash), and a target without device.
        var halfDevice = _scst.Spec("pvc-half-device");
        Assert.Equal(0, _scst.Write("handlers/vdisk_blockio/mgmt", $"add_device {halfDevice.DeviceName} filename={halfDevice.BackingPath}"));
        var halfTarget = _scst.Spec("pvc-half-target");
        Assert.Equal(0, _scst.Write("targets/iscsi/mgmt", $"add_target {halfTarget.TargetIqn}"));

        var result = await engine.ReconcileAsync([kept], CancellationToken.None);

        Assert.Empty(result.Errors);
        Assert.Equal(3, result.OrphansRemoved);
        Assert.Equal([kept.Key], (await engine.ListExportsAsync(CancellationToken.None)).Select(e => e.Key));
        foreach (var gone in new[] { orphan, halfDevice, halfTarget })
        {
            Assert.False(_scst.Exists($"targets/iscsi/{gone.TargetIqn}"));
            Assert.False(_scst.Exists($"devices/{gone.DeviceName}"));
        }
        Assert.True(_scst.Exists($"targets/iscsi/{foreignTarget}/luns/0"));
        Assert.True(_scst.Exists($"devices/{foreignDevice}"));
        Assert.Equal("1", _scst.Attr($"targets/iscsi/{other.TargetIqn}/enabled"));
        Assert.Single(await otherEngine.ListExportsAsync(CancellationToken.None));

        await otherEngine.RemoveExportAsync(other.Key, CancellationToken.None);
        Assert.Equal(0, _scst.Write("targets/iscsi/mgmt", $"del_target {foreignTarget}"));
        Assert.Equal(0, _scst.Write("handlers/vdisk_fileio/mgmt", $"del_device {foreignDevice}"));
    }

    [ModelFact]
    public async Task Scsi_disks_and_the_copy_manager_are_ignored()
    {
        Assert.Equal(0, _scst.Control("scsi_disk", "2:0:0:0"));
        var engine = _scst.CreateEngine();
        var spec = _scst.Spec("pvc-cm", new InitiatorAccess(ScstTestTarget.Initiator1, false));
        await engine.EnsureExportAsync(spec, CancellationToken.None);
        Assert.True(_scst.Exists("devices/2:0:0:0"));
        Assert.True(_scst.Exists("targets/copy_manager/copy_manager_tgt"));

        Assert.Equal([spec.Key], (await engine.ListExportsAsync(CancellationToken.None)).Select(e => e.Key));
        var result = await engine.ReconcileAsync([spec], CancellationToken.None);
        Assert.Equal((1, 0, 0), (result.Checked, result.Repaired, result.OrphansRemoved));
        Assert.Empty(result.Errors);
        await engine.ReconcileAsync([], CancellationToken.None);

        Assert.True(_scst.Exists("devices/2:0:0:0"));
        Assert.True(_scst.Exists("targets/copy_manager/copy_manager_tgt"));
        Assert.Empty(await engine.ListExportsAsync(CancellationToken.None));
    }

    [Fact]
    public async Task Reconcile_repairs_drift_an_operator_made()
    {
        var engine = _scst.CreateEngine();
        var spec = _scst.Spec("pvc-drift", new InitiatorAccess(ScstTestTarget.Initiator1, false));
        await engine.EnsureExportAsync(spec, CancellationToken.None);
        var group = ObjectNames.InitiatorGroup(ScstTestTarget.Initiator1);
        var tgt = $"targets/iscsi/{spec.TargetIqn}";
        Assert.Equal(0, _scst.Write($"{tgt}/enabled", "0"));
        Assert.Equal(0, _scst.Write($"{tgt}/ini_groups/{group}/luns/mgmt", "del 0"));
        Assert.Equal(0, _scst.Write($"{tgt}/luns/mgmt", $"add {spec.DeviceName} 0"));
        Assert.Equal(0, _scst.Write($"devices/{spec.DeviceName}/usn", "WRONG"));

        var result = await engine.ReconcileAsync([spec], CancellationToken.None);

        Assert.Equal(1, result.Repaired);
        Assert.Equal("1", _scst.Attr($"{tgt}/enabled"));
        Assert.Empty(_scst.Dirs($"{tgt}/luns"));
        Assert.Equal(spec.DeviceName, _scst.LinkName($"{tgt}/ini_groups/{group}/luns/0/device"));
        Assert.Equal(spec.Serial, _scst.Attr($"devices/{spec.DeviceName}/usn"));
    }

    private sealed class ActualExportComparer : IEqualityComparer<IReadOnlyList<ActualExport>>
    {
        public bool Equals(IReadOnlyList<ActualExport>? x, IReadOnlyList<ActualExport>? y) =>
            x!.Count == y!.Count && x.Zip(y).All(p => p.First with { Initiators = [] } == p.Second with { Initiators = [] } && p.First.Initiators.SequenceEqual(p.Second.Initiators));

        public int GetHashCode(IReadOnlyList<ActualExport> obj) => obj.Count;
    }
}
