using CsiScst.Core.Errors;
using CsiScst.Core.Faults;
using CsiScst.Engine.State;
using CsiScst.Engine.V1;
using CsiScst.Engine.Volumes;
using CsiScst.Targets;
using Grpc.Core;

namespace CsiScst.Tests.Engine;

/// <summary>Reconcile planning: what the target engine is asked to make true, from the durable state.</summary>
public sealed class ReconcilerTests : IDisposable
{
    private readonly EngineCore _core = new();

    public void Dispose() => _core.Dispose();

    private async Task<string> CreateAsync(string name)
    {
        var key = _core.Names.VolumeKey(name);
        await _core.Volumes.EnsureVolumeAsync(new EnsureVolumeRequest { Key = key, Name = name, Pool = "files", RequiredBytes = 1 << 20 }, CancellationToken.None);
        return key;
    }

    [Fact]
    public async Task Only_ready_volumes_are_desired_interrupted_deletions_are_finished_and_orphans_go()
    {
        await _core.LoadAsync();
        var ready = await CreateAsync("ready");
        var deleting = await CreateAsync("deleting");
        await _core.Store.SaveVolumeAsync(_core.Store.GetVolume(deleting)! with { Phase = VolumePhase.Deleting }, CancellationToken.None);
        var creating = _core.Names.VolumeKey("creating");
        await _core.Store.SaveVolumeAsync(new VolumeRecord { Key = creating, Pool = "files", Backend = "file", Phase = VolumePhase.Creating, CapacityBytes = 1 << 20 }, CancellationToken.None);
        _core.Engine.Exports[creating] = _core.Engine.Exports[ready] with { Key = creating };

        var report = await _core.Reconciler.RunAsync("test", CancellationToken.None);

        Assert.Empty(report.Errors);
        var desired = Assert.Single(_core.Engine.Reconciled);
        Assert.Equal([ready], desired.Select(d => d.Key));
        Assert.Null(_core.Store.GetVolume(deleting));
        Assert.False(_core.Pool.Volumes.ContainsKey(deleting));
        Assert.Equal(1, report.OrphansRemoved);
        Assert.Equal([ready], _core.Engine.Exports.Keys);
        Assert.Equal(VolumePhase.Creating, _core.Store.GetVolume(creating)!.Phase);
    }

    [Fact]
    public async Task A_device_path_that_changed_after_a_reboot_is_recorded_and_exported()
    {
        await _core.LoadAsync();
        var key = await CreateAsync("moved");
        _core.Pool.AttachPrefix = "/dev/rbd7/";

        await _core.Reconciler.RunAsync("test", CancellationToken.None);

        Assert.Equal("/dev/rbd7/" + key, _core.Store.GetVolume(key)!.BackingPath);
        Assert.Equal("/dev/rbd7/" + key, Assert.Single(_core.Engine.Reconciled[0]).BackingPath);
    }

    [Fact]
    public async Task An_unreadable_state_file_suspends_reconcile_so_no_export_is_removed_on_a_guess()
    {
        var key = _core.Names.VolumeKey("broken");
        Directory.CreateDirectory(Path.Combine(_core.Directory, "volumes"));
        await File.WriteAllTextAsync(Path.Combine(_core.Directory, "volumes", key + ".json"), "{ torn");
        await _core.LoadAsync();

        var e = await Assert.ThrowsAsync<StatusException>(() => _core.Reconciler.RunAsync("test", CancellationToken.None));

        Assert.Equal(StatusCode.FailedPrecondition, e.Code);
        Assert.Contains(key, e.Message);
        Assert.Empty(_core.Engine.Reconciled);
    }

    [Fact]
    public async Task What_reconcile_finds_becomes_the_volume_condition()
    {
        await _core.LoadAsync();
        var key = await CreateAsync("watched");
        Assert.False((await _core.Volumes.GetVolumeAsync(new GetVolumeRequest { Key = key }, CancellationToken.None)).Condition.Abnormal);
        _core.Health.SetProblem(key, "the export exists but is not enabled");
        var condition = (await _core.Volumes.GetVolumeAsync(new GetVolumeRequest { Key = key }, CancellationToken.None)).Condition;
        Assert.True(condition.Abnormal);
        Assert.Contains("not enabled", condition.Message);

        await _core.Reconciler.RunAsync("test", CancellationToken.None);
        Assert.False((await _core.Volumes.GetVolumeAsync(new GetVolumeRequest { Key = key }, CancellationToken.None)).Condition.Abnormal);
    }

    [Fact]
    public async Task Reconcile_waits_for_running_operations_and_new_operations_wait_for_reconcile()
    {
        var gate = new OperationGate();
        var operation = await gate.EnterOperationAsync(CancellationToken.None);
        var exclusive = gate.EnterExclusiveAsync(CancellationToken.None);
        await Task.Delay(50);
        Assert.False(exclusive.IsCompleted);
        var later = gate.EnterOperationAsync(CancellationToken.None);
        await Task.Delay(50);
        Assert.False(later.IsCompleted);

        operation.Dispose();
        var held = await exclusive;
        await Task.Delay(50);
        Assert.False(later.IsCompleted);
        held.Dispose();
        (await later).Dispose();

        // Operations run together.
        var first = await gate.EnterOperationAsync(CancellationToken.None);
        var second = await gate.EnterOperationAsync(CancellationToken.None);
        first.Dispose();
        second.Dispose();
        (await gate.EnterExclusiveAsync(CancellationToken.None)).Dispose();
    }

    [Fact]
    public async Task Reconcile_probes_the_engine_first_so_it_can_prepare_its_target_and_reports_one_that_is_not_ready()
    {
        await _core.LoadAsync();
        var key = await CreateAsync("vol");
        _core.Engine.Exports.Clear();
        _core.Engine.Calls.Clear();

        var report = await _core.Reconciler.RunAsync("startup", CancellationToken.None);

        Assert.Empty(report.Errors);
        Assert.Equal("probe", _core.Engine.Calls[0]);
        Assert.Equal([key], _core.Engine.Exports.Keys);

        _core.Engine.Health = EngineHealth.NotReady("configfs is not mounted");
        report = await _core.Reconciler.RunAsync("periodic", CancellationToken.None);
        Assert.Contains("target engine fake is not ready: configfs is not mounted", report.Errors);
    }

    [Fact]
    public void Fault_points_parse_names_with_colons_and_an_optional_hit_number()
    {
        Assert.Null(new FaultPoints(setting: null).Armed);
        Assert.Null(new FaultPoints(setting: " ").Armed);
        Assert.Equal("ensure-volume:after-record", new FaultPoints("ensure-volume:after-record").Armed);
        var numbered = new FaultPoints("ensure-volume:after-record:3");
        Assert.Equal("ensure-volume:after-record", numbered.Armed);
        // Hits before the third and other points do nothing (the third would SIGKILL this test process).
        numbered.Hit("ensure-volume:after-record");
        numbered.Hit("ensure-volume:after-record");
        numbered.Hit("delete-volume:after-mark");
        new FaultPoints(setting: null).Hit("ensure-volume:after-record");
    }
}
