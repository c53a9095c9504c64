using CsiScst.Backends;
using CsiScst.Backends.File;
using CsiScst.Backends.Pools;
using CsiScst.Core.Errors;
using CsiScst.Core.Ids;
using CsiScst.Core.Metrics;
using Grpc.Core;

namespace CsiScst.Tests.Backends;

/// <summary>
/// The file backend on a real directory of the host filesystem (ext4 here: no reflink, so the sparse
/// copy path). Reflink, tiny filesystems and ENOSPC are in the integration tests (loop devices).
/// </summary>
public sealed class FileBackendTests : IDisposable
{
    private const string K1 = "0123456789abcdef";
    private const string K2 = "fedcba9876543210";
    private const string K3 = "00000000000000aa";
    private const string S1 = "1111111111111111";
    private const string S2 = "2222222222222222";

    private readonly ScratchDirectory _scratch = new();
    private readonly ListLogger<FileBackend> _log = new();
    private readonly ObjectNames _names = new("csi");

    public void Dispose() => _scratch.Dispose();

    private string PoolDir => Path.Combine(_scratch.Path, "pool");

    private FileBackend Backend(Action<FilePoolOptionsBuilder>? configure = null, string instance = "csi")
    {
        var builder = new FilePoolOptionsBuilder { Path = PoolDir };
        configure?.Invoke(builder);
        var options = new FilePoolOptions
        {
            Name = "files",
            Path = builder.Path,
            Reflink = builder.Reflink,
            Overcommit = builder.Overcommit,
            Create = builder.Create,
        };
        return new FileBackend(options, new ObjectNames(instance), new ExternalTime(), _log);
    }

    internal sealed class FilePoolOptionsBuilder
    {
        public required string Path { get; set; }
        public ReflinkMode Reflink { get; set; } = ReflinkMode.Auto;
        public double Overcommit { get; set; } = 1.0;
        public bool Create { get; set; } = true;
    }

    // A guard against hangs, not a timing assertion.
    private static CancellationToken Ct => new CancellationTokenSource(TimeSpan.FromMinutes(2)).Token;

    private static async Task WriteAsync(string path, long offset, byte[] data)
    {
        using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Write);
        await RandomAccess.WriteAsync(handle, data, offset, Ct);
    }

    private static async Task<byte[]> ReadAsync(string path, long offset, int length)
    {
        using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read);
        var buffer = new byte[length];
        var read = await RandomAccess.ReadAsync(handle, buffer, offset, Ct);
        Assert.Equal(length, read);
        return buffer;
    }

    private static byte[] Pattern(byte seed, int length = 4096) => Enumerable.Range(0, length).Select(i => (byte)(seed + i)).ToArray();

    [Fact]
    public async Task Creates_a_sparse_private_file_named_after_the_key()
    {
        var backend = Backend();
        var volume = await backend.CreateVolumeAsync(new CreateVolumeSpec(K1, 64 * 1024 * 1024), Ct);

        Assert.Equal(new BackendVolume(K1, 64 * 1024 * 1024), volume);
        var path = Path.Combine(PoolDir, "csi-csi-0123456789abcdef.img");
        Assert.Equal(path, await backend.AttachAsync(K1, Ct));
        var info = new FileInfo(path);
        Assert.Equal(64 * 1024 * 1024, info.Length);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        Assert.True(FileNative.Stat(path)!.Value.AllocatedBytes < 1024 * 1024, "a new volume must be sparse");
        Assert.True(backend.IsFileBacked);
        Assert.Equal("file", backend.Kind);
        Assert.Equal("files", backend.PoolName);
    }

    [Fact]
    public async Task Sizes_are_rounded_up_to_the_granularity()
    {
        var backend = Backend();
        var granularity = await backend.GetGranularityAsync(Ct);
        Assert.True(granularity >= 4096 && granularity % 4096 == 0);

        var volume = await backend.CreateVolumeAsync(new CreateVolumeSpec(K1, 1000), Ct);
        Assert.Equal(granularity, volume.SizeBytes);
        Assert.Equal(granularity, new FileInfo(await backend.AttachAsync(K1, Ct)).Length);
    }

    [Fact]
    public async Task Create_is_idempotent_and_returns_the_existing_volume_as_it_is()
    {
        var backend = Backend();
        await backend.CreateVolumeAsync(new CreateVolumeSpec(K1, 1024 * 1024), Ct);
        await WriteAsync(await backend.AttachAsync(K1, Ct), 0, Pattern(7));

        var again = await backend.CreateVolumeAsync(new CreateVolumeSpec(K1, 2 * 1024 * 1024), Ct);

        Assert.Equal(1024 * 1024, again.SizeBytes);
        Assert.Equal(Pattern(7), await ReadAsync(await backend.AttachAsync(K1, Ct), 0, 4096));
    }

    [Fact]
    public async Task Concurrent_creates_of_one_key_make_one_file()
    {
        var backend = Backend();
        var results = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => backend.CreateVolumeAsync(new CreateVolumeSpec(K1, 8192), Ct)));
        Assert.All(results, r => Assert.Equal(8192, r.SizeBytes));
        Assert.Single(Directory.GetFiles(PoolDir));
    }

    [Fact]
    public async Task Get_and_list_see_only_this_instances_volumes()
    {
        var backend = Backend();
        await backend.CreateVolumeAsync(new CreateVolumeSpec(K2, 8192), Ct);
        await backend.CreateVolumeAsync(new CreateVolumeSpec(K1, 4096), Ct);
        // Another instance's volume, a file with a bad key and an unrelated file in the same directory.
        await Backend(instance: "other").CreateVolumeAsync(new CreateVolumeSpec(K3, 4096), Ct);
        await File.WriteAllTextAsync(Path.Combine(PoolDir, "csi-csi-nothex.img"), "x", Ct);
        await File.WriteAllTextAsync(Path.Combine(PoolDir, "notes.txt"), "x", Ct);

        var list = await backend.ListVolumesAsync(Ct);

        Assert.Equal([new BackendVolume(K1, 4096), new BackendVolume(K2, 8192)], list);
        Assert.Equal(new BackendVolume(K2, 8192), await backend.GetVolumeAsync(K2, Ct));
        Assert.Null(await backend.GetVolumeAsync(K3, Ct));
        Assert.True(File.Exists(Path.Combine(PoolDir, "csi-other-00000000000000aa.img")));
    }

    [Fact]
    public async Task Expand_grows_keeps_data_and_never_shrinks()
    {
        var backend = Backend();
        await backend.CreateVolumeAsync(new CreateVolumeSpec(K1, 1024 * 1024), Ct);
        var path = await backend.AttachAsync(K1, Ct);
        await WriteAsync(path, 4096, Pattern(3));

        var grown = await backend.ExpandVolumeAsync(K1, 3 * 1024 * 1024 + 1, Ct);
        Assert.Equal(3 * 1024 * 1024 + await backend.GetGranularityAsync(Ct), grown.SizeBytes);
        Assert.Equal(grown.SizeBytes, new FileInfo(path).Length);
        Assert.Equal(Pattern(3), await ReadAsync(path, 4096, 4096));

        var same = await backend.ExpandVolumeAsync(K1, 4096, Ct);
        Assert.Equal(grown.SizeBytes, same.SizeBytes);
        Assert.Equal(grown.SizeBytes, new FileInfo(path).Length);
    }

    [Fact]
    public async Task Expand_of_a_missing_volume_is_not_found()
    {
        var e = await Assert.ThrowsAsync<StatusException>(() => Backend().ExpandVolumeAsync(K1, 8192, Ct));
        Assert.Equal(StatusCode.NotFound, e.Code);
        Assert.Contains(K1, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Snapshot_keeps_the_content_at_the_time_it_was_taken()
    {
        var backend = Backend();
        await backend.CreateVolumeAsync(new CreateVolumeSpec(K1, 1024 * 1024), Ct);
        var path = await backend.AttachAsync(K1, Ct);
        await WriteAsync(path, 8192, Pattern(1));

        var snapshot = await backend.CreateSnapshotAsync(K1, S1, Ct);
        await WriteAsync(path, 8192, Pattern(2));

        Assert.Equal(K1, snapshot.VolumeKey);
        Assert.Equal(S1, snapshot.SnapshotKey);
        Assert.Equal(1024 * 1024, snapshot.SizeBytes);
        Assert.True(snapshot.ReadyToUse);
        Assert.True(snapshot.Created > DateTimeOffset.UtcNow.AddMinutes(-5) && snapshot.Created <= DateTimeOffset.UtcNow.AddMinutes(1));
        var snapshotPath = Path.Combine(PoolDir, "snapshots", "csi-csi-0123456789abcdef-snap-1111111111111111.img");
        Assert.Equal(Pattern(1), await ReadAsync(snapshotPath, 8192, 4096));
        Assert.Equal(snapshot, await backend.GetSnapshotAsync(K1, S1, Ct));
        Assert.Equal(snapshot, await backend.CreateSnapshotAsync(K1, S1, Ct));
    }

    [Fact]
    public async Task Snapshot_of_a_missing_volume_is_not_found()
    {
        var e = await Assert.ThrowsAsync<StatusException>(() => Backend().CreateSnapshotAsync(K1, S1, Ct));
        Assert.Equal(StatusCode.NotFound, e.Code);
        Assert.Contains(K1, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Sparse_copies_keep_holes()
    {
        var backend = Backend();
        await backend.CreateVolumeAsync(new CreateVolumeSpec(K1, 256 * 1024 * 1024), Ct);
        var path = await backend.AttachAsync(K1, Ct);
        await WriteAsync(path, 0, Pattern(5, 65536));
        await WriteAsync(path, 200 * 1024 * 1024, Pattern(6, 65536));

        await backend.CreateSnapshotAsync(K1, S1, Ct);
        await backend.CreateVolumeAsync(new CreateVolumeSpec(K2, 0, new FromSnapshotSource(K1, S1)), Ct);

        var snapshotPath = Path.Combine(PoolDir, "snapshots", "csi-csi-0123456789abcdef-snap-1111111111111111.img");
        foreach (var copy in new[] { snapshotPath, await backend.AttachAsync(K2, Ct) })
        {
            Assert.Equal(256 * 1024 * 1024, new FileInfo(copy).Length);
            Assert.True(FileNative.Stat(copy)!.Value.AllocatedBytes < 8 * 1024 * 1024, $"{copy} must stay sparse");
            Assert.Equal(Pattern(5, 65536), await ReadAsync(copy, 0, 65536));
            Assert.Equal(Pattern(6, 65536), await ReadAsync(copy, 200 * 1024 * 1024, 65536));
            Assert.Equal(new byte[65536], await ReadAsync(copy, 100 * 1024 * 1024, 65536));
        }
    }

    [Fact]
    public async Task Clones_from_a_snapshot_and_from_a_volume_are_independent_copies()
    {
        var backend = Backend();
        await backend.CreateVolumeAsync(new CreateVolumeSpec(K1, 1024 * 1024), Ct);
        var source = await backend.AttachAsync(K1, Ct);
        await WriteAsync(source, 0, Pattern(9));
        await backend.CreateSnapshotAsync(K1, S1, Ct);

        var fromSnapshot = await backend.CreateVolumeAsync(new CreateVolumeSpec(K2, 2 * 1024 * 1024, new FromSnapshotSource(K1, S1)), Ct);
        var fromVolume = await backend.CreateVolumeAsync(new CreateVolumeSpec(K3, 0, new FromVolumeSource(K1)), Ct);
        await WriteAsync(source, 0, Pattern(10));

        Assert.Equal(new BackendVolume(K2, 2 * 1024 * 1024, new FromSnapshotSource(K1, S1)), fromSnapshot);
        Assert.Equal(new BackendVolume(K3, 1024 * 1024, new FromVolumeSource(K1)), fromVolume);
        Assert.Equal(2 * 1024 * 1024, new FileInfo(await backend.AttachAsync(K2, Ct)).Length);
        Assert.Equal(Pattern(9), await ReadAsync(await backend.AttachAsync(K2, Ct), 0, 4096));
        Assert.Equal(Pattern(9), await ReadAsync(await backend.AttachAsync(K3, Ct), 0, 4096));
    }

    [Fact]
    public async Task Clone_smaller_than_its_source_is_out_of_range()
    {
        var backend = Backend();
        await backend.CreateVolumeAsync(new CreateVolumeSpec(K1, 1024 * 1024), Ct);
        var e = await Assert.ThrowsAsync<StatusException>(() => backend.CreateVolumeAsync(new CreateVolumeSpec(K2, 4096, new FromVolumeSource(K1)), Ct));
        Assert.Equal(StatusCode.OutOfRange, e.Code);
        Assert.Contains("1048576", e.Message, StringComparison.Ordinal);
        Assert.Null(await backend.GetVolumeAsync(K2, Ct));
    }

    [Fact]
    public async Task Clone_of_a_missing_source_is_not_found()
    {
        var backend = Backend();
        var fromSnapshot = await Assert.ThrowsAsync<StatusException>(() => backend.CreateVolumeAsync(new CreateVolumeSpec(K2, 4096, new FromSnapshotSource(K1, S1)), Ct));
        Assert.Equal(StatusCode.NotFound, fromSnapshot.Code);
        Assert.Contains(S1, fromSnapshot.Message, StringComparison.Ordinal);
        var fromVolume = await Assert.ThrowsAsync<StatusException>(() => backend.CreateVolumeAsync(new CreateVolumeSpec(K2, 4096, new FromVolumeSource(K1)), Ct));
        Assert.Equal(StatusCode.NotFound, fromVolume.Code);
        Assert.Empty(Directory.GetFiles(PoolDir));
    }

    [Fact]
    public async Task A_volume_with_snapshots_may_be_deleted_and_its_snapshot_still_restores()
    {
        var backend = Backend();
        await backend.CreateVolumeAsync(new CreateVolumeSpec(K1, 1024 * 1024), Ct);
        await WriteAsync(await backend.AttachAsync(K1, Ct), 0, Pattern(4));
        await backend.CreateSnapshotAsync(K1, S1, Ct);

        await backend.DeleteVolumeAsync(K1, Ct);

        Assert.Null(await backend.GetVolumeAsync(K1, Ct));
        Assert.NotNull(await backend.GetSnapshotAsync(K1, S1, Ct));
        await backend.CreateVolumeAsync(new CreateVolumeSpec(K2, 0, new FromSnapshotSource(K1, S1)), Ct);
        Assert.Equal(Pattern(4), await ReadAsync(await backend.AttachAsync(K2, Ct), 0, 4096));
    }

    [Fact]
    public async Task Deletes_of_what_is_gone_succeed()
    {
        var backend = Backend();
        await backend.DeleteVolumeAsync(K1, Ct);
        await backend.DeleteSnapshotAsync(K1, S1, Ct);
        await backend.CreateVolumeAsync(new CreateVolumeSpec(K1, 4096), Ct);
        await backend.CreateSnapshotAsync(K1, S1, Ct);
        await backend.DeleteSnapshotAsync(K1, S1, Ct);
        await backend.DeleteSnapshotAsync(K1, S1, Ct);
        await backend.DeleteVolumeAsync(K1, Ct);
        await backend.DeleteVolumeAsync(K1, Ct);
        Assert.Empty(await backend.ListVolumesAsync(Ct));
        Assert.Empty(await backend.ListSnapshotsAsync(Ct));
    }

    [Fact]
    public async Task List_snapshots_recovers_both_keys_and_ignores_foreign_files()
    {
        var backend = Backend();
        await backend.CreateVolumeAsync(new CreateVolumeSpec(K1, 4096), Ct);
        await backend.CreateVolumeAsync(new CreateVolumeSpec(K2, 8192), Ct);
        await backend.CreateSnapshotAsync(K1, S2, Ct);
        await backend.CreateSnapshotAsync(K2, S1, Ct);
        await File.WriteAllTextAsync(Path.Combine(PoolDir, "snapshots", "csi-csi-0123456789abcdef-snap-xyz.img"), "x", Ct);
        await File.WriteAllTextAsync(Path.Combine(PoolDir, "snapshots", "csi-other-0123456789abcdef-snap-1111111111111111.img"), "x", Ct);

        var list = await backend.ListSnapshotsAsync(Ct);

        Assert.Equal([(K2, S1, 8192L), (K1, S2, 4096L)], list.Select(s => (s.VolumeKey, s.SnapshotKey, s.SizeBytes)));
    }

    [Fact]
    public async Task Leftovers_of_an_interrupted_attempt_are_removed_and_the_retry_succeeds()
    {
        Directory.CreateDirectory(Path.Combine(PoolDir, "snapshots"));
        // What a kill -9 in the middle of a create and of a snapshot copy leaves behind.
        var volumeTemp = Path.Combine(PoolDir, ".csi-csi-0123456789abcdef.img.tmp");
        var snapshotTemp = Path.Combine(PoolDir, "snapshots", ".csi-csi-0123456789abcdef-snap-1111111111111111.img.tmp");
        var foreignTemp = Path.Combine(PoolDir, ".csi-other-0123456789abcdef.img.tmp");
        await File.WriteAllTextAsync(volumeTemp, "half", Ct);
        await File.WriteAllTextAsync(snapshotTemp, "half", Ct);
        await File.WriteAllTextAsync(foreignTemp, "theirs", Ct);

        var backend = Backend();
        Assert.True((await backend.ProbeAsync(Ct)).Ready);

        Assert.False(File.Exists(volumeTemp));
        Assert.False(File.Exists(snapshotTemp));
        Assert.True(File.Exists(foreignTemp), "another instance's files are never touched");
        Assert.Equal(1, _log.Count("Removed 2 unfinished temp files"));
        Assert.Empty(await backend.ListVolumesAsync(Ct));

        // A leftover that appears later (the same key's earlier attempt) is replaced by the retry.
        await File.WriteAllTextAsync(volumeTemp, "half", Ct);
        var volume = await backend.CreateVolumeAsync(new CreateVolumeSpec(K1, 8192), Ct);
        Assert.Equal(8192, volume.SizeBytes);
        Assert.False(File.Exists(volumeTemp));
    }

    [Fact]
    public async Task A_volume_larger_than_the_filesystem_is_resource_exhausted_with_the_numbers()
    {
        var backend = Backend();
        var capacity = await backend.GetCapacityAsync(Ct);
        Assert.True(capacity.TotalBytes > 0);
        Assert.InRange(capacity.AvailableBytes, 1, capacity.TotalBytes);
        Assert.Equal(capacity.AvailableBytes, capacity.MaximumVolumeBytes);
        var tooBig = capacity.TotalBytes + 1024L * 1024 * 1024 * 1024;

        var e = await Assert.ThrowsAsync<StatusException>(() => backend.CreateVolumeAsync(new CreateVolumeSpec(K1, tooBig), Ct));

        Assert.Equal(StatusCode.ResourceExhausted, e.Code);
        Assert.Contains($"needs {tooBig} bytes", e.Message, StringComparison.Ordinal);
        Assert.Contains("are available", e.Message, StringComparison.Ordinal);
        Assert.Contains("total", e.Message, StringComparison.Ordinal);
        Assert.Null(await backend.GetVolumeAsync(K1, Ct));
        Assert.Empty(Directory.GetFiles(PoolDir));
    }

    [Fact]
    public async Task Overcommit_lets_sparse_volumes_exceed_the_filesystem()
    {
        var plain = Backend();
        var total = (await plain.GetCapacityAsync(Ct)).TotalBytes;
        var size = Aligned(total + 1024L * 1024 * 1024);
        await Assert.ThrowsAsync<StatusException>(() => plain.CreateVolumeAsync(new CreateVolumeSpec(K1, size), Ct));

        // The disk here is shared with other files; a ratio of 10 leaves room for one volume of its size.
        var overcommitted = Backend(o => o.Overcommit = 10.0);
        var volume = await overcommitted.CreateVolumeAsync(new CreateVolumeSpec(K1, size), Ct);
        Assert.Equal(size, volume.SizeBytes);
        await overcommitted.DeleteVolumeAsync(K1, Ct);

        static long Aligned(long bytes) => bytes / 4096 * 4096;
    }

    [Fact]
    public async Task Without_reflink_the_pool_says_so_once_and_reflink_always_refuses_copies()
    {
        var backend = Backend();
        Assert.True((await backend.ProbeAsync(Ct)).Ready);
        await backend.CreateVolumeAsync(new CreateVolumeSpec(K1, 8192), Ct);
        await backend.CreateSnapshotAsync(K1, S1, Ct);
        await backend.CreateSnapshotAsync(K1, S2, Ct);
        await backend.CreateVolumeAsync(new CreateVolumeSpec(K2, 8192, new FromVolumeSource(K1)), Ct);
        Assert.Equal(1, _log.Count("has no reflink"));

        var strict = Backend(o => o.Reflink = ReflinkMode.Always);
        var e = await Assert.ThrowsAsync<StatusException>(() => strict.CreateVolumeAsync(new CreateVolumeSpec(K3, 8192, new FromVolumeSource(K1)), Ct));
        Assert.Equal(StatusCode.FailedPrecondition, e.Code);
        Assert.Contains("reflink=always", e.Message, StringComparison.Ordinal);
        Assert.Null(await strict.GetVolumeAsync(K3, Ct));
        Assert.Empty(Directory.GetFiles(PoolDir, ".*"));
    }

    [Theory]
    [InlineData("../../etc/passw")]
    [InlineData("0123456789ABCDEF")]
    [InlineData("0123")]
    [InlineData("")]
    public async Task Keys_that_are_not_16_hex_digits_are_refused(string key)
    {
        var backend = Backend();
        var e = await Assert.ThrowsAsync<StatusException>(() => backend.CreateVolumeAsync(new CreateVolumeSpec(key, 4096), Ct));
        Assert.Equal(StatusCode.InvalidArgument, e.Code);
        Assert.Contains($"'{key}'", e.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<StatusException>(() => backend.DeleteVolumeAsync(key, Ct));
        await Assert.ThrowsAsync<StatusException>(() => backend.CreateSnapshotAsync(K1, key, Ct));
        await Assert.ThrowsAsync<StatusException>(() => backend.CreateVolumeAsync(new CreateVolumeSpec(K1, 4096, new FromSnapshotSource(key, S1)), Ct));
    }

    [Fact]
    public async Task Attach_of_a_missing_volume_is_not_found_and_detach_is_a_no_op()
    {
        var backend = Backend();
        var e = await Assert.ThrowsAsync<StatusException>(() => backend.AttachAsync(K1, Ct));
        Assert.Equal(StatusCode.NotFound, e.Code);
        await backend.DetachAsync(K1, Ct);
    }

    [Fact]
    public async Task A_missing_directory_with_create_false_is_not_ready_and_unavailable()
    {
        var backend = Backend(o => o.Create = false);

        var health = await backend.ProbeAsync(Ct);
        Assert.False(health.Ready);
        Assert.Contains(PoolDir, health.Reason, StringComparison.Ordinal);
        Assert.Contains("create=false", health.Reason, StringComparison.Ordinal);
        var e = await Assert.ThrowsAsync<StatusException>(() => backend.CreateVolumeAsync(new CreateVolumeSpec(K1, 4096), Ct));
        Assert.Equal(StatusCode.Unavailable, e.Code);
        Assert.False(Directory.Exists(PoolDir));

        // Once the directory is there (the filesystem got mounted) the same backend works.
        Directory.CreateDirectory(PoolDir);
        Assert.True((await backend.ProbeAsync(Ct)).Ready);
        await backend.CreateVolumeAsync(new CreateVolumeSpec(K1, 4096), Ct);
    }

    [Fact]
    public async Task A_pool_directory_removed_under_the_backend_is_unavailable()
    {
        var backend = Backend();
        await backend.CreateVolumeAsync(new CreateVolumeSpec(K1, 4096), Ct);
        Directory.Delete(PoolDir, recursive: true);

        var e = await Assert.ThrowsAsync<StatusException>(() => backend.CreateVolumeAsync(new CreateVolumeSpec(K2, 4096), Ct));
        Assert.Equal(StatusCode.Unavailable, e.Code);
        Assert.Contains(PoolDir, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_relative_path_is_refused()
    {
        var e = Assert.Throws<StatusException>(() => Backend(o => o.Path = "relative/dir"));
        Assert.Equal(StatusCode.InvalidArgument, e.Code);
    }
}
