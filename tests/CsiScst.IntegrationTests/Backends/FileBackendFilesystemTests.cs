using System.Security.Cryptography;
using CsiScst.Backends;
using CsiScst.Backends.File;
using CsiScst.Backends.Pools;
using CsiScst.Core.Errors;
using CsiScst.Core.Ids;
using CsiScst.Core.Metrics;
using Grpc.Core;

namespace CsiScst.IntegrationTests.Backends;

/// <summary>
/// The file backend on real filesystems made on loop devices: reflink on XFS (reflink=1) and btrfs, the
/// copy fallback on XFS without reflink, and a tiny ext4 that runs out of space.
/// </summary>
public sealed class FileBackendFilesystemTests
{
    private const string K1 = "0123456789abcdef";
    private const string K2 = "fedcba9876543210";
    private const string K3 = "00000000000000aa";
    private const string S1 = "1111111111111111";
    private const long MiB = 1024 * 1024;

    private static (FileBackend Backend, ListLogger<FileBackend> Log) Backend(string directory, ReflinkMode reflink = ReflinkMode.Auto, double overcommit = 1.0)
    {
        var log = new ListLogger<FileBackend>();
        var options = new FilePoolOptions { Name = "files", Path = directory, Reflink = reflink, Overcommit = overcommit };
        return (new FileBackend(options, new ObjectNames("csi"), new ExternalTime(), log), log);
    }

    private static async Task<byte[]> FillAsync(string path, long offset, int length, int seed)
    {
        var data = new byte[length];
        new Random(seed).NextBytes(data);
        using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Write);
        await RandomAccess.WriteAsync(handle, data, offset);
        RandomAccess.FlushToDisk(handle);
        return SHA256.HashData(data);
    }

    private static async Task<byte[]> HashAsync(string path, long offset, int length)
    {
        var data = new byte[length];
        using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read);
        Assert.Equal(length, await RandomAccess.ReadAsync(handle, data, offset));
        return SHA256.HashData(data);
    }

    private static long FreeBytes(string path) => FileNative.StatFs(path).AvailableBytes;

    public static TheoryData<string, string[]> ReflinkFilesystems => new()
    {
        { "mkfs.xfs", ["-q", "-m", "reflink=1"] },
        { "mkfs.btrfs", ["-q"] },
    };

    [Theory]
    [MemberData(nameof(ReflinkFilesystems))]
    public async Task Snapshots_and_clones_are_reflinks_that_share_extents(string mkfs, string[] arguments)
    {
        var ct = Tools.Timeout();
        await using var fs = await LoopFilesystem.CreateAsync(1024 * MiB, mkfs, arguments, ct);
        var (backend, log) = Backend(Path.Combine(fs.MountPoint, "volumes"));
        Assert.True((await backend.ProbeAsync(ct)).Ready);
        Assert.Equal(1, log.Count("are reflinks"));

        await backend.CreateVolumeAsync(new CreateVolumeSpec(K1, 128 * MiB), ct);
        var volume = await backend.AttachAsync(K1, ct);
        var original = await FillAsync(volume, 0, (int)(64 * MiB), seed: 1);
        var freeBefore = FreeBytes(fs.MountPoint);

        var snapshot = await backend.CreateSnapshotAsync(K1, S1, ct);
        var clone = await backend.CreateVolumeAsync(new CreateVolumeSpec(K2, 256 * MiB, new FromSnapshotSource(K1, S1)), ct);
        var volumeClone = await backend.CreateVolumeAsync(new CreateVolumeSpec(K3, 0, new FromVolumeSource(K1)), ct);

        // Three more views of 64 MiB of data, yet (nearly) no new blocks: the extents are shared.
        Assert.True(freeBefore - FreeBytes(fs.MountPoint) < 8 * MiB, $"free space dropped by {freeBefore - FreeBytes(fs.MountPoint)} bytes");
        Assert.Equal(128 * MiB, snapshot.SizeBytes);
        Assert.Equal(256 * MiB, clone.SizeBytes);
        Assert.Equal(128 * MiB, volumeClone.SizeBytes);

        // Copy on write: overwriting the volume leaves the snapshot and the clones as they were.
        var rewritten = await FillAsync(volume, 0, (int)(64 * MiB), seed: 2);
        Assert.NotEqual(original, rewritten);
        var snapshotPath = Path.Combine(fs.MountPoint, "volumes", "snapshots", $"csi-csi-{K1}-snap-{S1}.img");
        Assert.Equal(original, await HashAsync(snapshotPath, 0, (int)(64 * MiB)));
        Assert.Equal(original, await HashAsync(await backend.AttachAsync(K2, ct), 0, (int)(64 * MiB)));
        Assert.Equal(original, await HashAsync(await backend.AttachAsync(K3, ct), 0, (int)(64 * MiB)));
        Assert.Equal(rewritten, await HashAsync(volume, 0, (int)(64 * MiB)));
        Assert.Equal(0, log.Count("has no reflink"));
        Assert.Equal(1, log.Count("are reflinks"));

        foreach (var key in new[] { K1, K2, K3 })
        {
            await backend.DeleteVolumeAsync(key, ct);
        }
        await backend.DeleteSnapshotAsync(K1, S1, ct);
        Assert.Empty(await backend.ListVolumesAsync(ct));
        Assert.Empty(await backend.ListSnapshotsAsync(ct));
    }

    [Fact]
    public async Task Without_reflink_copies_are_full_and_reflink_always_refuses()
    {
        var ct = Tools.Timeout();
        await using var fs = await LoopFilesystem.CreateAsync(512 * MiB, "mkfs.xfs", ["-q", "-m", "reflink=0"], ct);
        var directory = Path.Combine(fs.MountPoint, "volumes");
        var (backend, log) = Backend(directory);
        await backend.CreateVolumeAsync(new CreateVolumeSpec(K1, 64 * MiB), ct);
        var original = await FillAsync(await backend.AttachAsync(K1, ct), 0, (int)(16 * MiB), seed: 3);
        var freeBefore = FreeBytes(fs.MountPoint);

        await backend.CreateSnapshotAsync(K1, S1, ct);

        Assert.True(freeBefore - FreeBytes(fs.MountPoint) >= 16 * MiB, "a plain copy takes the data's space");
        Assert.Equal(1, log.Count("has no reflink"));
        var snapshotPath = Path.Combine(directory, "snapshots", $"csi-csi-{K1}-snap-{S1}.img");
        Assert.Equal(original, await HashAsync(snapshotPath, 0, (int)(16 * MiB)));

        var (strict, _) = Backend(directory, ReflinkMode.Always);
        var e = await Assert.ThrowsAsync<StatusException>(() => strict.CreateVolumeAsync(new CreateVolumeSpec(K2, 0, new FromSnapshotSource(K1, S1)), ct));
        Assert.Equal(StatusCode.FailedPrecondition, e.Code);
        Assert.Contains(directory, e.Message, StringComparison.Ordinal);
        Assert.Null(await strict.GetVolumeAsync(K2, ct));
        Assert.Empty(Directory.GetFiles(directory, ".*"));
    }

    [Fact]
    public async Task A_tiny_filesystem_gives_resource_exhausted_with_the_numbers()
    {
        var ct = Tools.Timeout();
        await using var fs = await LoopFilesystem.CreateAsync(16 * MiB, "mkfs.ext4", ["-q", "-F", "-m", "0"], ct);
        var directory = Path.Combine(fs.MountPoint, "volumes");
        var (backend, _) = Backend(directory);

        var capacity = await backend.GetCapacityAsync(ct);
        Assert.InRange(capacity.TotalBytes, 8 * MiB, 16 * MiB);
        Assert.InRange(capacity.AvailableBytes, 4 * MiB, capacity.TotalBytes);

        var tooBig = await Assert.ThrowsAsync<StatusException>(() => backend.CreateVolumeAsync(new CreateVolumeSpec(K1, 64 * MiB), ct));
        Assert.Equal(StatusCode.ResourceExhausted, tooBig.Code);
        Assert.Contains($"needs {64 * MiB} bytes", tooBig.Message, StringComparison.Ordinal);
        Assert.Contains($"only {capacity.AvailableBytes} bytes", tooBig.Message, StringComparison.Ordinal);
        Assert.Contains($"{capacity.TotalBytes} bytes", tooBig.Message, StringComparison.Ordinal);

        // Exactly what is left fits; then nothing more does, even though the sparse file holds no data yet.
        var granularity = await backend.GetGranularityAsync(ct);
        var rest = capacity.AvailableBytes / granularity * granularity;
        await backend.CreateVolumeAsync(new CreateVolumeSpec(K1, rest), ct);
        var full = await Assert.ThrowsAsync<StatusException>(() => backend.CreateVolumeAsync(new CreateVolumeSpec(K2, granularity), ct));
        Assert.Equal(StatusCode.ResourceExhausted, full.Code);
        Assert.Contains("promised to our volumes", full.Message, StringComparison.Ordinal);
        var expand = await Assert.ThrowsAsync<StatusException>(() => backend.ExpandVolumeAsync(K1, rest + 4 * MiB, ct));
        Assert.Equal(StatusCode.ResourceExhausted, expand.Code);
        Assert.True((await backend.GetCapacityAsync(ct)).AvailableBytes < granularity);

        await backend.DeleteVolumeAsync(K1, ct);
        Assert.Equal(capacity.AvailableBytes, (await backend.GetCapacityAsync(ct)).AvailableBytes);
    }

    [Fact]
    public async Task Running_out_of_space_in_a_copy_is_resource_exhausted_and_leaves_nothing_behind()
    {
        var ct = Tools.Timeout();
        await using var fs = await LoopFilesystem.CreateAsync(16 * MiB, "mkfs.ext4", ["-q", "-F", "-m", "0"], ct);
        var directory = Path.Combine(fs.MountPoint, "volumes");
        // Overcommitted: the accounting lets the snapshot start, the filesystem then runs out.
        var (backend, _) = Backend(directory, overcommit: 10);
        await backend.CreateVolumeAsync(new CreateVolumeSpec(K1, 64 * MiB), ct);
        var volume = await backend.AttachAsync(K1, ct);
        var written = await FillAsync(volume, 0, (int)(FreeBytes(fs.MountPoint) * 3 / 4), seed: 4);

        var e = await Assert.ThrowsAsync<StatusException>(() => backend.CreateSnapshotAsync(K1, S1, ct));

        Assert.Equal(StatusCode.ResourceExhausted, e.Code);
        Assert.Contains("ran out of space", e.Message, StringComparison.Ordinal);
        Assert.Contains("free of", e.Message, StringComparison.Ordinal);
        Assert.Null(await backend.GetSnapshotAsync(K1, S1, ct));
        Assert.Empty(Directory.GetFiles(Path.Combine(directory, "snapshots")));
        Assert.Empty(Directory.GetFiles(directory, ".*"));

        // The pool keeps working: delete the volume and the space comes back.
        await backend.DeleteVolumeAsync(K1, ct);
        Assert.True((await backend.ProbeAsync(ct)).Ready);
        Assert.NotEmpty(written);
    }
}
