using CsiScst.Core.Errors;
using CsiScst.Core.Ids;
using CsiScst.Engine;
using CsiScst.Engine.State;
using CsiScst.Engine.Volumes;
using CsiScst.Targets;
using Grpc.Core;
using Microsoft.Extensions.Logging.Abstractions;

namespace CsiScst.Tests.Engine;

public sealed class StateStoreTests : IDisposable
{
    // tmpfs when there is one: the 10,000-file test measures the index, not this machine's disk.
    private readonly string _directory = Path.Combine(Directory.Exists("/dev/shm") ? "/dev/shm" : Path.GetTempPath(), "csi-scst-state-" + Guid.NewGuid().ToString("N")[..12]);

    public void Dispose()
    {
        if (Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true);
        }
    }

    private StateStore Store() => new(new EngineOptions { StateDirectory = _directory }, NullLogger<StateStore>.Instance);

    private static VolumeRecord Record(string key, VolumePhase phase = VolumePhase.Ready) => new()
    {
        Key = key,
        Name = "pvc-" + key,
        Pool = "files",
        Backend = "file",
        Phase = phase,
        RequiredBytes = 1 << 20,
        CapacityBytes = 1 << 20,
        BlockSize = 4096,
        WriteCache = WriteCacheMode.WriteBack,
        ThinProvisioned = true,
        Source = new SourceRecord(Names.Hash("src"), Names.Hash("snap")),
        Chap = new ChapRecord("csi-unit-" + key + "-in", "a-secret-of-16ch", "csi-unit-" + key + "-out", "another-secret-1"),
        Parameters = new Dictionary<string, string> { ["rbdFlatten"] = "always" },
        Access = [new AccessRecord("node-a/iqn.2026-01.test:a", "iqn.2026-01.test:a", true, true)],
        BackingPath = "/var/lib/csi-scst/volumes/csi-unit-" + key + ".img",
    };

    [Fact]
    public async Task A_saved_record_reloads_with_every_field_in_a_0600_file_with_a_version()
    {
        var store = Store();
        await store.LoadAsync(CancellationToken.None);
        var key = Names.Hash("one");
        var saved = await store.SaveVolumeAsync(Record(key), CancellationToken.None);
        saved = await store.SaveVolumeAsync(saved with { Phase = VolumePhase.Ready }, CancellationToken.None);
        Assert.Equal(2, saved.Generation);

        var path = store.VolumePath(key);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(store.Directory));
        var text = await File.ReadAllTextAsync(path);
        Assert.Contains("\"version\": 1", text);
        Assert.Contains("\"phase\": \"Ready\"", text);
        Assert.Contains("\"writeCache\": \"WriteBack\"", text);

        var reloaded = Store();
        await reloaded.LoadAsync(CancellationToken.None);
        var record = reloaded.GetVolume(key)!;
        Assert.Equal(saved with { Parameters = record.Parameters, Access = record.Access }, record);
        Assert.Equal(saved.Parameters, record.Parameters);
        Assert.Equal(saved.Access, record.Access);
    }

    [Fact]
    public async Task Temp_files_of_interrupted_writes_are_removed_and_the_previous_file_stays_the_truth()
    {
        var store = Store();
        await store.LoadAsync(CancellationToken.None);
        var key = Names.Hash("two");
        await store.SaveVolumeAsync(Record(key), CancellationToken.None);
        // What AtomicFile leaves when killed between creating its temp file and the rename.
        var temp = Path.Combine(store.VolumesDirectory, $".{key}.json.4242.{Guid.NewGuid():N}.tmp");
        await File.WriteAllTextAsync(temp, "{ \"version\": 1, \"key\": \"" + key + "\", \"pha");

        var reloaded = Store();
        await reloaded.LoadAsync(CancellationToken.None);

        Assert.False(File.Exists(temp));
        Assert.Equal(VolumePhase.Ready, reloaded.GetVolume(key)!.Phase);
        Assert.Empty(reloaded.QuarantinedVolumeKeys);
    }

    [Fact]
    public async Task An_unreadable_file_is_quarantined_not_deleted_and_calls_on_it_fail_naming_the_file()
    {
        var store = Store();
        await store.LoadAsync(CancellationToken.None);
        var good = Names.Hash("good");
        var torn = Names.Hash("torn");
        var newer = Names.Hash("newer");
        var wrongKey = Names.Hash("wrong");
        await store.SaveVolumeAsync(Record(good), CancellationToken.None);
        await File.WriteAllTextAsync(store.VolumePath(torn), "{ \"version\": 1, \"key\": \"");
        await store.SaveVolumeAsync(Record(newer), CancellationToken.None);
        await File.WriteAllTextAsync(store.VolumePath(newer), (await File.ReadAllTextAsync(store.VolumePath(newer))).Replace("\"version\": 1", "\"version\": 9"));
        await store.SaveVolumeAsync(Record(good), CancellationToken.None);
        File.Copy(store.VolumePath(good), store.VolumePath(wrongKey));
        await File.WriteAllTextAsync(Path.Combine(store.VolumesDirectory, "README.txt"), "operator notes");

        var reloaded = Store();
        await reloaded.LoadAsync(CancellationToken.None);

        Assert.NotNull(reloaded.GetVolume(good));
        Assert.Equal(new[] { newer, torn, wrongKey }.Order(StringComparer.Ordinal), reloaded.QuarantinedVolumeKeys.Order(StringComparer.Ordinal));
        foreach (var key in new[] { torn, newer, wrongKey })
        {
            Assert.True(File.Exists(reloaded.VolumePath(key)));
            var e = Assert.Throws<StatusException>(() => reloaded.GetVolume(key));
            Assert.Equal(StatusCode.Internal, e.Code);
            Assert.Contains(reloaded.VolumePath(key), e.Message);
        }
        Assert.Contains("newer csi-scst", Assert.Throws<StatusException>(() => reloaded.GetVolume(newer)).Message);
        Assert.Single(reloaded.Volumes());
        Assert.True(File.Exists(Path.Combine(reloaded.VolumesDirectory, "README.txt")));
    }

    [Fact]
    public async Task Ten_thousand_volumes_load_and_page_in_key_order_each_exactly_once_even_when_volumes_change_between_pages()
    {
        // Written as plain files (no 10,000 fsyncs in a unit test); loading indexes them like any restart.
        var volumes = Path.Combine(_directory, "volumes");
        Directory.CreateDirectory(volumes);
        var keys = Enumerable.Range(0, 10_000).Select(i => Names.Hash("v" + i)).ToList();
        foreach (var key in keys)
        {
            await File.WriteAllBytesAsync(Path.Combine(volumes, key + ".json"),
                System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(Record(key), StateJsonContext.Default.VolumeRecord));
        }
        var store = Store();
        await store.LoadAsync(CancellationToken.None);
        Assert.Equal(10_000, store.VolumeCount);

        var seen = new List<string>();
        string? after = null;
        var pages = 0;
        do
        {
            var (items, next) = store.ListVolumes(after, 100);
            Assert.True(items.Count <= 100);
            seen.AddRange(items.Select(i => i.Key));
            if (pages == 3)
            {
                // A volume already listed is deleted and one sorting before the cursor is added: neither shifts the pages.
                store.DeleteVolume(seen[0]);
                await store.SaveVolumeAsync(Record("0000000000000000"), CancellationToken.None);
            }
            after = next;
            pages++;
        }
        while (after is not null);

        Assert.Equal(keys.Order(StringComparer.Ordinal), seen);
        Assert.Equal(100, pages);
    }

    [Fact]
    public void Page_tokens_round_trip_and_foreign_tokens_are_aborted()
    {
        var key = Names.Hash("k");
        Assert.Equal(key, PageToken.Decode(PageToken.Encode(key)));
        Assert.Null(PageToken.Decode(""));
        foreach (var bad in new[] { "not-a-token", "%%%", Convert.ToBase64String("p1:XYZ"u8), Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes("p9:" + key)) })
        {
            var e = Assert.Throws<StatusException>(() => PageToken.Decode(bad));
            Assert.Equal(StatusCode.Aborted, e.Code);
        }
    }
}
