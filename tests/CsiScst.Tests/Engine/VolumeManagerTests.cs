using CsiScst.Core.Errors;
using CsiScst.Engine.State;
using CsiScst.Engine.V1;
using CsiScst.Engine.Volumes;
using Google.Protobuf;
using Grpc.Core;

namespace CsiScst.Tests.Engine;

/// <summary>The engine core's rules (idempotency, ALREADY_EXISTS, rounding, access modes, ordering) with doubles for pool and target.</summary>
public sealed class VolumeManagerTests : IDisposable
{
    private const string NodeA = "node-a/iqn.2026-01.test:a";
    private const string IqnA = "iqn.2026-01.test:a";
    private const string NodeB = "node-b/iqn.2026-01.test:b";
    private const string IqnB = "iqn.2026-01.test:b";

    private readonly EngineCore _core = new(new MemoryBackend("files"), new MemoryBackend("other"));

    public void Dispose() => _core.Dispose();

    private EnsureVolumeRequest Request(string name = "pvc-1", long bytes = 10L << 20) => new()
    {
        Key = _core.Names.VolumeKey(name),
        Name = name,
        Pool = "files",
        RequiredBytes = bytes,
    };

    private static async Task<StatusCode> CodeOf(Func<Task> call) => (await Assert.ThrowsAsync<StatusException>(call)).Code;

    [Fact]
    public async Task Ensure_volume_writes_the_record_creates_attaches_exports_and_a_retry_returns_the_same_volume()
    {
        await _core.LoadAsync();
        var request = Request(bytes: (10L << 20) + 1);
        var info = await _core.Volumes.EnsureVolumeAsync(request, CancellationToken.None);

        Assert.Equal(11L << 20, info.CapacityBytes); // rounded up to the 1 MiB granularity
        Assert.Equal(_core.Names.TargetIqn(request.Key), info.TargetIqn);
        Assert.Equal("CS" + request.Key, info.Serial);
        Assert.Equal(["10.0.0.5:3260"], info.Portals);
        Assert.Equal(["create " + request.Key, "attach " + request.Key], _core.Pool.Calls);
        var export = _core.Engine.Exports[request.Key];
        Assert.Equal("/dev/fake/" + request.Key, export.BackingPath);
        Assert.Empty(export.Initiators);
        Assert.Equal(VolumePhase.Ready, _core.Store.GetVolume(request.Key)!.Phase);

        var again = await _core.Volumes.EnsureVolumeAsync(request, CancellationToken.None);
        Assert.Equal(info, again);
        Assert.Equal(2, _core.Pool.Calls.Count);
    }

    public static TheoryData<string> Incompatible() =>
    [
        "bigger", "limit-below", "pool", "source", "block-size", "write-back", "thin", "chap", "parameters", "name",
    ];

    [Theory]
    [MemberData(nameof(Incompatible))]
    public async Task The_same_key_with_an_incompatible_request_is_already_exists(string change)
    {
        await _core.LoadAsync();
        var original = Request();
        original.Options = new ExportOptions
        {
            Chap = new ChapCredentials { User = "csi-unit-user-in", Secret = "original-secret-1" },
        };
        await _core.Volumes.EnsureVolumeAsync(original, CancellationToken.None);
        var source = Request("pvc-source");
        await _core.Volumes.EnsureVolumeAsync(source, CancellationToken.None);

        var changed = original.Clone();
        switch (change)
        {
            case "bigger": changed.RequiredBytes = 20L << 20; break;
            case "limit-below": changed.RequiredBytes = 1L << 20; changed.LimitBytes = 5L << 20; break;
            case "pool": changed.Pool = "other"; break;
            case "source": changed.Source = new ContentSource { Volume = new ContentSource.Types.FromVolume { VolumeKey = source.Key } }; break;
            case "block-size": changed.Options.BlockSize = 4096; break;
            case "write-back": changed.Options.WriteCache = WriteCache.WriteBack; break;
            case "thin": changed.Options.ThinProvisioned = true; break;
            case "chap": changed.Options.Chap.Secret = "another-secret-2"; break;
            case "parameters": changed.Parameters["rbdFlatten"] = "always"; break;
            case "name": changed.Name = "pvc-hash-collision"; break;
        }
        var e = await Assert.ThrowsAsync<StatusException>(() => _core.Volumes.EnsureVolumeAsync(changed, CancellationToken.None));
        Assert.Equal(StatusCode.AlreadyExists, e.Code);
        Assert.Contains(original.Key, e.Message);
        Assert.DoesNotContain("secret-", e.Message);
    }

    [Fact]
    public async Task A_compatible_retry_with_a_smaller_request_or_a_limit_above_the_capacity_is_ok()
    {
        await _core.LoadAsync();
        var original = Request();
        var created = await _core.Volumes.EnsureVolumeAsync(original, CancellationToken.None);
        var smaller = original.Clone();
        smaller.RequiredBytes = 1L << 20;
        smaller.LimitBytes = 64L << 20;
        Assert.Equal(created.CapacityBytes, (await _core.Volumes.EnsureVolumeAsync(smaller, CancellationToken.None)).CapacityBytes);
    }

    [Theory]
    [InlineData(10L << 20, 0, 1L << 20, 10L << 20)]
    [InlineData((10L << 20) + 1, 0, 1L << 20, 11L << 20)]
    [InlineData(1, 0, 4096, 4096)]
    [InlineData(0, 0, 4096, 1L << 30)] // no size asked: the default
    [InlineData(0, 100L << 20, 1L << 20, 100L << 20)] // no size, a limit below the default
    [InlineData(5000, 8192, 4096, 8192)]
    public void Sizes_round_up_to_the_granularity(long required, long limit, long granularity, long expected) =>
        Assert.Equal(expected, VolumeManager.PlanSize(required, limit, granularity, 1L << 30));

    [Theory]
    [InlineData(5000, 5000, 4096)]
    [InlineData((10L << 20) + 1, 10L << 20, 1L << 20)]
    public void A_limit_the_rounding_cannot_meet_is_out_of_range(long required, long limit, long granularity)
    {
        var e = Assert.Throws<StatusException>(() => VolumeManager.PlanSize(required, limit, granularity, 1L << 30));
        Assert.Equal(StatusCode.OutOfRange, e.Code);
        Assert.Contains(limit.ToString(), e.Message);
    }

    [Fact]
    public async Task Bad_requests_name_the_bad_value()
    {
        await _core.LoadAsync();
        var unknownPool = Request();
        unknownPool.Pool = "nope";
        var e = await Assert.ThrowsAsync<StatusException>(() => _core.Volumes.EnsureVolumeAsync(unknownPool, CancellationToken.None));
        Assert.Equal(StatusCode.InvalidArgument, e.Code);
        Assert.Contains("'nope'", e.Message);
        Assert.Contains("files", e.Message);

        var badKey = Request();
        badKey.Key = "NOT-HEX";
        Assert.Contains("NOT-HEX", (await Assert.ThrowsAsync<StatusException>(() => _core.Volumes.EnsureVolumeAsync(badKey, CancellationToken.None))).Message);

        var blockSize = Request();
        blockSize.Options = new ExportOptions { BlockSize = 1024 };
        Assert.Equal(StatusCode.InvalidArgument, await CodeOf(() => _core.Volumes.EnsureVolumeAsync(blockSize, CancellationToken.None)));

        var range = Request();
        range.LimitBytes = 1L << 20;
        Assert.Equal(StatusCode.OutOfRange, await CodeOf(() => _core.Volumes.EnsureVolumeAsync(range, CancellationToken.None)));

        var shortSecret = Request();
        shortSecret.Options = new ExportOptions { Chap = new ChapCredentials { User = "u", Secret = "short" } };
        var chap = await Assert.ThrowsAsync<StatusException>(() => _core.Volumes.EnsureVolumeAsync(shortSecret, CancellationToken.None));
        Assert.Equal(StatusCode.InvalidArgument, chap.Code);
        Assert.DoesNotContain("short", chap.Message.Replace("12-255", "", StringComparison.Ordinal));
        Assert.Empty(_core.Store.Volumes());
    }

    [Fact]
    public async Task Volume_from_a_snapshot_or_a_clone_needs_a_ready_source_in_the_same_pool_and_grows_to_its_size()
    {
        await _core.LoadAsync();
        var source = await _core.Volumes.EnsureVolumeAsync(Request("pvc-src", 30L << 20), CancellationToken.None);
        var snapshotKey = _core.Names.SnapshotKey("snap-1");

        var fromMissing = Request("pvc-from-snap", 10L << 20);
        fromMissing.Source = new ContentSource { Snapshot = new ContentSource.Types.FromSnapshot { VolumeKey = source.Key, SnapshotKey = snapshotKey } };
        Assert.Equal(StatusCode.NotFound, await CodeOf(() => _core.Volumes.EnsureVolumeAsync(fromMissing, CancellationToken.None)));
        Assert.Null(_core.Store.GetVolume(fromMissing.Key));

        await _core.Volumes.EnsureSnapshotAsync(new EnsureSnapshotRequest { VolumeKey = source.Key, Pool = "files", SnapshotKey = snapshotKey, Name = "snap-1" }, CancellationToken.None);
        var restored = await _core.Volumes.EnsureVolumeAsync(fromMissing, CancellationToken.None);
        Assert.Equal(30L << 20, restored.CapacityBytes);
        Assert.Equal(snapshotKey, restored.Source.Snapshot.SnapshotKey);
        Assert.IsType<CsiScst.Backends.FromSnapshotSource>(_core.Pool.Volumes[fromMissing.Key].Source);

        var crossPool = Request("pvc-clone");
        crossPool.Pool = "other";
        crossPool.Source = new ContentSource { Volume = new ContentSource.Types.FromVolume { VolumeKey = source.Key } };
        Assert.Equal(StatusCode.InvalidArgument, await CodeOf(() => _core.Volumes.EnsureVolumeAsync(crossPool, CancellationToken.None)));
    }

    [Fact]
    public async Task Exclusive_access_names_the_node_that_has_it_and_a_read_only_mismatch_is_already_exists()
    {
        await _core.LoadAsync();
        var request = Request();
        await _core.Volumes.EnsureVolumeAsync(request, CancellationToken.None);
        var access = new EnsureAccessRequest { Key = request.Key, Pool = "files", NodeId = NodeA, InitiatorIqn = IqnA, Exclusive = true };
        await _core.Volumes.EnsureAccessAsync(access, CancellationToken.None);
        await _core.Volumes.EnsureAccessAsync(access, CancellationToken.None);
        Assert.Single(_core.Store.GetVolume(request.Key)!.Access);
        Assert.Equal(3, _core.Engine.Calls.Count(c => c == "ensure " + request.Key)); // create + two converges

        var other = new EnsureAccessRequest { Key = request.Key, Pool = "files", NodeId = NodeB, InitiatorIqn = IqnB, Exclusive = true };
        var e = await Assert.ThrowsAsync<StatusException>(() => _core.Volumes.EnsureAccessAsync(other, CancellationToken.None));
        Assert.Equal(StatusCode.FailedPrecondition, e.Code);
        Assert.Contains(NodeA, e.Message);
        // Even a multi-node request is refused while an exclusive publish holds it.
        other.Exclusive = false;
        Assert.Equal(StatusCode.FailedPrecondition, await CodeOf(() => _core.Volumes.EnsureAccessAsync(other, CancellationToken.None)));

        var readOnly = access.Clone();
        readOnly.ReadOnly = true;
        Assert.Equal(StatusCode.AlreadyExists, await CodeOf(() => _core.Volumes.EnsureAccessAsync(readOnly, CancellationToken.None)));

        Assert.Equal(StatusCode.NotFound, await CodeOf(() => _core.Volumes.EnsureAccessAsync(
            new EnsureAccessRequest { Key = _core.Names.VolumeKey("missing"), Pool = "files", NodeId = NodeA, InitiatorIqn = IqnA }, CancellationToken.None)));
        Assert.Equal(StatusCode.InvalidArgument, await CodeOf(() => _core.Volumes.EnsureAccessAsync(
            new EnsureAccessRequest { Key = request.Key, Pool = "files", NodeId = NodeA, InitiatorIqn = "not an iqn" }, CancellationToken.None)));
    }

    [Fact]
    public async Task Multi_node_access_lists_every_initiator_and_revoke_removes_one_and_always_converges()
    {
        await _core.LoadAsync();
        var request = Request();
        await _core.Volumes.EnsureVolumeAsync(request, CancellationToken.None);
        await _core.Volumes.EnsureAccessAsync(new EnsureAccessRequest { Key = request.Key, Pool = "files", NodeId = NodeA, InitiatorIqn = IqnA, ReadOnly = true }, CancellationToken.None);
        await _core.Volumes.EnsureAccessAsync(new EnsureAccessRequest { Key = request.Key, Pool = "files", NodeId = NodeB, InitiatorIqn = IqnB }, CancellationToken.None);
        Assert.Equal([IqnA, IqnB], _core.Engine.Exports[request.Key].Initiators.Select(i => i.InitiatorIqn));
        Assert.True(_core.Engine.Exports[request.Key].Initiators[0].ReadOnly);

        await _core.Volumes.RevokeAccessAsync(new RevokeAccessRequest { Key = request.Key, Pool = "files", NodeId = NodeA }, CancellationToken.None);
        Assert.Equal([IqnB], _core.Engine.Exports[request.Key].Initiators.Select(i => i.InitiatorIqn));

        // A retry changes no record but still converges the target (a crash may have come between the two).
        var calls = _core.Engine.Calls.Count;
        var generation = _core.Store.GetVolume(request.Key)!.Generation;
        await _core.Volumes.RevokeAccessAsync(new RevokeAccessRequest { Key = request.Key, Pool = "files", NodeId = NodeA }, CancellationToken.None);
        Assert.Equal(calls + 1, _core.Engine.Calls.Count);
        Assert.Equal(generation, _core.Store.GetVolume(request.Key)!.Generation);

        await _core.Volumes.RevokeAccessAsync(new RevokeAccessRequest { Key = _core.Names.VolumeKey("missing"), NodeId = NodeA }, CancellationToken.None);
    }

    [Fact]
    public async Task Engine_rules_are_checked_before_anything_is_created()
    {
        await _core.LoadAsync();
        _core.Engine.Rule = (key, chap, _) => chap is not null && chap.User != "csi-" + key ? "wrong CHAP user" : null;
        var request = Request();
        request.Options = new ExportOptions { Chap = new ChapCredentials { User = "alice", Secret = "a-secret-of-16ch" } };
        Assert.Equal(StatusCode.InvalidArgument, await CodeOf(() => _core.Volumes.EnsureVolumeAsync(request, CancellationToken.None)));
        Assert.Empty(_core.Store.Volumes());
        Assert.Empty(_core.Pool.Calls);
        Assert.Empty(_core.Engine.Calls);
    }

    [Fact]
    public async Task Delete_refuses_a_published_volume_is_ok_for_unknown_keys_and_removes_every_piece_in_order()
    {
        await _core.LoadAsync();
        var request = Request();
        await _core.Volumes.EnsureVolumeAsync(request, CancellationToken.None);
        await _core.Volumes.EnsureAccessAsync(new EnsureAccessRequest { Key = request.Key, Pool = "files", NodeId = NodeA, InitiatorIqn = IqnA }, CancellationToken.None);
        var e = await Assert.ThrowsAsync<StatusException>(() => _core.Volumes.DeleteVolumeAsync(new DeleteVolumeRequest { Key = request.Key, Pool = "files" }, CancellationToken.None));
        Assert.Equal(StatusCode.FailedPrecondition, e.Code);
        Assert.Contains(NodeA, e.Message);

        await _core.Volumes.RevokeAccessAsync(new RevokeAccessRequest { Key = request.Key, Pool = "files", NodeId = NodeA }, CancellationToken.None);
        _core.Engine.Calls.Clear();
        _core.Pool.Calls.Clear();
        await _core.Volumes.DeleteVolumeAsync(new DeleteVolumeRequest { Key = request.Key, Pool = "files" }, CancellationToken.None);
        Assert.Equal(["remove " + request.Key], _core.Engine.Calls);
        Assert.Equal(["detach " + request.Key, "delete " + request.Key], _core.Pool.Calls);
        Assert.Null(_core.Store.GetVolume(request.Key));
        Assert.False(File.Exists(_core.Store.VolumePath(request.Key)));

        await _core.Volumes.DeleteVolumeAsync(new DeleteVolumeRequest { Key = request.Key, Pool = "files" }, CancellationToken.None);
        // A key in another pool is another volume id: not ours to delete.
        var kept = Request("pvc-kept");
        await _core.Volumes.EnsureVolumeAsync(kept, CancellationToken.None);
        await _core.Volumes.DeleteVolumeAsync(new DeleteVolumeRequest { Key = kept.Key, Pool = "other" }, CancellationToken.None);
        Assert.NotNull(_core.Store.GetVolume(kept.Key));
    }

    [Fact]
    public async Task A_backend_refusing_the_delete_leaves_the_volume_ready_and_exported()
    {
        await _core.LoadAsync();
        var request = Request();
        await _core.Volumes.EnsureVolumeAsync(request, CancellationToken.None);
        await _core.Volumes.EnsureSnapshotAsync(new EnsureSnapshotRequest { VolumeKey = request.Key, Pool = "files", SnapshotKey = _core.Names.SnapshotKey("s"), Name = "s" }, CancellationToken.None);

        var e = await Assert.ThrowsAsync<StatusException>(() => _core.Volumes.DeleteVolumeAsync(new DeleteVolumeRequest { Key = request.Key, Pool = "files" }, CancellationToken.None));

        Assert.Equal(StatusCode.FailedPrecondition, e.Code);
        Assert.Equal(VolumePhase.Ready, _core.Store.GetVolume(request.Key)!.Phase);
        Assert.True(_core.Engine.Exports.ContainsKey(request.Key));
    }

    [Fact]
    public async Task Half_finished_operations_are_completed_by_a_retry()
    {
        await _core.LoadAsync();
        // As a crash right after the record was written leaves it.
        var request = Request();
        await _core.Store.SaveVolumeAsync(new VolumeRecord
        {
            Key = request.Key, Name = request.Name, Pool = "files", Backend = "file", Phase = VolumePhase.Creating,
            RequiredBytes = request.RequiredBytes, CapacityBytes = 10L << 20, BlockSize = 512,
        }, CancellationToken.None);
        var info = await _core.Volumes.EnsureVolumeAsync(request, CancellationToken.None);
        Assert.False(info.Condition.Abnormal);
        Assert.True(_core.Engine.Exports.ContainsKey(request.Key));

        // A deletion interrupted before its end, then the same name created again.
        await _core.Store.SaveVolumeAsync(_core.Store.GetVolume(request.Key)! with { Phase = VolumePhase.Deleting }, CancellationToken.None);
        Assert.True((await _core.Volumes.GetVolumeAsync(new GetVolumeRequest { Key = request.Key }, CancellationToken.None)).Condition.Abnormal);
        _core.Pool.Calls.Clear();
        await _core.Volumes.EnsureVolumeAsync(request, CancellationToken.None);
        Assert.Equal(["detach " + request.Key, "delete " + request.Key, "create " + request.Key, "attach " + request.Key], _core.Pool.Calls);
        Assert.Equal(VolumePhase.Ready, _core.Store.GetVolume(request.Key)!.Phase);
    }

    [Fact]
    public async Task Expand_grows_the_backend_resyncs_the_export_and_is_ok_when_already_large_enough()
    {
        await _core.LoadAsync();
        var request = Request();
        await _core.Volumes.EnsureVolumeAsync(request, CancellationToken.None);
        Assert.Equal(10L << 20, await _core.Volumes.ExpandVolumeAsync(new ExpandVolumeRequest { Key = request.Key, RequiredBytes = 5L << 20 }, CancellationToken.None));
        Assert.DoesNotContain("resync " + request.Key, _core.Engine.Calls);

        var grown = await _core.Volumes.ExpandVolumeAsync(new ExpandVolumeRequest { Key = request.Key, RequiredBytes = (20L << 20) + 1 }, CancellationToken.None);
        Assert.Equal(21L << 20, grown);
        Assert.Contains("resync " + request.Key, _core.Engine.Calls);
        Assert.Equal(21L << 20, _core.Store.GetVolume(request.Key)!.CapacityBytes);
        Assert.Equal(StatusCode.OutOfRange, await CodeOf(() => _core.Volumes.ExpandVolumeAsync(
            new ExpandVolumeRequest { Key = request.Key, RequiredBytes = (30L << 20) + 1, LimitBytes = 30L << 20 }, CancellationToken.None)));
        Assert.Equal(StatusCode.NotFound, await CodeOf(() => _core.Volumes.ExpandVolumeAsync(
            new ExpandVolumeRequest { Key = _core.Names.VolumeKey("missing"), RequiredBytes = 1 }, CancellationToken.None)));
    }

    [Fact]
    public async Task Snapshots_are_idempotent_conflict_across_volumes_and_list_with_filters_and_pages()
    {
        await _core.LoadAsync();
        var a = await _core.Volumes.EnsureVolumeAsync(Request("pvc-a"), CancellationToken.None);
        var b = await _core.Volumes.EnsureVolumeAsync(Request("pvc-b"), CancellationToken.None);
        var keys = new List<string>();
        for (var i = 0; i < 5; i++)
        {
            var key = _core.Names.SnapshotKey("snap-" + i);
            var request = new EnsureSnapshotRequest { VolumeKey = i < 3 ? a.Key : b.Key, Pool = "files", SnapshotKey = key, Name = "snap-" + i };
            var snapshot = await _core.Volumes.EnsureSnapshotAsync(request, CancellationToken.None);
            Assert.True(snapshot.ReadyToUse);
            Assert.Equal(snapshot, await _core.Volumes.EnsureSnapshotAsync(request, CancellationToken.None));
            keys.Add(key);
        }
        var conflict = new EnsureSnapshotRequest { VolumeKey = b.Key, Pool = "files", SnapshotKey = keys[0], Name = "snap-0" };
        Assert.Equal(StatusCode.AlreadyExists, await CodeOf(() => _core.Volumes.EnsureSnapshotAsync(conflict, CancellationToken.None)));

        var ofA = new List<string>();
        var token = "";
        do
        {
            var page = _core.Volumes.ListSnapshots(new ListSnapshotsRequest { VolumeKey = a.Key, MaxEntries = 2, StartingToken = token });
            ofA.AddRange(page.Snapshots.Select(s => s.SnapshotKey));
            token = page.NextToken;
        }
        while (token.Length > 0);
        Assert.Equal(keys.Take(3).Order(StringComparer.Ordinal), ofA);
        Assert.Single(_core.Volumes.ListSnapshots(new ListSnapshotsRequest { SnapshotKey = keys[4] }).Snapshots);
        Assert.Empty(_core.Volumes.ListSnapshots(new ListSnapshotsRequest { SnapshotKey = keys[4], VolumeKey = a.Key }).Snapshots);

        await _core.Volumes.DeleteSnapshotAsync(new DeleteSnapshotRequest { SnapshotKey = keys[0] }, CancellationToken.None);
        await _core.Volumes.DeleteSnapshotAsync(new DeleteSnapshotRequest { SnapshotKey = keys[0] }, CancellationToken.None);
        Assert.Equal(4, _core.Volumes.ListSnapshots(new ListSnapshotsRequest()).Snapshots.Count);
    }

    [Fact]
    public async Task No_answer_carries_a_chap_secret()
    {
        await _core.LoadAsync();
        var request = Request();
        request.Options = new ExportOptions
        {
            Chap = new ChapCredentials { User = "csi-in", Secret = "TopSecret-Initiator", MutualUser = "csi-out", MutualSecret = "TopSecret-Target" },
        };
        var info = await _core.Volumes.EnsureVolumeAsync(request, CancellationToken.None);
        info = await _core.Volumes.EnsureAccessAsync(new EnsureAccessRequest { Key = request.Key, Pool = "files", NodeId = NodeA, InitiatorIqn = IqnA }, CancellationToken.None);
        var text = JsonFormatter.Default.Format(info) + JsonFormatter.Default.Format(_core.Volumes.ListVolumes(new ListVolumesRequest()));
        Assert.True(info.ChapEnabled && info.MutualChapEnabled);
        Assert.DoesNotContain("TopSecret", text);
        // The target gets them: reconcile must be able to restore CHAP.
        Assert.Equal("TopSecret-Initiator", _core.Engine.Exports[request.Key].Chap!.Secret);
        Assert.DoesNotContain("TopSecret", _core.Engine.Exports[request.Key].Chap!.ToString());
    }
}
