using CsiScst.Backends;
using CsiScst.Backends.Lvm;
using CsiScst.Backends.Pools;
using CsiScst.Core.Errors;
using CsiScst.Core.Ids;
using Grpc.Core;

namespace CsiScst.Tests.Backends;

/// <summary>
/// The LVM backend's command building and report parsing, answered by real lvm2 2.03.16 output recorded in the
/// test VM by tests/fixtures/capture-lvm.sh (the host kernel has no device-mapper). Each test walks through the
/// states the capture script went through, in the same order; a command line the script did not run fails the test.
/// </summary>
public sealed class LvmBackendTests
{
    private const string K1 = "1111111111111111";
    private const string K2 = "2222222222222222";
    private const string K3 = "3333333333333333";
    private const string K4 = "4444444444444444";
    private const string K5 = "5555555555555555";
    private const string S1 = "aaaaaaaaaaaaaaaa";
    private const long MiB = 1024 * 1024;

    private readonly CapturedToolRunner _tools = new("captures-lvm");
    private readonly ListLogger<LvmBackend> _log = new();

    private LvmBackend Thin(double overcommit = 1.0) => new(new LvmPoolOptions
    {
        Name = "vg0",
        VolumeGroup = "csivg",
        ThinPool = "csi-pool",
        Overcommit = overcommit,
    }, new ObjectNames("csi"), _tools, _log);

    private LvmBackend Thick(bool clones = true, int cowPercent = 100) => new(new LvmPoolOptions
    {
        Name = "thick",
        VolumeGroup = "thickvg",
        ThickClones = clones,
        CowPercent = cowPercent,
    }, new ObjectNames("csi"), _tools, _log);

    private static CancellationToken Ct => CancellationToken.None;

    private string Command(string capture) => _tools[capture].Command;

    [Fact]
    public async Task Probe_granularity_and_thin_capacity_come_from_vgs_and_lvs()
    {
        _tools.Use("vgs-thin", "lvs-thin-empty");
        var backend = Thin();

        Assert.True((await backend.ProbeAsync(Ct)).Ready);
        Assert.Equal(4 * MiB, await backend.GetGranularityAsync(Ct));
        var capacity = await backend.GetCapacityAsync(Ct);
        Assert.Equal(512 * MiB, capacity.TotalBytes);
        Assert.Equal(512 * MiB, capacity.AvailableBytes);

        Assert.Equal(2 * 512 * MiB, (await Thin(overcommit: 2).GetCapacityAsync(Ct)).TotalBytes);
        Assert.True(Thin().Features.Thin);
    }

    [Fact]
    public async Task A_missing_volume_group_is_not_ready_and_unavailable()
    {
        _tools.Use("vgs-missing-vg", "lvs-missing-vg");
        var backend = new LvmBackend(new LvmPoolOptions { Name = "gone", VolumeGroup = "novg" }, new ObjectNames("csi"), _tools, _log);

        var health = await backend.ProbeAsync(Ct);
        Assert.False(health.Ready);
        Assert.Contains("novg", health.Reason, StringComparison.Ordinal);
        var e = await Assert.ThrowsAsync<StatusException>(() => backend.GetVolumeAsync(K1, Ct));
        Assert.Equal(StatusCode.Unavailable, e.Code);
        Assert.Contains("volume group novg not found", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Creates_a_tagged_thin_lv_rounded_to_extents()
    {
        _tools.Use("vgs-thin", "lvs-missing", "lvs-thin-empty", "lvcreate-thin");
        var backend = Thin();

        var volume = await backend.CreateVolumeAsync(new CreateVolumeSpec(K1, 64 * MiB - 1000), Ct);

        Assert.Equal(new BackendVolume(K1, 64 * MiB), volume);
        Assert.Contains(Command("lvcreate-thin"), _tools.Calls);
        Assert.Contains("--addtag csi-scst_instance_csi --addtag csi-scst_volume", Command("lvcreate-thin"), StringComparison.Ordinal);

        // Created: the retry finds it and creates nothing.
        _tools.Use("lvs-thin-one");
        _tools.Calls.Clear();
        Assert.Equal(new BackendVolume(K1, 64 * MiB), await backend.CreateVolumeAsync(new CreateVolumeSpec(K1, 64 * MiB), Ct));
        Assert.DoesNotContain(_tools.Calls, c => c.StartsWith("lvcreate", StringComparison.Ordinal));
        Assert.Equal(new BackendVolume(K1, 64 * MiB), await backend.GetVolumeAsync(K1, Ct));
    }

    [Fact]
    public async Task An_lv_with_our_name_but_no_tags_is_tagged_and_taken()
    {
        _tools.Use("vgs-thin", "lvs-thin-untagged", "lvchange-addtag");
        var volume = await Thin().CreateVolumeAsync(new CreateVolumeSpec(K4, 32 * MiB), Ct);

        Assert.Equal(new BackendVolume(K4, 32 * MiB), volume);
        Assert.Contains(Command("lvchange-addtag"), _tools.Calls);
        Assert.Equal(1, _log.Count("carries our name but not the tags"));
    }

    [Fact]
    public async Task Thin_snapshot_and_clones_are_thin_snapshots_the_clones_active()
    {
        var backend = Thin();
        _tools.Use("vgs-thin", "lvs-snapshot-missing", "lvs-thin-one", "lvcreate-thin-snapshot", "lvs-thin-snapshot");

        var snapshot = await backend.CreateSnapshotAsync(K1, S1, Ct);

        Assert.Equal((K1, S1, 64 * MiB, true), (snapshot.VolumeKey, snapshot.SnapshotKey, snapshot.SizeBytes, snapshot.ReadyToUse));
        Assert.InRange(snapshot.Created, new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero), DateTimeOffset.UtcNow.AddDays(1));
        Assert.DoesNotContain("--setactivationskip", Command("lvcreate-thin-snapshot"), StringComparison.Ordinal);

        // From the snapshot, bigger than it: a thin snapshot of the snapshot, created active, then extended.
        _tools.Use("lvs-missing-k2", "lvs-thin-after-snapshot", "lvcreate-thin-clone-of-snapshot", "lvs-thin-clone", "lvextend-thin");
        var clone = await backend.CreateVolumeAsync(new CreateVolumeSpec(K2, 128 * MiB, new FromSnapshotSource(K1, S1)), Ct);
        Assert.Equal(new BackendVolume(K2, 128 * MiB, new FromSnapshotSource(K1, S1)), clone);
        Assert.Contains(Command("lvcreate-thin-clone-of-snapshot"), _tools.Calls);
        Assert.Contains(Command("lvextend-thin"), _tools.Calls);

        // From the volume: directly a thin snapshot of it.
        _tools.Use("lvs-missing-k3", "lvcreate-thin-clone-of-volume", "lvs-thin-clone-of-volume");
        var fromVolume = await backend.CreateVolumeAsync(new CreateVolumeSpec(K3, 0, new FromVolumeSource(K1)), Ct);
        Assert.Equal(new BackendVolume(K3, 64 * MiB, new FromVolumeSource(K1)), fromVolume);
        Assert.Contains(Command("lvcreate-thin-clone-of-volume"), _tools.Calls);
    }

    [Fact]
    public async Task List_sees_only_tagged_lvs_of_this_instance()
    {
        _tools.Use("lvs-thin-all");
        var backend = Thin();

        var volumes = await backend.ListVolumesAsync(Ct);
        var snapshots = await backend.ListSnapshotsAsync(Ct);

        Assert.Equal([K1, K2, K3, K4], volumes.Select(v => v.Key));
        Assert.Equal(128 * MiB, volumes.Single(v => v.Key == K2).SizeBytes);
        var snapshot = Assert.Single(snapshots);
        Assert.Equal((K1, S1), (snapshot.VolumeKey, snapshot.SnapshotKey));
        // Not ours: the thin pool and any LV without our name and tags.
        Assert.DoesNotContain(volumes, v => v.Key.Contains('-', StringComparison.Ordinal));
        Assert.Empty(await new LvmBackend(new LvmPoolOptions { Name = "vg0", VolumeGroup = "csivg", ThinPool = "csi-pool" },
            new ObjectNames("other"), _tools, _log).ListVolumesAsync(Ct));
    }

    [Fact]
    public async Task Attach_activates_with_K_and_detach_deactivates()
    {
        var backend = Thin();
        _tools.Use("lvs-thin-inactive", "lvchange-activate-volume");
        Assert.Equal($"/dev/csivg/csi-csi-{K3}", await backend.AttachAsync(K3, Ct));
        Assert.Contains(Command("lvchange-activate-volume"), _tools.Calls);
        Assert.Contains(" -K ", Command("lvchange-activate-volume"), StringComparison.Ordinal);

        _tools.Use("lvs-thin-clone-of-volume", "lvchange-deactivate-volume");
        await backend.DetachAsync(K3, Ct);
        Assert.Contains(Command("lvchange-deactivate-volume"), _tools.Calls);

        // Still open (exported): FAILED_PRECONDITION with lvm's reason.
        _tools.Use("lvs-thin-clone-extended", "lvchange-deactivate-in-use");
        var e = await Assert.ThrowsAsync<StatusException>(() => backend.DetachAsync(K2, Ct));
        Assert.Equal(StatusCode.FailedPrecondition, e.Code);
        Assert.Contains("in use", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Delete_in_use_is_failed_precondition_and_a_thin_origin_with_snapshots_may_go()
    {
        var backend = Thin();
        _tools.Use("lvs-thin-all", "lvremove-in-use", "lvremove-thin-origin-with-snapshot");

        var inUse = await Assert.ThrowsAsync<StatusException>(() => backend.DeleteVolumeAsync(K2, Ct));
        Assert.Equal(StatusCode.FailedPrecondition, inUse.Code);
        Assert.Contains($"csivg/csi-csi-{K2}", inUse.Message, StringComparison.Ordinal);
        Assert.Contains("in use", inUse.Message, StringComparison.Ordinal);

        await backend.DeleteVolumeAsync(K1, Ct);
        Assert.Contains(Command("lvremove-thin-origin-with-snapshot"), _tools.Calls);

        // Gone already: OK without lvremove; a snapshot gone already: OK from lvremove's "Failed to find".
        _tools.Use("lvs-thin-after-origin-removed", "lvremove-missing");
        _tools.Calls.Clear();
        await backend.DeleteVolumeAsync(K1, Ct);
        Assert.DoesNotContain(_tools.Calls, c => c.StartsWith("lvremove", StringComparison.Ordinal));
        await backend.DeleteSnapshotAsync(K1, S1, Ct);
        Assert.Contains(Command("lvremove-missing"), _tools.Calls);
    }

    [Fact]
    public async Task Thin_provisioning_beyond_the_overcommit_limit_is_resource_exhausted_with_the_numbers()
    {
        _tools.Use("vgs-thin", "lvs-missing", "lvs-thin-overprovisioned");
        var backend = Thin();

        var capacity = await backend.GetCapacityAsync(Ct);
        Assert.Equal(0, capacity.AvailableBytes);
        var e = await Assert.ThrowsAsync<StatusException>(() => backend.CreateVolumeAsync(new CreateVolumeSpec(K1, 64 * MiB), Ct));

        Assert.Equal(StatusCode.ResourceExhausted, e.Code);
        Assert.Contains($"needs {64 * MiB} bytes", e.Message, StringComparison.Ordinal);
        Assert.Contains($"data {512 * MiB} bytes", e.Message, StringComparison.Ordinal);
        Assert.Contains("provisioned", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(_tools.Calls, c => c.StartsWith("lvcreate", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Thick_create_zeroes_the_lv_under_a_pending_tag()
    {
        _tools.Use("vgs-thick", "lvs-thick-missing", "lvcreate-thick", "lvs-thick-pending", "blkdiscard-zeroout", "lvchange-deltag");
        var backend = Thick();

        var volume = await backend.CreateVolumeAsync(new CreateVolumeSpec(K1, 64 * MiB), Ct);

        Assert.Equal(new BackendVolume(K1, 64 * MiB), volume);
        var order = new[] { "lvcreate-thick", "blkdiscard-zeroout", "lvchange-deltag" }.Select(n => _tools.Calls.IndexOf(Command(n))).ToArray();
        Assert.All(order, i => Assert.True(i >= 0));
        Assert.Equal(order.Order(), order);

        // A crash before the tag was removed: the LV is not handed out, the retry zeroes it again.
        _tools.Calls.Clear();
        Assert.Null(await backend.GetVolumeAsync(K1, Ct));
        await backend.CreateVolumeAsync(new CreateVolumeSpec(K1, 64 * MiB), Ct);
        Assert.DoesNotContain(Command("lvcreate-thick"), _tools.Calls);
        Assert.Contains(Command("blkdiscard-zeroout"), _tools.Calls);
        Assert.Contains(Command("lvchange-deltag"), _tools.Calls);
        Assert.False(backend.Features.Thin);
    }

    [Fact]
    public async Task Thick_snapshot_is_a_cow_snapshot_that_blocks_deleting_its_origin()
    {
        var backend = Thick();
        _tools.Use("vgs-thick-after-create", "lvs-thick-snapshot-missing", "lvs-thick-one", "lvcreate-cow-snapshot", "lvs-cow-snapshot");

        var snapshot = await backend.CreateSnapshotAsync(K1, S1, Ct);

        Assert.Equal((64 * MiB, true), (snapshot.SizeBytes, snapshot.ReadyToUse));
        Assert.Contains(" -L 67108864b ", Command("lvcreate-cow-snapshot"), StringComparison.Ordinal);

        _tools.Use("lvs-thick-all");
        var e = await Assert.ThrowsAsync<StatusException>(() => backend.DeleteVolumeAsync(K1, Ct));
        Assert.Equal(StatusCode.FailedPrecondition, e.Code);
        Assert.Contains($"csi-csi-{K1}-snap-{S1}", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(_tools.Calls, c => c.StartsWith("lvremove", StringComparison.Ordinal));
        var listed = Assert.Single(await backend.ListSnapshotsAsync(Ct));
        Assert.Equal((K1, S1, 64 * MiB), (listed.VolumeKey, listed.SnapshotKey, listed.SizeBytes));
    }

    [Fact]
    public async Task A_thick_volume_larger_than_the_free_extents_is_resource_exhausted_with_the_numbers()
    {
        _tools.Use("vgs-thick-after-snapshot", "lvs-thick-missing-k2");
        var backend = Thick();
        var capacity = await backend.GetCapacityAsync(Ct);
        Assert.InRange(capacity.AvailableBytes, 64 * MiB, capacity.TotalBytes);

        var e = await Assert.ThrowsAsync<StatusException>(() => backend.CreateVolumeAsync(new CreateVolumeSpec(K2, capacity.AvailableBytes + 4 * MiB), Ct));

        Assert.Equal(StatusCode.ResourceExhausted, e.Code);
        Assert.Contains($"has {capacity.AvailableBytes} bytes", e.Message, StringComparison.Ordinal);
        Assert.Contains($"free of {capacity.TotalBytes} bytes", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(_tools.Calls, c => c.StartsWith("lvcreate", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Thick_clone_copies_a_point_in_time_source_and_zeroes_the_rest()
    {
        _tools.Use("vgs-thick-before-clone", "lvs-thick-missing-k2", "lvs-thick-one", "lvs-thick-clone-source-missing", "lvcreate-cow-clone-source",
            "lvs-cow-clone-source", "lvcreate-thick-clone", "lvs-thick-clone-pending", "dd-copy", "blkdiscard-zeroout-tail", "lvchange-deltag-clone",
            "lvremove-clone-source");
        var backend = Thick();

        var clone = await backend.CreateVolumeAsync(new CreateVolumeSpec(K2, 96 * MiB, new FromVolumeSource(K1)), Ct);

        Assert.Equal(new BackendVolume(K2, 96 * MiB, new FromVolumeSource(K1)), clone);
        var steps = new[] { "lvcreate-cow-clone-source", "lvcreate-thick-clone", "dd-copy", "blkdiscard-zeroout-tail", "lvchange-deltag-clone", "lvremove-clone-source" };
        var order = steps.Select(n => _tools.Calls.IndexOf(Command(n))).ToArray();
        Assert.All(order, i => Assert.True(i >= 0, string.Join("\n", _tools.Calls)));
        Assert.Equal(order.Order(), order);
    }

    [Fact]
    public async Task Thick_clones_can_be_refused()
    {
        _tools.Use("vgs-thick-before-clone", "lvs-thick-missing-k2", "lvs-thick-one");
        var e = await Assert.ThrowsAsync<StatusException>(() => Thick(clones: false).CreateVolumeAsync(new CreateVolumeSpec(K2, 0, new FromVolumeSource(K1)), Ct));
        Assert.Equal(StatusCode.InvalidArgument, e.Code);
        Assert.Contains("thick_clones=refuse", e.Message, StringComparison.Ordinal);
        Assert.False(Thick(clones: false).Features.Clones);
    }

    [Fact]
    public async Task Thick_expand_checks_the_free_extents_then_lvextends()
    {
        _tools.Use("vgs-thick-before-extend", "lvs-thick-clone", "lvextend-thick");
        var backend = Thick();

        var grown = await backend.ExpandVolumeAsync(K2, 128 * MiB - 5, Ct);
        Assert.Equal(new BackendVolume(K2, 128 * MiB), grown);
        Assert.Contains(Command("lvextend-thick"), _tools.Calls);

        var free = (await backend.GetCapacityAsync(Ct)).AvailableBytes;
        var e = await Assert.ThrowsAsync<StatusException>(() => backend.ExpandVolumeAsync(K2, 96 * MiB + free + 4 * MiB, Ct));
        Assert.Equal(StatusCode.ResourceExhausted, e.Code);
    }

    [Theory]
    [InlineData("lvcreate-thick-vg-full", StatusCode.ResourceExhausted)]
    [InlineData("lvextend-thick-vg-full", StatusCode.ResourceExhausted)]
    [InlineData("lvremove-in-use", StatusCode.FailedPrecondition)]
    [InlineData("lvcreate-thin-exists", StatusCode.Internal)]
    public void Lvm_failures_map_to_status_codes(string capture, StatusCode expected)
    {
        var recorded = _tools[capture];
        Assert.NotEqual(0, recorded.ExitCode);
        var e = LvmBackend.Classify("test", "csivg", "lvm", recorded.ExitCode, recorded.StandardError, null);
        Assert.Equal(expected, e.Code);
        Assert.Contains(recorded.StandardError.Trim().Split('\n')[^1].Trim(), e.Message, StringComparison.Ordinal);
    }
}
