using Csi.V1;
using CsiScst.Core.Ids;
using CsiScst.Csi.Controller;
using Grpc.Core;
using CsiScst.Csi;

namespace CsiScst.Tests.Controller;

public sealed class SnapshotTests : ControllerTestBase
{
    [Fact]
    public async Task Snapshots_are_created_listed_got_and_deleted()
    {
        var onA = (await Client.CreateVolumeAsync(Create("pvc-sa", 0, 0, ("targetNode", "node-a")))).Volume;
        var onB = (await Client.CreateVolumeAsync(Create("pvc-sb", 0, 0, ("targetNode", "node-b")))).Volume;
        var snaps = new List<Snapshot>();
        for (var i = 0; i < 3; i++)
        {
            snaps.Add((await Client.CreateSnapshotAsync(new CreateSnapshotRequest { Name = $"snap-a{i}", SourceVolumeId = onA.VolumeId })).Snapshot);
        }
        snaps.Add((await Client.CreateSnapshotAsync(new CreateSnapshotRequest { Name = "snap-b", SourceVolumeId = onB.VolumeId })).Snapshot);
        Assert.All(snaps, s => Assert.True(s.ReadyToUse && s.CreationTime is not null && SnapshotId.TryParse(s.SnapshotId, out _)));

        // Same name, same source: the same snapshot. Same name, other source (on another node): ALREADY_EXISTS.
        var again = await Client.CreateSnapshotAsync(new CreateSnapshotRequest { Name = "snap-a0", SourceVolumeId = onA.VolumeId });
        Assert.Equal(snaps[0].SnapshotId, again.Snapshot.SnapshotId);
        await Fails(StatusCode.AlreadyExists, async () => await Client.CreateSnapshotAsync(new CreateSnapshotRequest { Name = "snap-a0", SourceVolumeId = onB.VolumeId }));

        var byId = await Client.ListSnapshotsAsync(new ListSnapshotsRequest { SnapshotId = snaps[1].SnapshotId });
        Assert.Equal(snaps[1].SnapshotId, byId.Entries.Single().Snapshot.SnapshotId);
        var bySource = await Client.ListSnapshotsAsync(new ListSnapshotsRequest { SourceVolumeId = onA.VolumeId });
        Assert.Equal(3, bySource.Entries.Count);
        Assert.Empty((await Client.ListSnapshotsAsync(new ListSnapshotsRequest { SnapshotId = "none-exist-id" })).Entries);
        Assert.Empty((await Client.ListSnapshotsAsync(new ListSnapshotsRequest { SourceVolumeId = "v1:csi:node-a:file:files:0000000000000000" })).Entries);

        var first = await Client.ListSnapshotsAsync(new ListSnapshotsRequest { MaxEntries = 2 });
        Assert.Equal(2, first.Entries.Count);
        var rest = await Client.ListSnapshotsAsync(new ListSnapshotsRequest { StartingToken = first.NextToken });
        Assert.Equal(snaps.Select(s => s.SnapshotId).Order(), first.Entries.Concat(rest.Entries).Select(e => e.Snapshot.SnapshotId).Order());

        var got = await Client.GetSnapshotAsync(new GetSnapshotRequest { SnapshotId = snaps[3].SnapshotId });
        Assert.Equal(onB.VolumeId, got.Snapshot.SourceVolumeId);

        await Client.DeleteSnapshotAsync(new DeleteSnapshotRequest { SnapshotId = snaps[3].SnapshotId });
        await Client.DeleteSnapshotAsync(new DeleteSnapshotRequest { SnapshotId = snaps[3].SnapshotId });
        await Client.DeleteSnapshotAsync(new DeleteSnapshotRequest { SnapshotId = "reallyfakesnapshotid" });
        await Fails(StatusCode.NotFound, async () => await Client.GetSnapshotAsync(new GetSnapshotRequest { SnapshotId = snaps[3].SnapshotId }));
        Assert.Empty(B.Snapshots);
    }

    [Fact]
    public async Task Volumes_from_snapshots_and_clones_stay_on_the_source_node()
    {
        var source = (await Client.CreateVolumeAsync(Create("pvc-src", 0, 0, ("targetNode", "node-a")))).Volume;
        var snap = (await Client.CreateSnapshotAsync(new CreateSnapshotRequest { Name = "snap-src", SourceVolumeId = source.VolumeId })).Snapshot;

        var restore = Create("pvc-restored");
        restore.VolumeContentSource = new VolumeContentSource { Snapshot = new VolumeContentSource.Types.SnapshotSource { SnapshotId = snap.SnapshotId } };
        var restored = (await Client.CreateVolumeAsync(restore)).Volume;
        Assert.Contains(":node-a:", restored.VolumeId);
        Assert.Equal("snapshot", restored.VolumeContext[VolumeContextKeys.ContentSource]);
        Assert.Equal(snap.SnapshotId, restored.ContentSource.Snapshot.SnapshotId);

        var clone = Create("pvc-clone");
        clone.VolumeContentSource = new VolumeContentSource { Volume = new VolumeContentSource.Types.VolumeSource { VolumeId = source.VolumeId } };
        var cloned = (await Client.CreateVolumeAsync(clone)).Volume;
        Assert.Contains(":node-a:", cloned.VolumeId);
        Assert.Equal("volume", cloned.VolumeContext[VolumeContextKeys.ContentSource]);

        var elsewhere = Create("pvc-clone-b", 0, 0, ("targetNode", "node-b"));
        elsewhere.VolumeContentSource = clone.VolumeContentSource;
        var e = await Fails(StatusCode.InvalidArgument, async () => await Client.CreateVolumeAsync(elsewhere));
        Assert.Contains("node-a", e.Status.Detail);

        var missing = Create("pvc-from-nothing");
        missing.VolumeContentSource = new VolumeContentSource { Snapshot = new VolumeContentSource.Types.SnapshotSource { SnapshotId = "non-existing-snapshot-id" } };
        await Fails(StatusCode.NotFound, async () => await Client.CreateVolumeAsync(missing));
        missing.VolumeContentSource = new VolumeContentSource { Volume = new VolumeContentSource.Types.VolumeSource { VolumeId = "v1:csi:node-a:file:files:0000000000000000" } };
        await Fails(StatusCode.NotFound, async () => await Client.CreateVolumeAsync(missing));

        // A copy is never smaller than its source.
        var small = Create("pvc-small-clone", MiB, MiB);
        small.VolumeContentSource = clone.VolumeContentSource;
        await Fails(StatusCode.OutOfRange, async () => await Client.CreateVolumeAsync(small));
    }
}
