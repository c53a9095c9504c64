using System.Diagnostics;
using CsiScst.Backends;
using CsiScst.Backends.Lvm;
using CsiScst.Backends.Pools;
using CsiScst.Backends.Rbd;
using CsiScst.Core.Errors;
using CsiScst.Core.Exec;
using CsiScst.Core.Ids;
using CsiScst.Core.Metrics;
using Grpc.Core;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

// csi-scst-backends-vm-check lvm THIN_VG THIN_POOL THICK_VG | rbd CEPH_CONF POOL
// lvm: runs the LVM backend through create, snapshot, clone, expand, in use, delete on a thin pool and a thick
// VG made by tests/backends-vm/lvm-backend.sh, checking data on the real devices.
// rbd: runs the RBD backend's krbd attach/detach (map, reuse after restart, busy, unmap) against the cluster
// started by tests/backends-vm/rbd-backend.sh.
// Prints one PASS/FAIL line per check; exit code 0 only when all passed.
var check = new Checks();
switch (args)
{
    case ["lvm", var thinVg, var thinPool, var thickVg]:
        await new LvmChecks(thinVg, thinPool, thickVg, check).RunAsync();
        break;
    case ["rbd", var conf, var pool]:
        await new RbdChecks(conf, pool, check).RunAsync();
        break;
    default:
        Console.Error.WriteLine("usage: csi-scst-backends-vm-check lvm THIN_VG THIN_POOL THICK_VG | rbd CEPH_CONF POOL");
        return 2;
}
Console.WriteLine($"INFO {check.Passed} passed, {check.Failed} failed");
return check.Failed == 0 ? 0 : 1;

internal sealed class Checks
{
    public int Passed { get; private set; }
    public int Failed { get; private set; }

    public async Task RunAsync(string name, Func<Task> body)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            await body();
            Passed++;
            Console.WriteLine($"PASS {name} ({Stopwatch.GetElapsedTime(started).TotalSeconds:0.00}s)");
        }
        catch (Exception e)
        {
            Failed++;
            Console.WriteLine($"FAIL {name} ({Stopwatch.GetElapsedTime(started).TotalSeconds:0.00}s): {e.GetType().Name}: {e.Message}");
        }
    }
}

internal sealed class CheckFailed(string message) : Exception(message);

internal static class LvmChecksShared
{
    public static void Expect(bool condition, string what)
    {
        if (!condition)
        {
            throw new CheckFailed(what);
        }
    }

    public static async Task<StatusException> ExpectStatus(StatusCode code, Func<Task> action)
    {
        try
        {
            await action();
        }
        catch (StatusException e) when (e.Code == code)
        {
            Console.WriteLine($"    {code}: {e.Message}");
            return e;
        }
        throw new CheckFailed($"expected {code}");
    }

    public static async Task WriteAsync(string device, long offset, byte value, int length = 1024 * 1024)
    {
        await using var stream = new FileStream(device, FileMode.Open, FileAccess.Write, FileShare.ReadWrite);
        stream.Seek(offset, SeekOrigin.Begin);
        await stream.WriteAsync(Enumerable.Repeat(value, length).ToArray());
        stream.Flush(flushToDisk: true);
    }

    public static async Task<bool> AllAsync(string device, long offset, byte value, int length = 1024 * 1024)
    {
        await using var stream = new FileStream(device, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        stream.Seek(offset, SeekOrigin.Begin);
        var buffer = new byte[length];
        await stream.ReadExactlyAsync(buffer);
        return buffer.All(b => b == value);
    }
}

internal sealed class LvmChecks(string thinVg, string thinPool, string thickVg, Checks check)
{
    private const long MiB = 1024 * 1024;
    private static readonly CancellationToken Ct = CancellationToken.None;
    private readonly IToolRunner _tools = new ToolRunner(new DriverMetrics(), new ExternalTime(), NullLogger<ToolRunner>.Instance);
    private readonly ILoggerFactory _loggers = LoggerFactory.Create(_ => { });

    private LvmBackend Backend(string vg, string? pool, double overcommit = 1.0) => new(new LvmPoolOptions
    {
        Name = pool is null ? "thick" : "thin",
        VolumeGroup = vg,
        ThinPool = pool,
        Overcommit = overcommit,
    }, new ObjectNames("csi"), _tools, _loggers.CreateLogger<LvmBackend>());

    private static string Key(int n) => n.ToString("x16");

    private static void Expect(bool condition, string what) => LvmChecksShared.Expect(condition, what);

    private static Task<StatusException> ExpectStatus(StatusCode code, Func<Task> action) => LvmChecksShared.ExpectStatus(code, action);

    private static Task WriteAsync(string device, long offset, byte value, int length = (int)MiB) => LvmChecksShared.WriteAsync(device, offset, value, length);

    private static Task<bool> AllAsync(string device, long offset, byte value, int length = (int)MiB) => LvmChecksShared.AllAsync(device, offset, value, length);

    private async Task<long> DeviceSizeAsync(string device) =>
        long.Parse((await _tools.RunAsync(new ToolCommand("blockdev", "--getsize64", device), Ct)).StandardOutput.Trim());

    private async Task LvmAsync(params string[] arguments) => await _tools.RunAsync(new ToolCommand(arguments[0], arguments[1..]), Ct);

    public async Task RunAsync()
    {
        var thin = Backend(thinVg, thinPool);
        var thick = Backend(thickVg, null);
        string? a = null;

        await check.RunAsync("thin: probe, granularity, capacity", async () =>
        {
            Expect((await thin.ProbeAsync(Ct)).Ready, "probe");
            Expect(await thin.GetGranularityAsync(Ct) == 4 * MiB, "extent size 4 MiB");
            var capacity = await thin.GetCapacityAsync(Ct);
            Expect(capacity.TotalBytes == 512 * MiB && capacity.AvailableBytes == 512 * MiB, $"capacity {capacity}");
        });

        await check.RunAsync("thin: create and attach", async () =>
        {
            var volume = await thin.CreateVolumeAsync(new CreateVolumeSpec(Key(1), 62 * MiB), Ct);
            Expect(volume.SizeBytes == 64 * MiB, $"rounded to extents: {volume.SizeBytes}");
            a = await thin.AttachAsync(Key(1), Ct);
            Expect(a == $"/dev/{thinVg}/csi-csi-{Key(1)}", a);
            Expect(await DeviceSizeAsync(a) == 64 * MiB, "device size");
            Expect(await AllAsync(a, 0, 0), "a new thin LV reads zeros");
            await WriteAsync(a, 0, 0xa1);
            Expect((await thin.CreateVolumeAsync(new CreateVolumeSpec(Key(1), 128 * MiB), Ct)).SizeBytes == 64 * MiB, "idempotent");
        });

        await check.RunAsync("thin: snapshot, then clones from it and from the volume", async () =>
        {
            await thin.CreateSnapshotAsync(Key(1), Key(0x51), Ct);
            await WriteAsync(a!, 0, 0xa2);
            var clone = await thin.CreateVolumeAsync(new CreateVolumeSpec(Key(2), 96 * MiB, new FromSnapshotSource(Key(1), Key(0x51))), Ct);
            Expect(clone.SizeBytes == 96 * MiB, "clone size");
            var b = await thin.AttachAsync(Key(2), Ct);
            Expect(await DeviceSizeAsync(b) == 96 * MiB, "clone device size");
            Expect(await AllAsync(b, 0, 0xa1), "the clone of the snapshot reads the data at snapshot time");
            var c = await thin.AttachAsync((await thin.CreateVolumeAsync(new CreateVolumeSpec(Key(3), 0, new FromVolumeSource(Key(1))), Ct)).Key, Ct);
            Expect(await AllAsync(c, 0, 0xa2), "the clone of the volume reads its current data");
            await WriteAsync(c, 0, 0xa3);
            Expect(await AllAsync(a!, 0, 0xa2), "writing a clone leaves its source alone");
        });

        await check.RunAsync("thin: expand", async () =>
        {
            var grown = await thin.ExpandVolumeAsync(Key(1), 100 * MiB, Ct);
            Expect(grown.SizeBytes == 100 * MiB, $"{grown.SizeBytes}");
            Expect(await DeviceSizeAsync(a!) == 100 * MiB, "device grew");
            Expect(await AllAsync(a!, 0, 0xa2), "data kept");
        });

        await check.RunAsync("thin: list", async () =>
        {
            var volumes = (await thin.ListVolumesAsync(Ct)).Select(v => v.Key).ToArray();
            Expect(volumes.SequenceEqual([Key(1), Key(2), Key(3)]), string.Join(",", volumes));
            var snapshot = (await thin.ListSnapshotsAsync(Ct)).Single();
            Expect(snapshot.VolumeKey == Key(1) && snapshot.SnapshotKey == Key(0x51) && snapshot.SizeBytes == 64 * MiB, $"{snapshot}");
            Expect(snapshot.Created > DateTimeOffset.UtcNow.AddHours(-1), $"created {snapshot.Created}");
        });

        await check.RunAsync("thin: an open LV is in use; detach and delete once closed", async () =>
        {
            var b = $"/dev/{thinVg}/csi-csi-{Key(2)}";
            await using (var holder = new FileStream(b, FileMode.Open, FileAccess.Read, FileShare.ReadWrite))
            {
                await ExpectStatus(StatusCode.FailedPrecondition, () => thin.DeleteVolumeAsync(Key(2), Ct));
                await ExpectStatus(StatusCode.FailedPrecondition, () => thin.DetachAsync(Key(2), Ct));
            }
            await thin.DetachAsync(Key(2), Ct);
            Expect(!File.Exists(b), "detached: no device node");
            await thin.DeleteVolumeAsync(Key(2), Ct);
            await thin.DeleteVolumeAsync(Key(2), Ct);
            Expect(await thin.GetVolumeAsync(Key(2), Ct) is null, "gone");
        });

        await check.RunAsync("thin: a volume with snapshots may go; its snapshot still restores", async () =>
        {
            await thin.DeleteVolumeAsync(Key(1), Ct);
            var d = await thin.AttachAsync((await thin.CreateVolumeAsync(new CreateVolumeSpec(Key(4), 0, new FromSnapshotSource(Key(1), Key(0x51))), Ct)).Key, Ct);
            Expect(await AllAsync(d, 0, 0xa1), "restored");
            await thin.DeleteSnapshotAsync(Key(1), Key(0x51), Ct);
            await thin.DeleteSnapshotAsync(Key(1), Key(0x51), Ct);
        });

        await check.RunAsync("thin: beyond the overcommit limit is RESOURCE_EXHAUSTED; 2x lets it in", async () =>
        {
            var left = (await thin.GetCapacityAsync(Ct)).AvailableBytes;
            await ExpectStatus(StatusCode.ResourceExhausted, () => thin.CreateVolumeAsync(new CreateVolumeSpec(Key(5), left + 4 * MiB), Ct));
            var twice = Backend(thinVg, thinPool, overcommit: 2);
            await twice.CreateVolumeAsync(new CreateVolumeSpec(Key(5), left + 4 * MiB), Ct);
            await twice.DeleteVolumeAsync(Key(5), Ct);
        });

        await check.RunAsync("thin: an LV with our name but no tags is tagged and returned", async () =>
        {
            await LvmAsync("lvcreate", "-q", "-y", "--type", "thin", "-n", $"csi-csi-{Key(6)}", "-V", "8M", "--thinpool", thinPool, thinVg);
            Expect(await thin.GetVolumeAsync(Key(6), Ct) is not null, "found by name");
            Expect(!(await thin.ListVolumesAsync(Ct)).Any(v => v.Key == Key(6)), "not listed before tagging");
            await thin.CreateVolumeAsync(new CreateVolumeSpec(Key(6), 8 * MiB), Ct);
            Expect((await thin.ListVolumesAsync(Ct)).Any(v => v.Key == Key(6)), "listed once tagged");
        });

        await check.RunAsync("thin: clean up", async () =>
        {
            foreach (var volume in await thin.ListVolumesAsync(Ct))
            {
                await thin.DetachAsync(volume.Key, Ct);
                await thin.DeleteVolumeAsync(volume.Key, Ct);
            }
            Expect((await thin.ListVolumesAsync(Ct)).Count == 0, "empty");
        });

        string? t = null;
        await check.RunAsync("thick: a new LV is zeroed even over old data", async () =>
        {
            // Old data on the extents the next LV gets.
            await LvmAsync("lvcreate", "-q", "-y", "-n", "old", "-L", "64M", thickVg);
            await WriteAsync($"/dev/{thickVg}/old", 0, 0xee, (int)(64 * MiB));
            await LvmAsync("lvremove", "-q", "-y", $"{thickVg}/old");
            await thick.CreateVolumeAsync(new CreateVolumeSpec(Key(0x11), 64 * MiB), Ct);
            t = await thick.AttachAsync(Key(0x11), Ct);
            Expect(await AllAsync(t, 0, 0, (int)(64 * MiB)), "zeroed");
        });

        await check.RunAsync("thick: COW snapshot, copy clones, origin protected", async () =>
        {
            await WriteAsync(t!, 0, 0xb1);
            await thick.CreateSnapshotAsync(Key(0x11), Key(0x61), Ct);
            await WriteAsync(t!, 0, 0xb2);
            var fromSnapshot = await thick.AttachAsync((await thick.CreateVolumeAsync(
                new CreateVolumeSpec(Key(0x12), 96 * MiB, new FromSnapshotSource(Key(0x11), Key(0x61))), Ct)).Key, Ct);
            Expect(await AllAsync(fromSnapshot, 0, 0xb1), "copy of the snapshot");
            Expect(await AllAsync(fromSnapshot, 64 * MiB, 0, (int)(32 * MiB)), "the grown part is zero");
            var fromVolume = await thick.AttachAsync((await thick.CreateVolumeAsync(new CreateVolumeSpec(Key(0x13), 0, new FromVolumeSource(Key(0x11))), Ct)).Key, Ct);
            Expect(await AllAsync(fromVolume, 0, 0xb2), "copy of the volume");
            var lvs = (await _tools.RunAsync(new ToolCommand("lvs", "--noheadings", "-o", "lv_name", thickVg), Ct)).StandardOutput;
            Expect(!lvs.Contains("-clone-", StringComparison.Ordinal), "temporary snapshot removed");
            await ExpectStatus(StatusCode.FailedPrecondition, () => thick.DeleteVolumeAsync(Key(0x11), Ct));
            await thick.DeleteSnapshotAsync(Key(0x11), Key(0x61), Ct);
        });

        await check.RunAsync("thick: expand, then out of space", async () =>
        {
            Expect((await thick.ExpandVolumeAsync(Key(0x12), 128 * MiB, Ct)).SizeBytes == 128 * MiB, "expanded");
            var free = (await thick.GetCapacityAsync(Ct)).AvailableBytes;
            await ExpectStatus(StatusCode.ResourceExhausted, () => thick.CreateVolumeAsync(new CreateVolumeSpec(Key(0x14), free + 4 * MiB), Ct));
        });

        await check.RunAsync("thick: an interrupted create (pending tag) is finished by the retry", async () =>
        {
            await LvmAsync("lvcreate", "-q", "-y", "-n", $"csi-csi-{Key(0x15)}", "-L", "16M", "--addtag", "csi-scst_instance_csi", "--addtag", "csi-scst_volume",
                "--addtag", LvmBackend.PendingTag, thickVg);
            await WriteAsync($"/dev/{thickVg}/csi-csi-{Key(0x15)}", 0, 0xcc);
            Expect(await thick.GetVolumeAsync(Key(0x15), Ct) is null, "pending is not a volume yet");
            await thick.CreateVolumeAsync(new CreateVolumeSpec(Key(0x15), 16 * MiB), Ct);
            Expect(await AllAsync(await thick.AttachAsync(Key(0x15), Ct), 0, 0), "zeroed by the retry");
            Expect(await thick.GetVolumeAsync(Key(0x15), Ct) is not null, "now a volume");
        });

        await check.RunAsync("thick: clean up", async () =>
        {
            foreach (var volume in await thick.ListVolumesAsync(Ct))
            {
                await thick.DetachAsync(volume.Key, Ct);
                await thick.DeleteVolumeAsync(volume.Key, Ct);
            }
            Expect((await thick.ListVolumesAsync(Ct)).Count == 0, "empty");
        });
    }
}

internal sealed class RbdChecks(string conf, string pool, Checks check)
{
    private const long MiB = 1024 * 1024;
    private static readonly CancellationToken Ct = CancellationToken.None;
    private readonly IToolRunner _tools = new ToolRunner(new DriverMetrics(), new ExternalTime(), NullLogger<ToolRunner>.Instance);

    // A new backend object per step, as after an engine restart: nothing is remembered in memory.
    private RbdBackend Backend() => new(new RbdPoolOptions { Name = "ceph", Pool = pool, Conf = conf, Flatten = FlattenPolicy.Never, Timeout = TimeSpan.FromSeconds(120) },
        new ObjectNames("csi"), _tools, LoggerFactory.Create(_ => { }).CreateLogger<RbdBackend>());

    private static string Key(int n) => n.ToString("x16");

    private async Task<int> MappingsAsync(string key) =>
        (await _tools.RunAsync(new ToolCommand("rbd", "-c", conf, "showmapped"), Ct)).StandardOutput.Split('\n').Count(l => l.Contains($"csi-csi-{key}", StringComparison.Ordinal));

    public async Task RunAsync()
    {
        string? device = null;
        await check.RunAsync("rbd: attach maps with krbd; a second attach reuses the mapping", async () =>
        {
            await Backend().CreateVolumeAsync(new CreateVolumeSpec(Key(1), 64 * MiB), Ct);
            device = await Backend().AttachAsync(Key(1), Ct);
            LvmChecksShared.Expect(device.StartsWith("/dev/rbd", StringComparison.Ordinal) && File.Exists(device), device);
            LvmChecksShared.Expect(await Backend().AttachAsync(Key(1), Ct) == device, "same device after a restart");
            LvmChecksShared.Expect(await MappingsAsync(Key(1)) == 1, "one mapping");
        });

        await check.RunAsync("rbd: data through the mapped device reaches snapshots and clones", async () =>
        {
            await LvmChecksShared.WriteAsync(device!, 0, 0x4d);
            await Backend().CreateSnapshotAsync(Key(1), Key(0x51), Ct);
            await Backend().CreateVolumeAsync(new CreateVolumeSpec(Key(2), 0, new FromSnapshotSource(Key(1), Key(0x51))), Ct);
            var clone = await Backend().AttachAsync(Key(2), Ct);
            LvmChecksShared.Expect(clone != device, "another device");
            LvmChecksShared.Expect(await LvmChecksShared.AllAsync(clone, 0, 0x4d), "clone data");
        });

        await check.RunAsync("rbd: a mapped image is not deleted; an open device is not unmapped", async () =>
        {
            await LvmChecksShared.ExpectStatus(StatusCode.FailedPrecondition, () => Backend().DeleteVolumeAsync(Key(2), Ct));
            await using (new FileStream(device!, FileMode.Open, FileAccess.Read, FileShare.ReadWrite))
            {
                await LvmChecksShared.ExpectStatus(StatusCode.FailedPrecondition, () => Backend().DetachAsync(Key(1), Ct));
            }
        });

        await check.RunAsync("rbd: detach unmaps; detach again and delete succeed", async () =>
        {
            await Backend().DetachAsync(Key(1), Ct);
            await Backend().DetachAsync(Key(2), Ct);
            LvmChecksShared.Expect(await MappingsAsync(Key(1)) == 0 && await MappingsAsync(Key(2)) == 0, "no mapping left");
            await Backend().DetachAsync(Key(1), Ct);
            await Backend().DeleteVolumeAsync(Key(2), Ct);
            await Backend().DeleteSnapshotAsync(Key(1), Key(0x51), Ct);
            await Backend().DeleteVolumeAsync(Key(1), Ct);
            LvmChecksShared.Expect((await Backend().ListVolumesAsync(Ct)).Count == 0, "no volume left");
        });
    }
}
