using CsiScst.Core.Errors;
using CsiScst.Targets;
using CsiScst.Targets.Scst;
using Grpc.Core;
using Xunit.Abstractions;

namespace CsiScst.IntegrationTests.Scst;

/// <summary>The export life cycle of interfaces.md F, through the real engine against the SCST model (or a real SCST).</summary>
public sealed class ScstEngineFlowTests(ITestOutputHelper output) : IAsyncLifetime
{
    private ScstTestTarget _scst = null!;

    public async Task InitializeAsync() => _scst = await ScstTestTarget.StartAsync(output);

    public async Task DisposeAsync() => await _scst.DisposeAsync();

    [Fact]
    public async Task Ensure_creates_the_documented_layout_and_a_second_call_writes_nothing()
    {
        var (engine, sysfs) = _scst.CreateEngineAndSysfs();
        var spec = _scst.Spec("pvc-flow", new InitiatorAccess(ScstTestTarget.Initiator1, false)) with { BlockSize = 4096 };

        await engine.EnsureExportAsync(spec, CancellationToken.None);

        var dev = $"devices/{spec.DeviceName}";
        Assert.Equal("vdisk_blockio", _scst.LinkName($"{dev}/handler"));
        Assert.Equal(spec.BackingPath, _scst.Attr($"{dev}/filename"));
        Assert.Equal("4096", _scst.Attr($"{dev}/blocksize"));
        Assert.Equal("0", _scst.Attr($"{dev}/rotational"));
        Assert.Equal("1", _scst.Attr($"{dev}/write_through"));
        Assert.Equal("0", _scst.Attr($"{dev}/nv_cache"));
        Assert.Equal("0", _scst.Attr($"{dev}/thin_provisioned"));
        Assert.Equal(spec.Serial, _scst.Attr($"{dev}/t10_dev_id"));
        Assert.Equal(spec.Serial, _scst.Attr($"{dev}/usn"));

        var tgt = $"targets/iscsi/{spec.TargetIqn}";
        Assert.Equal("1", _scst.Attr($"{tgt}/enabled"));
        Assert.Equal("1", _scst.Attr("targets/iscsi/enabled"));
        Assert.Empty(_scst.Dirs($"{tgt}/luns"));
        var group = CsiScst.Core.Ids.ObjectNames.InitiatorGroup(ScstTestTarget.Initiator1);
        Assert.Equal([group], _scst.Dirs($"{tgt}/ini_groups"));
        Assert.Equal(["0"], _scst.Dirs($"{tgt}/ini_groups/{group}/luns"));
        Assert.Equal(spec.DeviceName, _scst.LinkName($"{tgt}/ini_groups/{group}/luns/0/device"));
        Assert.Equal("0", _scst.Attr($"{tgt}/ini_groups/{group}/luns/0/read_only"));
        Assert.Equal([ScstTestTarget.Initiator1], _scst.Files($"{tgt}/ini_groups/{group}/initiators"));

        var writes = sysfs.WriteCount;
        await engine.EnsureExportAsync(spec, CancellationToken.None);
        Assert.Equal(writes, sysfs.WriteCount);

        var export = Assert.Single(await engine.ListExportsAsync(CancellationToken.None));
        Assert.Equal(spec.Key, export.Key);
        Assert.Equal(spec.TargetIqn, export.TargetIqn);
        Assert.Equal(spec.BackingPath, export.BackingPath);
        Assert.Equal(spec.Serial, export.Serial);
        Assert.True(export.Enabled);
        Assert.False(export.ChapEnabled);
        Assert.Equal(64L << 20, export.SizeBytes);
        Assert.Equal([new InitiatorAccess(ScstTestTarget.Initiator1, false)], export.Initiators);
    }

    [Fact]
    public async Task File_backed_write_back_thin_volume_uses_fileio_and_the_cache_mapping()
    {
        var engine = _scst.CreateEngine();
        var key = _scst.Names.VolumeKey("pvc-file");
        var spec = _scst.Spec("pvc-file") with
        {
            BackingPath = _scst.NewBackingFile("file-" + key),
            IsFile = true,
            WriteCache = WriteCacheMode.WriteBack,
            ThinProvisioned = true,
        };

        await engine.EnsureExportAsync(spec, CancellationToken.None);

        var dev = $"devices/{spec.DeviceName}";
        Assert.Equal("vdisk_fileio", _scst.LinkName($"{dev}/handler"));
        Assert.Equal("0", _scst.Attr($"{dev}/write_through"));
        Assert.Equal("0", _scst.Attr($"{dev}/nv_cache"));
        Assert.Equal("1", _scst.Attr($"{dev}/thin_provisioned"));

        // Switching the cache mode re-opens the device with the same identity.
        await engine.EnsureExportAsync(spec with { WriteCache = WriteCacheMode.WriteThrough }, CancellationToken.None);
        Assert.Equal("1", _scst.Attr($"{dev}/write_through"));
        Assert.Equal(spec.Serial, _scst.Attr($"{dev}/usn"));
        Assert.Equal(spec.Serial, _scst.Attr($"{dev}/t10_dev_id"));
    }

    [Fact]
    public async Task Remove_tears_everything_down_and_is_idempotent()
    {
        var engine = _scst.CreateEngine();
        var spec = _scst.Spec("pvc-remove", new InitiatorAccess(ScstTestTarget.Initiator1, false), new InitiatorAccess(ScstTestTarget.Initiator2, true));
        await engine.EnsureExportAsync(spec, CancellationToken.None);

        await engine.RemoveExportAsync(spec.Key, CancellationToken.None);

        Assert.False(_scst.Exists($"targets/iscsi/{spec.TargetIqn}"));
        Assert.False(_scst.Exists($"devices/{spec.DeviceName}"));
        Assert.Empty(await engine.ListExportsAsync(CancellationToken.None));
        await engine.RemoveExportAsync(spec.Key, CancellationToken.None);
    }

    [Fact]
    public async Task Resize_resyncs_the_device_size()
    {
        var engine = _scst.CreateEngine();
        var key = _scst.Names.VolumeKey("pvc-grow");
        var file = _scst.NewBackingFile("grow-" + key, 32L << 20);
        var spec = _scst.Spec("pvc-grow") with { BackingPath = file, IsFile = true };
        await engine.EnsureExportAsync(spec, CancellationToken.None);
        Assert.Equal((32L << 20).ToString(), _scst.Attr($"devices/{spec.DeviceName}/size"));

        using (var stream = new FileStream(file, FileMode.Open))
        {
            stream.SetLength(96L << 20);
        }
        await engine.ResyncSizeAsync(spec, CancellationToken.None);

        Assert.Equal((96L << 20).ToString(), _scst.Attr($"devices/{spec.DeviceName}/size"));
        Assert.Equal(96L << 20, Assert.Single(await engine.ListExportsAsync(CancellationToken.None)).SizeBytes);
    }

    [Fact]
    public async Task Resync_of_a_missing_device_is_not_found()
    {
        var engine = _scst.CreateEngine();
        var spec = _scst.Spec("pvc-none");
        var error = await Assert.ThrowsAsync<StatusException>(() => engine.ResyncSizeAsync(spec, CancellationToken.None));
        Assert.Equal(StatusCode.NotFound, error.Code);
        Assert.Contains(spec.DeviceName, error.Message);
    }

    [Fact]
    public async Task Probe_is_ready_with_iscsi_scstd_connected()
    {
        var engine = _scst.CreateEngine();
        var health = await engine.ProbeAsync(CancellationToken.None);
        Assert.True(health.Ready, health.Reason);
        Assert.Equal("scst", engine.Kind);
    }

    [Fact]
    public async Task Probe_of_a_missing_sysfs_root_says_scst_is_not_loaded()
    {
        var engine = _scst.CreateEngine(configure: o => o.SysfsRoot = Path.Combine(_scst.WorkDir, "no-such-scst"));
        var health = await engine.ProbeAsync(CancellationToken.None);
        Assert.False(health.Ready);
        Assert.Contains("not loaded", health.Reason);
    }
}
