using System.Diagnostics;
using System.Text.Json;
using CsiScst.Backends;
using CsiScst.Backends.Pools;
using CsiScst.Backends.Rbd;
using CsiScst.Core.Errors;
using CsiScst.Core.Ids;
using CsiScst.Tests.Fixtures.Ceph;
using Grpc.Core;

namespace CsiScst.IntegrationTests.Backends;

/// <summary>The RBD backend against a real Ceph cluster (mon + mgr + OSD on 127.0.0.1) through the real rbd and ceph CLIs.</summary>
[Collection(CephCollection.Name)]
public sealed class RbdBackendTests
{
    private const long MiB = 1024 * 1024;
    private readonly CephCluster _ceph;
    private readonly ObjectNames _names = new("csi");

    public RbdBackendTests(CephCluster ceph) => _ceph = ceph;

    private static string NewKey() => Guid.NewGuid().ToString("N")[..16];

    private RbdBackend Backend(FlattenPolicy? flatten = null, string? user = null, string? keyring = null, string? pool = null, string instance = "csi") =>
        new(new RbdPoolOptions
        {
            Name = "ceph",
            Pool = pool ?? _ceph.Pool,
            User = user ?? "admin",
            Keyring = keyring ?? _ceph.AdminKeyring,
            Conf = _ceph.Conf,
            Flatten = flatten ?? FlattenPolicy.Default,
            Timeout = TimeSpan.FromSeconds(20),
        }, new ObjectNames(instance), Tools.Runner(), new ListLogger<RbdBackend>());

    private async Task<JsonElement> InfoAsync(string key) =>
        JsonDocument.Parse((await _ceph.RbdAsync("info", "--format", "json", $"{_ceph.Pool}/csi-csi-{key}")).StandardOutput).RootElement;

    private async Task<JsonElement> SnapshotsAsync(string key) =>
        JsonDocument.Parse((await _ceph.RbdAsync("snap", "ls", "--format", "json", $"{_ceph.Pool}/csi-csi-{key}")).StandardOutput).RootElement;

    private async Task WriteAsync(string key, byte pattern, long offset = 0, long length = MiB)
    {
        var result = await _ceph.QemuIoAsync($"csi-csi-{key}", $"write -P 0x{pattern:x2} {offset} {length}");
        Assert.True(result.ExitCode == 0, result.StandardOutput + result.StandardError);
    }

    private async Task<bool> HasPatternAsync(string key, byte pattern, long offset = 0, long length = MiB)
    {
        var result = await _ceph.QemuIoAsync($"csi-csi-{key}", $"read -P 0x{pattern:x2} {offset} {length}");
        return result.ExitCode == 0 && !result.StandardOutput.Contains("verification failed", StringComparison.Ordinal);
    }

    [Fact]
    public async Task Probe_granularity_and_capacity_come_from_the_cluster()
    {
        var backend = Backend();
        var ct = Tools.Timeout();

        Assert.Equal(BackendHealth.Healthy, await backend.ProbeAsync(ct));
        Assert.Equal(4 * MiB, await backend.GetGranularityAsync(ct));
        var capacity = await backend.GetCapacityAsync(ct);
        Assert.InRange(capacity.TotalBytes, 512 * MiB, 1024 * MiB);
        Assert.InRange(capacity.AvailableBytes, 256 * MiB, capacity.TotalBytes);
        Assert.Equal(capacity.AvailableBytes, capacity.MaximumVolumeBytes);
        Assert.False(backend.IsFileBacked);
        Assert.Equal("rbd", backend.Kind);
    }

    [Fact]
    public async Task Create_get_list_expand_and_delete()
    {
        var backend = Backend();
        var ct = Tools.Timeout();
        var key = NewKey();

        var volume = await backend.CreateVolumeAsync(new CreateVolumeSpec(key, 10 * MiB), ct);

        Assert.Equal(new BackendVolume(key, 12 * MiB), volume);
        var info = await InfoAsync(key);
        Assert.Equal(12 * MiB, info.GetProperty("size").GetInt64());
        Assert.Equal(["layering", "exclusive-lock", "object-map", "fast-diff", "deep-flatten"],
            info.GetProperty("features").EnumerateArray().Select(f => f.GetString()));
        Assert.Equal(volume, await backend.GetVolumeAsync(key, ct));

        // Images of another instance and of nobody in the same pool are not ours.
        var foreign = NewKey();
        await _ceph.RbdAsync("create", "--size", "4M", $"{_ceph.Pool}/csi-other-{foreign}");
        await _ceph.RbdAsync("create", "--size", "4M", $"{_ceph.Pool}/plain-{foreign}");
        var list = await backend.ListVolumesAsync(ct);
        Assert.Contains(volume, list);
        Assert.DoesNotContain(list, v => v.Key == foreign);
        Assert.Equal(list.OrderBy(v => v.Key, StringComparer.Ordinal), list);

        Assert.Equal(new BackendVolume(key, 20 * MiB), await backend.ExpandVolumeAsync(key, 17 * MiB, ct));
        Assert.Equal(new BackendVolume(key, 20 * MiB), await backend.ExpandVolumeAsync(key, 4 * MiB, ct));
        Assert.Equal(20 * MiB, (await InfoAsync(key)).GetProperty("size").GetInt64());

        await backend.DeleteVolumeAsync(key, ct);
        Assert.Null(await backend.GetVolumeAsync(key, ct));
        await backend.DeleteVolumeAsync(key, ct);
        Assert.Equal(0, (await _ceph.RbdAsync("info", $"{_ceph.Pool}/csi-other-{foreign}")).ExitCode);
        await _ceph.RbdAsync("rm", $"{_ceph.Pool}/csi-other-{foreign}");
        await _ceph.RbdAsync("rm", $"{_ceph.Pool}/plain-{foreign}");
    }

    [Fact]
    public async Task Create_is_idempotent_and_returns_the_existing_image_as_it_is()
    {
        var backend = Backend();
        var ct = Tools.Timeout();
        var key = NewKey();
        await backend.CreateVolumeAsync(new CreateVolumeSpec(key, 8 * MiB), ct);
        await WriteAsync(key, 0x5a);

        var again = await backend.CreateVolumeAsync(new CreateVolumeSpec(key, 16 * MiB), ct);

        Assert.Equal(8 * MiB, again.SizeBytes);
        Assert.True(await HasPatternAsync(key, 0x5a));
        await backend.DeleteVolumeAsync(key, ct);
    }

    [Fact]
    public async Task Snapshots_are_protected_clones_read_their_data_and_dependencies_block_deletes()
    {
        var backend = Backend(FlattenPolicy.Never);
        var ct = Tools.Timeout();
        var (volume, snapshot, clone) = (NewKey(), NewKey(), NewKey());
        await backend.CreateVolumeAsync(new CreateVolumeSpec(volume, 8 * MiB), ct);
        await WriteAsync(volume, 0xaa);

        var created = await backend.CreateSnapshotAsync(volume, snapshot, ct);
        await WriteAsync(volume, 0xbb);

        Assert.Equal((volume, snapshot, 8 * MiB), (created.VolumeKey, created.SnapshotKey, created.SizeBytes));
        Assert.InRange(created.Created, DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddMinutes(1));
        var listed = Assert.Single((await SnapshotsAsync(volume)).EnumerateArray());
        Assert.Equal($"snap-{snapshot}", listed.GetProperty("name").GetString());
        Assert.Equal("true", listed.GetProperty("protected").GetString());
        Assert.Equal(created, await backend.GetSnapshotAsync(volume, snapshot, ct));
        Assert.Equal(created, await backend.CreateSnapshotAsync(volume, snapshot, ct));
        Assert.Contains(created, await backend.ListSnapshotsAsync(ct));

        var restored = await backend.CreateVolumeAsync(new CreateVolumeSpec(clone, 16 * MiB, new FromSnapshotSource(volume, snapshot)), ct);
        Assert.Equal(new BackendVolume(clone, 16 * MiB, new FromSnapshotSource(volume, snapshot)), restored);
        Assert.True(await HasPatternAsync(clone, 0xaa));
        Assert.True(await HasPatternAsync(volume, 0xbb));
        Assert.Equal($"snap-{snapshot}", (await InfoAsync(clone)).GetProperty("parent").GetProperty("snapshot").GetString());

        var deleteVolume = await Assert.ThrowsAsync<StatusException>(() => backend.DeleteVolumeAsync(volume, ct));
        Assert.Equal(StatusCode.FailedPrecondition, deleteVolume.Code);
        Assert.Contains($"snap-{snapshot}", deleteVolume.Message, StringComparison.Ordinal);
        var deleteSnapshot = await Assert.ThrowsAsync<StatusException>(() => backend.DeleteSnapshotAsync(volume, snapshot, ct));
        Assert.Equal(StatusCode.FailedPrecondition, deleteSnapshot.Code);
        Assert.Contains($"csi-csi-{clone}", deleteSnapshot.Message, StringComparison.Ordinal);

        await backend.DeleteVolumeAsync(clone, ct);
        await backend.DeleteSnapshotAsync(volume, snapshot, ct);
        await backend.DeleteSnapshotAsync(volume, snapshot, ct);
        Assert.Null(await backend.GetSnapshotAsync(volume, snapshot, ct));
        await backend.DeleteVolumeAsync(volume, ct);
        Assert.Null(await backend.GetVolumeAsync(volume, ct));
    }

    [Fact]
    public async Task A_clone_of_a_volume_goes_through_a_hidden_snapshot_that_disappears_with_the_clone()
    {
        var backend = Backend(FlattenPolicy.Never);
        var ct = Tools.Timeout();
        var (source, clone) = (NewKey(), NewKey());
        await backend.CreateVolumeAsync(new CreateVolumeSpec(source, 8 * MiB), ct);
        await WriteAsync(source, 0x11);

        await backend.CreateVolumeAsync(new CreateVolumeSpec(clone, 0, new FromVolumeSource(source)), ct);
        await WriteAsync(source, 0x22);

        Assert.True(await HasPatternAsync(clone, 0x11));
        Assert.Equal($"clone-{clone}", Assert.Single((await SnapshotsAsync(source)).EnumerateArray()).GetProperty("name").GetString());
        // The hidden snapshot is no user snapshot.
        Assert.DoesNotContain(await backend.ListSnapshotsAsync(ct), s => s.VolumeKey == source);
        var blocked = await Assert.ThrowsAsync<StatusException>(() => backend.DeleteVolumeAsync(source, ct));
        Assert.Equal(StatusCode.FailedPrecondition, blocked.Code);
        Assert.Contains($"csi-csi-{clone}", blocked.Message, StringComparison.Ordinal);
        Assert.Contains("flatten", blocked.Message, StringComparison.Ordinal);

        await backend.DeleteVolumeAsync(clone, ct);
        Assert.Empty((await SnapshotsAsync(source)).EnumerateArray());
        await backend.DeleteVolumeAsync(source, ct);
    }

    [Fact]
    public async Task Flatten_always_makes_clones_independent_at_once()
    {
        var backend = Backend();
        var ct = Tools.Timeout();
        var (source, clone) = (NewKey(), NewKey());
        await backend.CreateVolumeAsync(new CreateVolumeSpec(source, 8 * MiB), ct);
        await WriteAsync(source, 0x33);
        var parameters = new Dictionary<string, string> { [RbdBackend.FlattenParameter] = "always" };

        await backend.CreateVolumeAsync(new CreateVolumeSpec(clone, 12 * MiB, new FromVolumeSource(source)) { Parameters = parameters }, ct);

        Assert.False((await InfoAsync(clone)).TryGetProperty("parent", out _));
        Assert.Empty((await SnapshotsAsync(source)).EnumerateArray());
        await backend.DeleteVolumeAsync(source, ct);
        Assert.True(await HasPatternAsync(clone, 0x33));
        Assert.Equal(12 * MiB, (await InfoAsync(clone)).GetProperty("size").GetInt64());
        await backend.DeleteVolumeAsync(clone, ct);
    }

    [Fact]
    public async Task Flatten_on_depth_flattens_only_clones_deeper_than_the_limit()
    {
        var backend = Backend(new FlattenPolicy(FlattenPolicy.Mode.OnDepth, 1));
        var ct = Tools.Timeout();
        var (a, b, c, sa, sb) = (NewKey(), NewKey(), NewKey(), NewKey(), NewKey());
        await backend.CreateVolumeAsync(new CreateVolumeSpec(a, 4 * MiB), ct);
        await WriteAsync(a, 0x44);
        await backend.CreateSnapshotAsync(a, sa, ct);
        await backend.CreateVolumeAsync(new CreateVolumeSpec(b, 0, new FromSnapshotSource(a, sa)), ct);
        await backend.CreateSnapshotAsync(b, sb, ct);
        await backend.CreateVolumeAsync(new CreateVolumeSpec(c, 0, new FromSnapshotSource(b, sb)), ct);

        Assert.True((await InfoAsync(b)).TryGetProperty("parent", out _), "depth 1 stays a clone");
        Assert.False((await InfoAsync(c)).TryGetProperty("parent", out _), "depth 2 is flattened");
        Assert.True(await HasPatternAsync(c, 0x44));

        await backend.DeleteVolumeAsync(c, ct);
        await backend.DeleteSnapshotAsync(b, sb, ct);
        await backend.DeleteVolumeAsync(b, ct);
        await backend.DeleteSnapshotAsync(a, sa, ct);
        await backend.DeleteVolumeAsync(a, ct);
    }

    [Fact]
    public async Task Bad_requests_get_the_spec_codes()
    {
        var backend = Backend();
        var ct = Tools.Timeout();
        var (volume, snapshot, other) = (NewKey(), NewKey(), NewKey());
        await backend.CreateVolumeAsync(new CreateVolumeSpec(volume, 8 * MiB), ct);

        var badFlatten = await Assert.ThrowsAsync<StatusException>(() => backend.CreateVolumeAsync(
            new CreateVolumeSpec(other, 0, new FromVolumeSource(volume)) { Parameters = new Dictionary<string, string> { ["rbdFlatten"] = "sometimes" } }, ct));
        Assert.Equal(StatusCode.InvalidArgument, badFlatten.Code);
        Assert.Contains("rbdFlatten='sometimes'", badFlatten.Message, StringComparison.Ordinal);

        var smaller = await Assert.ThrowsAsync<StatusException>(() => backend.CreateVolumeAsync(new CreateVolumeSpec(other, 4 * MiB, new FromVolumeSource(volume)), ct));
        Assert.Equal(StatusCode.OutOfRange, smaller.Code);

        var noSnapshot = await Assert.ThrowsAsync<StatusException>(() => backend.CreateVolumeAsync(new CreateVolumeSpec(other, 0, new FromSnapshotSource(volume, snapshot)), ct));
        Assert.Equal(StatusCode.NotFound, noSnapshot.Code);
        Assert.Contains(snapshot, noSnapshot.Message, StringComparison.Ordinal);

        var noVolume = await Assert.ThrowsAsync<StatusException>(() => backend.CreateSnapshotAsync(other, snapshot, ct));
        Assert.Equal(StatusCode.NotFound, noVolume.Code);
        Assert.Equal(StatusCode.NotFound, (await Assert.ThrowsAsync<StatusException>(() => backend.ExpandVolumeAsync(other, 8 * MiB, ct))).Code);
        Assert.Equal(StatusCode.NotFound, (await Assert.ThrowsAsync<StatusException>(() => backend.AttachAsync(other, ct))).Code);
        await backend.DeleteSnapshotAsync(other, snapshot, ct);
        await backend.DetachAsync(other, ct);

        Assert.Null(await backend.GetVolumeAsync(other, ct));
        Assert.Empty((await SnapshotsAsync(volume)).EnumerateArray());
        await backend.DeleteVolumeAsync(volume, ct);
    }

    [Fact]
    public async Task Half_finished_attempts_are_completed_by_the_retry()
    {
        var backend = Backend();
        var ct = Tools.Timeout();
        var (volume, snapshot, clone, leftover) = (NewKey(), NewKey(), NewKey(), NewKey());
        await backend.CreateVolumeAsync(new CreateVolumeSpec(volume, 4 * MiB), ct);
        var image = $"{_ceph.Pool}/csi-csi-{volume}";

        // Killed after "snap create", before "snap protect".
        await _ceph.RbdAsync("snap", "create", $"{image}@snap-{snapshot}");
        await backend.CreateSnapshotAsync(volume, snapshot, ct);
        Assert.Equal("true", Assert.Single((await SnapshotsAsync(volume)).EnumerateArray()).GetProperty("protected").GetString());

        // Killed after "clone", before "flatten" (policy always).
        await _ceph.RbdAsync("clone", $"{image}@snap-{snapshot}", $"{_ceph.Pool}/csi-csi-{clone}");
        await backend.CreateVolumeAsync(new CreateVolumeSpec(clone, 0, new FromSnapshotSource(volume, snapshot))
        {
            Parameters = new Dictionary<string, string> { [RbdBackend.FlattenParameter] = "always" },
        }, ct);
        Assert.False((await InfoAsync(clone)).TryGetProperty("parent", out _));

        // Killed after the hidden snapshot of a clone-of-volume, before the clone: a leftover without children.
        await _ceph.RbdAsync("snap", "create", $"{image}@clone-{leftover}");
        await _ceph.RbdAsync("snap", "protect", $"{image}@clone-{leftover}");
        await backend.DeleteSnapshotAsync(volume, snapshot, ct);
        await backend.DeleteVolumeAsync(volume, ct);
        Assert.Null(await backend.GetVolumeAsync(volume, ct));
        await backend.DeleteVolumeAsync(clone, ct);
    }

    [Fact]
    public async Task An_image_with_watchers_is_in_use_and_not_deleted()
    {
        var backend = Backend();
        var ct = Tools.Timeout();
        var key = NewKey();
        await backend.CreateVolumeAsync(new CreateVolumeSpec(key, 4 * MiB), ct);
        var id = (await InfoAsync(key)).GetProperty("id").GetString();

        // A client holding the image open: a watch on its header object (rados watch lasts while stdin is open).
        using var watcher = Process.Start(new ProcessStartInfo("rados", ["-c", _ceph.Conf, "-p", _ceph.Pool, "watch", $"rbd_header.{id}"])
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        })!;
        try
        {
            while (!(await _ceph.RbdAsync("status", "--format", "json", $"{_ceph.Pool}/csi-csi-{key}")).StandardOutput.Contains("\"client\"", StringComparison.Ordinal))
            {
                if (watcher.HasExited)
                {
                    Assert.Fail("rados watch exited: " + await watcher.StandardError.ReadToEndAsync(ct));
                }
                await Task.Delay(100, ct);
            }

            var e = await Assert.ThrowsAsync<StatusException>(() => backend.DeleteVolumeAsync(key, ct));

            Assert.Equal(StatusCode.FailedPrecondition, e.Code);
            Assert.Contains("watchers", e.Message, StringComparison.Ordinal);
            Assert.Contains(key, e.Message, StringComparison.Ordinal);
            Assert.NotNull(await backend.GetVolumeAsync(key, ct));
        }
        finally
        {
            watcher.StandardInput.Close();
            if (!watcher.WaitForExit(10_000))
            {
                watcher.Kill();
            }
        }
        await backend.DeleteVolumeAsync(key, ct);
    }

    [Fact]
    public async Task Wrong_or_missing_credentials_are_unauthenticated_and_never_show_the_key()
    {
        var ct = Tools.Timeout();
        var wrongKeyring = Path.Combine(_ceph.Directory, "wrong.keyring");
        var wrongKey = await _ceph.NewKeyAsync();
        await File.WriteAllTextAsync(wrongKeyring, $"[client.admin]\n\tkey = {wrongKey}\n", ct);
        var wrong = Backend(keyring: wrongKeyring);

        var refused = await Assert.ThrowsAsync<StatusException>(() => wrong.CreateVolumeAsync(new CreateVolumeSpec(NewKey(), 4 * MiB), ct));
        Assert.True(refused.Code == StatusCode.Unauthenticated, refused.Message);
        Assert.Contains("refused client.admin", refused.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(wrongKey, refused.Message, StringComparison.Ordinal);
        var health = await wrong.ProbeAsync(ct);
        Assert.False(health.Ready);
        Assert.Contains("refused client.admin", health.Reason, StringComparison.Ordinal);
        // A refused delete must not pass for "already gone".
        Assert.Equal(StatusCode.Unauthenticated, (await Assert.ThrowsAsync<StatusException>(() => wrong.DeleteVolumeAsync(NewKey(), ct))).Code);

        var garbledKeyring = Path.Combine(_ceph.Directory, "garbled.keyring");
        await File.WriteAllTextAsync(garbledKeyring, "[client.admin]\n\tkey = bm90IGEga2V5\n", ct);
        var garbled = await Assert.ThrowsAsync<StatusException>(() => Backend(keyring: garbledKeyring).GetVolumeAsync(NewKey(), ct));
        Assert.True(garbled.Code == StatusCode.Unauthenticated, garbled.Message);
        Assert.Contains("keyring", garbled.Message, StringComparison.Ordinal);

        var missing = Backend(user: "nobody", keyring: Path.Combine(_ceph.Directory, "missing.keyring"));
        Assert.Contains("does not exist", (await missing.ProbeAsync(ct)).Reason, StringComparison.Ordinal);
        var noKeyring = await Assert.ThrowsAsync<StatusException>(() => missing.DeleteVolumeAsync(NewKey(), ct));
        Assert.True(noKeyring.Code == StatusCode.Unauthenticated, noKeyring.Message);
        Assert.Contains("client.nobody", noKeyring.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_user_with_rbd_caps_works_and_is_refused_outside_its_pool()
    {
        var ct = Tools.Timeout();
        var name = "csi" + NewKey()[..6];
        var keyring = await _ceph.CreateUserAsync(name, "mon", "profile rbd", "osd", $"profile rbd pool={_ceph.Pool}", "mgr", $"profile rbd pool={_ceph.Pool}");
        var backend = Backend(user: name, keyring: keyring);
        var (volume, snapshot, clone) = (NewKey(), NewKey(), NewKey());

        Assert.True((await backend.ProbeAsync(ct)).Ready);
        Assert.True((await backend.GetCapacityAsync(ct)).AvailableBytes > 0);
        await backend.CreateVolumeAsync(new CreateVolumeSpec(volume, 4 * MiB), ct);
        await backend.CreateSnapshotAsync(volume, snapshot, ct);
        await backend.CreateVolumeAsync(new CreateVolumeSpec(clone, 0, new FromSnapshotSource(volume, snapshot)), ct);
        await backend.DeleteVolumeAsync(clone, ct);
        await backend.DeleteSnapshotAsync(volume, snapshot, ct);
        await backend.DeleteVolumeAsync(volume, ct);

        var otherPool = "other" + NewKey()[..6];
        await _ceph.CephAsync("osd", "pool", "create", otherPool, "8", "8", "--autoscale-mode=off");
        try
        {
            await _ceph.RbdAsync("pool", "init", otherPool);
            var outside = Backend(user: name, keyring: keyring, pool: otherPool);
            var e = await Assert.ThrowsAsync<StatusException>(() => outside.CreateVolumeAsync(new CreateVolumeSpec(NewKey(), 4 * MiB), ct));
            Assert.Equal(StatusCode.PermissionDenied, e.Code);
            Assert.Contains($"client.{name}", e.Message, StringComparison.Ordinal);
            Assert.Contains(otherPool, e.Message, StringComparison.Ordinal);
        }
        finally
        {
            await _ceph.CephAsync("osd", "pool", "delete", otherPool, otherPool, "--yes-i-really-really-mean-it");
        }
    }

    [Fact]
    public async Task A_full_pool_is_resource_exhausted_with_the_numbers()
    {
        var ct = Tools.Timeout();
        var pool = "quota" + NewKey()[..6];
        await _ceph.CephAsync("osd", "pool", "create", pool, "8", "8", "--autoscale-mode=off");
        try
        {
            await _ceph.RbdAsync("pool", "init", pool);
            await _ceph.CephAsync("osd", "pool", "set-quota", pool, "max_bytes", (8 * MiB).ToString());
            var backend = Backend(pool: pool);
            var key = NewKey();
            await backend.CreateVolumeAsync(new CreateVolumeSpec(key, 32 * MiB), ct);
            var image = $"csi-csi-{key}";
            var write = await _ceph.QemuIoInPoolAsync(pool, image, "write -P 0x77 0 12M");
            Assert.True(write.ExitCode == 0, write.StandardOutput + write.StandardError);
            // The manager publishes pool statistics every second (mgr stats period = 1); a new pool appears in them a moment later.
            while (await AvailableAsync() is not 0)
            {
                await Task.Delay(250, ct);
            }
            async Task<long?> AvailableAsync()
            {
                try
                {
                    return (await backend.GetCapacityAsync(ct)).AvailableBytes;
                }
                catch (StatusException e) when (e.Code == StatusCode.Unavailable && e.Message.Contains("does not list", StringComparison.Ordinal))
                {
                    return null;
                }
            }

            var e = await Assert.ThrowsAsync<StatusException>(() => backend.CreateVolumeAsync(new CreateVolumeSpec(NewKey(), 4 * MiB), ct));

            Assert.Equal(StatusCode.ResourceExhausted, e.Code);
            Assert.Contains($"quota of {8 * MiB} bytes", e.Message, StringComparison.Ordinal);
            Assert.Contains("stored", e.Message, StringComparison.Ordinal);
            var snapshot = await Assert.ThrowsAsync<StatusException>(() => backend.CreateSnapshotAsync(key, NewKey(), ct));
            Assert.Equal(StatusCode.ResourceExhausted, snapshot.Code);
        }
        finally
        {
            await _ceph.CephAsync("osd", "pool", "delete", pool, pool, "--yes-i-really-really-mean-it");
        }
    }

    [Fact]
    public async Task Attach_maps_with_krbd_where_the_kernel_has_it_and_says_why_not_otherwise()
    {
        var backend = Backend();
        var ct = Tools.Timeout();
        var key = NewKey();
        await backend.CreateVolumeAsync(new CreateVolumeSpec(key, 4 * MiB), ct);
        try
        {
            if (Directory.Exists("/sys/bus/rbd"))
            {
                var device = await backend.AttachAsync(key, ct);
                Assert.StartsWith("/dev/rbd", device, StringComparison.Ordinal);
                Assert.Equal(device, await backend.AttachAsync(key, ct));
                await backend.DetachAsync(key, ct);
                await backend.DetachAsync(key, ct);
            }
            else
            {
                var e = await Assert.ThrowsAsync<StatusException>(() => backend.AttachAsync(key, ct));
                Assert.Equal(StatusCode.FailedPrecondition, e.Code);
                Assert.Contains("kernel rbd module", e.Message, StringComparison.Ordinal);
                await backend.DetachAsync(key, ct);
            }
        }
        finally
        {
            await backend.DeleteVolumeAsync(key, ct);
        }
    }
}

/// <summary>A cluster of its own whose monitor is killed: every call must end UNAVAILABLE within the pool's timeout.</summary>
public sealed class RbdMonitorDownTests : IAsyncLifetime
{
    private readonly CephCluster _ceph = new(256L * 1024 * 1024);

    public Task InitializeAsync() => _ceph.InitializeAsync();

    public Task DisposeAsync() => _ceph.DisposeAsync();

    [Fact]
    public async Task With_the_monitor_gone_calls_are_unavailable_and_the_pool_not_ready()
    {
        var ct = Tools.Timeout();
        var backend = new RbdBackend(new RbdPoolOptions
        {
            Name = "ceph",
            Pool = _ceph.Pool,
            Keyring = _ceph.AdminKeyring,
            Conf = _ceph.Conf,
            Timeout = TimeSpan.FromSeconds(3),
        }, new ObjectNames("csi"), Tools.Runner(), new ListLogger<RbdBackend>());
        var key = Guid.NewGuid().ToString("N")[..16];
        await backend.CreateVolumeAsync(new CreateVolumeSpec(key, 4 * 1024 * 1024), ct);
        Assert.True((await backend.ProbeAsync(ct)).Ready);

        await _ceph.StopMonitorAsync();

        var create = await Assert.ThrowsAsync<StatusException>(() => backend.CreateVolumeAsync(new CreateVolumeSpec("00000000000000ff", 4 * 1024 * 1024), ct));
        Assert.Equal(StatusCode.Unavailable, create.Code);
        Assert.Contains(_ceph.Conf, create.Message, StringComparison.Ordinal);
        Assert.Equal(StatusCode.Unavailable, (await Assert.ThrowsAsync<StatusException>(() => backend.DeleteVolumeAsync(key, ct))).Code);
        Assert.Equal(StatusCode.Unavailable, (await Assert.ThrowsAsync<StatusException>(() => backend.GetCapacityAsync(ct))).Code);
        var health = await new BackendReadinessCheck(backend).CheckAsync(ct);
        Assert.False(health.Ready);
    }
}
