using CsiScst.Core.Errors;
using CsiScst.ScstModel;
using CsiScst.Targets;
using Grpc.Core;
using Xunit.Abstractions;

namespace CsiScst.IntegrationTests.Scst;

/// <summary>Every errno SCST answers with (interfaces.md A.3–A.6), produced by the model, and what the engine makes of it.</summary>
public sealed class ScstErrnoTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const int EAGAIN = 11;
    private const int EINTR = 4;
    private ScstTestTarget _scst = null!;

    public async Task InitializeAsync() => _scst = await ScstTestTarget.StartAsync(output);

    public async Task DisposeAsync() => await _scst.DisposeAsync();

    [ModelFact]
    public async Task EAGAIN_writes_are_completed_by_polling_last_sysfs_mgmt_res()
    {
        // Each queued work takes longer than SCST lets a writer wait: every write answers EAGAIN.
        Assert.Equal(0, _scst.Control("work_ms", "150"));
        Assert.Equal(0, _scst.Control("wait_ms", "20"));
        // The runtime's own signals (GC suspension) can interrupt this raw probe write under load (EINTR);
        // only then try again, under a new name since the interrupted work may still complete.
        var probe = "probe_eagain";
        var result = _scst.Write("handlers/vdisk_nullio/mgmt", $"add_device {probe}");
        for (var attempt = 1; result == EINTR && attempt < 5; attempt++)
        {
            probe = $"probe_eagain{attempt}";
            result = _scst.Write("handlers/vdisk_nullio/mgmt", $"add_device {probe}");
        }
        Assert.Equal(EAGAIN, result);

        // The model delays queued reads as much as writes (real SCST serves them quickly), so this engine saves no
        // scst.conf, which reads every device's filename through the queue.
        var engine = _scst.CreateEngine(configure: o => o.ConfigFile = "");
        var spec = _scst.Spec("pvc-eagain", new InitiatorAccess(ScstTestTarget.Initiator1, false));
        await engine.EnsureExportAsync(spec, CancellationToken.None);

        Assert.Equal(0, _scst.Control("work_ms", "0"));
        Assert.Equal(spec.Serial, _scst.Attr($"devices/{spec.DeviceName}/usn"));
        Assert.Equal("1", _scst.Attr($"targets/iscsi/{spec.TargetIqn}/enabled"));
        Assert.True(_scst.Exists($"devices/{probe}"));
        var export = Assert.Single(await engine.ListExportsAsync(CancellationToken.None));
        Assert.True(export.Enabled);
        Assert.Equal([new InitiatorAccess(ScstTestTarget.Initiator1, false)], export.Initiators);
    }

    [ModelFact]
    public async Task EAGAIN_reads_are_retried()
    {
        var engine = _scst.CreateEngine(configure: o => o.ConfigFile = "");
        var spec = _scst.Spec("pvc-eagain-read");
        await engine.EnsureExportAsync(spec, CancellationToken.None);
        Assert.Equal(0, _scst.Control("work_ms", "150"));
        Assert.Equal(0, _scst.Control("wait_ms", "20"));
        Assert.Equal(EAGAIN, ReadErrno($"devices/{spec.DeviceName}/filename"));

        var listing = engine.ListExportsAsync(CancellationToken.None);
        await Task.Delay(200);
        Assert.False(listing.IsCompleted);
        Assert.Equal(0, _scst.Control("work_ms", "0"));

        Assert.Equal(spec.BackingPath, Assert.Single(await listing).BackingPath);
    }

    private int ReadErrno(string relative)
    {
        try
        {
            File.ReadAllText(_scst.PathOf(relative));
            return 0;
        }
        catch (IOException e)
        {
            return e.HResult & 0xFFFF;
        }
    }

    [ModelFact]
    public async Task An_error_behind_EAGAIN_is_read_from_last_sysfs_mgmt_res()
    {
        Assert.Equal(0, _scst.Control("work_ms", "150"));
        Assert.Equal(0, _scst.Control("wait_ms", "20"));
        var engine = _scst.CreateEngine();
        var spec = _scst.Spec("pvc-eagain-enoent") with { BackingPath = Path.Combine(_scst.WorkDir, "missing.img") };

        var error = await Assert.ThrowsAsync<StatusException>(() => engine.EnsureExportAsync(spec, CancellationToken.None));

        Assert.Equal(StatusCode.FailedPrecondition, error.Code);
        Assert.Contains(spec.BackingPath, error.Message);
        Assert.Contains("ENOENT", error.Message);
    }

    [ModelFact]
    public async Task A_command_still_running_after_the_timeout_fails_retryably_and_a_retry_converges()
    {
        Assert.Equal(0, _scst.Control("work_ms", "600"));
        Assert.Equal(0, _scst.Control("wait_ms", "20"));
        var impatient = _scst.CreateEngine(configure: o => o.CommandTimeout = TimeSpan.FromMilliseconds(100));
        var spec = _scst.Spec("pvc-slow", new InitiatorAccess(ScstTestTarget.Initiator1, false));

        var error = await Assert.ThrowsAsync<StatusException>(() => impatient.EnsureExportAsync(spec, CancellationToken.None));
        Assert.Equal(StatusCode.DeadlineExceeded, error.Code);
        Assert.Contains("keeps running in the kernel", error.Message);

        Assert.Equal(0, _scst.Control("work_ms", "0"));
        var engine = _scst.CreateEngine();
        await engine.EnsureExportAsync(spec, CancellationToken.None);
        Assert.Equal("1", _scst.Attr($"targets/iscsi/{spec.TargetIqn}/enabled"));
        Assert.Equal(spec.Serial, _scst.Attr($"devices/{spec.DeviceName}/usn"));
    }

    [ModelFact]
    public async Task A_retry_while_the_first_add_still_runs_meets_EEXIST_and_converges()
    {
        Assert.Equal(0, _scst.Control("work_ms", "300"));
        Assert.Equal(0, _scst.Control("wait_ms", "20"));
        var spec = _scst.Spec("pvc-retry", new InitiatorAccess(ScstTestTarget.Initiator1, false));
        var impatient = _scst.CreateEngine(configure: o => { o.CommandTimeout = TimeSpan.FromMilliseconds(30); o.ConfigFile = ""; });
        var error = await Assert.ThrowsAsync<StatusException>(() => impatient.EnsureExportAsync(spec, CancellationToken.None));
        Assert.Equal(StatusCode.DeadlineExceeded, error.Code);

        // The first add_device is still running in the kernel: the retry does not see the device yet, adds it
        // again, and learns from last_sysfs_mgmt_res that it exists (EEXIST).
        var engine = _scst.CreateEngine(configure: o => o.ConfigFile = "");
        var retry = engine.EnsureExportAsync(spec, CancellationToken.None);
        // Once the retry's add_device is queued behind the first, the model may go fast again (it delays queued
        // reads as much as writes; real SCST serves them at once).
        await Task.Delay(100);
        Assert.Equal(0, _scst.Control("work_ms", "0"));
        await retry;

        // Both adds answered EAGAIN (the ops log has what write(2) returned); the second one's result, EEXIST, came
        // from last_sysfs_mgmt_res, and the retry carried on with the device the first one made.
        var adds = _scst.ReadControl("ops").Split('\n').Where(l => l.StartsWith("handlers/vdisk_blockio/mgmt\tadd_device", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, adds.Count);
        Assert.All(adds, l => Assert.EndsWith("\t11", l));
        var export = Assert.Single(await engine.ListExportsAsync(CancellationToken.None));
        Assert.True(export.Enabled);
        Assert.Equal(spec.Serial, export.Serial);
        Assert.Equal([new InitiatorAccess(ScstTestTarget.Initiator1, false)], export.Initiators);
    }

    [Fact]
    public async Task Objects_left_by_an_earlier_attempt_are_taken_over_not_duplicated()
    {
        var spec = _scst.Spec("pvc-exists", new InitiatorAccess(ScstTestTarget.Initiator1, false));
        // What a crash after the first writes leaves: device without usn, target without LUNs, disabled.
        Assert.Equal(0, _scst.Write("handlers/vdisk_blockio/mgmt", $"add_device {spec.DeviceName} filename={spec.BackingPath};blocksize=512;rotational=0;write_through=1;t10_dev_id={spec.Serial}"));
        Assert.Equal(0, _scst.Write("targets/iscsi/mgmt", $"add_target {spec.TargetIqn}"));

        var engine = _scst.CreateEngine();
        await engine.EnsureExportAsync(spec, CancellationToken.None);

        Assert.Equal(spec.Serial, _scst.Attr($"devices/{spec.DeviceName}/usn"));
        Assert.Equal("1", _scst.Attr($"targets/iscsi/{spec.TargetIqn}/enabled"));
        Assert.Single(await engine.ListExportsAsync(CancellationToken.None));
    }

    [ModelFact]
    public async Task EPERM_without_iscsi_scstd_makes_probe_not_ready_and_names_the_daemon()
    {
        var engine = _scst.CreateEngine();
        Assert.Equal(0, _scst.Control("iscsi_scstd", "stop"));

        var health = await engine.ProbeAsync(CancellationToken.None);
        Assert.False(health.Ready);
        Assert.Contains("iscsi-scstd is not running", health.Reason);

        var spec = _scst.Spec("pvc-eperm", new InitiatorAccess(ScstTestTarget.Initiator1, false));
        var error = await Assert.ThrowsAsync<StatusException>(() => engine.EnsureExportAsync(spec, CancellationToken.None));
        Assert.Equal(StatusCode.Unavailable, error.Code);
        Assert.Contains("iscsi-scstd is not running", error.Message);
        Assert.Contains("EPERM", error.Message);

        Assert.Equal(0, _scst.Control("iscsi_scstd", "start"));
        Assert.True((await engine.ProbeAsync(CancellationToken.None)).Ready);
        await engine.EnsureExportAsync(spec, CancellationToken.None);
        Assert.Equal("1", _scst.Attr($"targets/iscsi/{spec.TargetIqn}/enabled"));
    }

    [Fact]
    public async Task EBADSLT_on_enable_takes_a_free_relative_target_id()
    {
        var foreign = "iqn.2026-01.org.example:foreign-rel";
        Assert.Equal(0, _scst.Write("targets/iscsi/mgmt", $"add_target {foreign}"));
        Assert.Equal(0, _scst.Write($"targets/iscsi/{foreign}/enabled", "1"));
        var taken = _scst.Attr($"targets/iscsi/{foreign}/rel_tgt_id");

        var spec = _scst.Spec("pvc-relid", new InitiatorAccess(ScstTestTarget.Initiator1, false));
        Assert.Equal(0, _scst.Write("targets/iscsi/mgmt", $"add_target {spec.TargetIqn}"));
        Assert.Equal(0, _scst.Write($"targets/iscsi/{spec.TargetIqn}/rel_tgt_id", taken));

        var engine = _scst.CreateEngine();
        await engine.EnsureExportAsync(spec, CancellationToken.None);

        Assert.Equal("1", _scst.Attr($"targets/iscsi/{spec.TargetIqn}/enabled"));
        Assert.NotEqual(taken, _scst.Attr($"targets/iscsi/{spec.TargetIqn}/rel_tgt_id"));
        Assert.Equal(taken, _scst.Attr($"targets/iscsi/{foreign}/rel_tgt_id"));
        Assert.Equal(0, _scst.Write("targets/iscsi/mgmt", $"del_target {foreign}"));
    }

    [Fact]
    public async Task EMEDIUMTYPE_on_resync_of_a_closed_device_and_ensure_reopens_it()
    {
        var engine = _scst.CreateEngine();
        var spec = _scst.Spec("pvc-inactive");
        await engine.EnsureExportAsync(spec, CancellationToken.None);
        Assert.Equal(0, _scst.Write($"devices/{spec.DeviceName}/active", "0"));

        var error = await Assert.ThrowsAsync<StatusException>(() => engine.ResyncSizeAsync(spec, CancellationToken.None));
        Assert.Equal(StatusCode.FailedPrecondition, error.Code);
        Assert.Contains("not open", error.Message);

        await engine.EnsureExportAsync(spec, CancellationToken.None);
        Assert.Equal("1", _scst.Attr($"devices/{spec.DeviceName}/active"));
        await engine.ResyncSizeAsync(spec, CancellationToken.None);
    }

    [Fact]
    public async Task A_missing_backing_path_is_named_in_the_error()
    {
        var engine = _scst.CreateEngine();
        var spec = _scst.Spec("pvc-enoent") with { BackingPath = Path.Combine(_scst.WorkDir, "gone.img") };
        var error = await Assert.ThrowsAsync<StatusException>(() => engine.EnsureExportAsync(spec, CancellationToken.None));
        Assert.Equal(StatusCode.FailedPrecondition, error.Code);
        Assert.Contains(spec.BackingPath, error.Message);
        Assert.False(_scst.Exists($"devices/{spec.DeviceName}"));
    }

    [Fact]
    public async Task A_block_size_change_is_refused_rather_than_applied_under_data()
    {
        var engine = _scst.CreateEngine();
        var spec = _scst.Spec("pvc-bs");
        await engine.EnsureExportAsync(spec, CancellationToken.None);
        var error = await Assert.ThrowsAsync<StatusException>(() => engine.EnsureExportAsync(spec with { BlockSize = 4096 }, CancellationToken.None));
        Assert.Equal(StatusCode.FailedPrecondition, error.Code);
        Assert.Contains("block size 512", error.Message);
        Assert.Equal("512", _scst.Attr($"devices/{spec.DeviceName}/blocksize"));
    }
}
