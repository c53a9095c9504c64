using System.Diagnostics;
using Csi.V1;
using CsiScst.Csi.Controller;
using Grpc.Core;
using static CsiScst.IntegrationTests.CsiController.ControllerCluster;
using CsiScst.Csi;

namespace CsiScst.IntegrationTests.CsiController;

/// <summary>
/// The real controller process against two real `csi-scst target` processes (tgt engine, file pools on
/// loop-mounted ext4), over gRPC with mutual TLS; libiscsi as the initiator where the export is checked.
/// </summary>
[Collection("controller-cluster")]
public sealed class ControllerEndToEndTests : IClassFixture<ControllerCluster>
{
    private readonly ControllerCluster _cluster;

    public ControllerEndToEndTests(ControllerCluster cluster)
    {
        _cluster = cluster;
    }

    private global::Csi.V1.Controller.ControllerClient Client => _cluster.Client;

    private static (int Code, string Output) Run(string tool, params string[] arguments)
    {
        var start = new ProcessStartInfo(tool) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEnd() + process.StandardError.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, output);
    }

    [Fact]
    public async Task A_volume_goes_to_the_node_with_most_free_space_and_only_the_published_initiator_sees_its_serial()
    {
        var volume = (await Client.CreateVolumeAsync(Create("e2e-placed"))).Volume;
        Assert.Contains(":storage-b:file:files:", volume.VolumeId);
        Assert.Equal(16 * MiB, volume.CapacityBytes);
        var serial = volume.VolumeContext[VolumeContextKeys.Serial];

        var publish = await Client.ControllerPublishVolumeAsync(new ControllerPublishVolumeRequest { VolumeId = volume.VolumeId, NodeId = NodeX, VolumeCapability = BlockWriter });
        var iqn = publish.PublishContext[VolumeContextKeys.TargetIqn];
        var portal = publish.PublishContext[VolumeContextKeys.Portals];
        Assert.Equal($"127.0.0.1:{_cluster.B.PortalPort}", portal);
        Assert.Contains(iqn, _cluster.B.TgtTargets());
        var url = $"iscsi://{portal}/{iqn}/{publish.PublishContext[VolumeContextKeys.Lun]}";

        var seen = Run("iscsi-inq", "-i", InitiatorA, "-e", "1", "-c", "128", url);
        Assert.True(seen.Code == 0, seen.Output);
        Assert.Contains(serial, seen.Output);
        var refused = Run("iscsi-inq", "-i", InitiatorB, "-e", "1", "-c", "128", url);
        Assert.NotEqual(0, refused.Code);

        await Client.ControllerUnpublishVolumeAsync(new ControllerUnpublishVolumeRequest { VolumeId = volume.VolumeId, NodeId = NodeX });
        Assert.NotEqual(0, Run("iscsi-inq", "-i", InitiatorA, "-e", "1", "-c", "128", url).Code);
        await Client.DeleteVolumeAsync(new DeleteVolumeRequest { VolumeId = volume.VolumeId });
        _cluster.AssertNothingLeft();
    }

    [Fact]
    public async Task Lists_page_across_both_engines_snapshots_restore_on_their_node_and_everything_is_cleaned_up()
    {
        var ids = new List<string>();
        foreach (var node in new[] { "storage-a", "storage-b" })
        {
            for (var i = 0; i < 2; i++)
            {
                ids.Add((await Client.CreateVolumeAsync(Create($"e2e-list-{node}-{i}", 8 * MiB, ("targetNode", node)))).Volume.VolumeId);
            }
        }
        await Client.ControllerPublishVolumeAsync(new ControllerPublishVolumeRequest { VolumeId = ids[0], NodeId = NodeX, VolumeCapability = BlockWriter });

        var seen = new List<global::Csi.V1.ListVolumesResponse.Types.Entry>();
        var token = "";
        do
        {
            var page = await Client.ListVolumesAsync(new ListVolumesRequest { MaxEntries = 3, StartingToken = token });
            Assert.True(page.Entries.Count <= 3);
            seen.AddRange(page.Entries);
            token = page.NextToken;
        }
        while (token.Length > 0);
        Assert.Equal(ids.Order(), seen.Select(e => e.Volume.VolumeId).Order());
        Assert.Equal(NodeX, seen.Single(e => e.Volume.VolumeId == ids[0]).Status.PublishedNodeIds.Single());
        await Assert.ThrowsAsync<RpcException>(async () => await Client.ListVolumesAsync(new ListVolumesRequest { StartingToken = "invalid-token" }));

        var got = await Client.ControllerGetVolumeAsync(new ControllerGetVolumeRequest { VolumeId = ids[0] });
        Assert.False(got.Status.VolumeCondition.Abnormal);

        var snapshot = (await Client.CreateSnapshotAsync(new CreateSnapshotRequest { Name = "e2e-snap", SourceVolumeId = ids[0] })).Snapshot;
        Assert.True(snapshot.ReadyToUse);
        var clash = await Assert.ThrowsAsync<RpcException>(async () => await Client.CreateSnapshotAsync(new CreateSnapshotRequest { Name = "e2e-snap", SourceVolumeId = ids[2] }));
        Assert.Equal(StatusCode.AlreadyExists, clash.StatusCode);
        Assert.Equal(snapshot.SnapshotId, (await Client.GetSnapshotAsync(new GetSnapshotRequest { SnapshotId = snapshot.SnapshotId })).Snapshot.SnapshotId);
        Assert.Single((await Client.ListSnapshotsAsync(new ListSnapshotsRequest { SourceVolumeId = ids[0] })).Entries);

        var restore = Create("e2e-restored", 8 * MiB);
        restore.VolumeContentSource = new VolumeContentSource { Snapshot = new() { SnapshotId = snapshot.SnapshotId } };
        var restored = (await Client.CreateVolumeAsync(restore)).Volume;
        Assert.Contains(":storage-a:", restored.VolumeId);
        var clone = Create("e2e-clone-elsewhere", 8 * MiB, ("targetNode", "storage-b"));
        clone.VolumeContentSource = new VolumeContentSource { Volume = new() { VolumeId = ids[0] } };
        var elsewhere = await Assert.ThrowsAsync<RpcException>(async () => await Client.CreateVolumeAsync(clone));
        Assert.Equal(StatusCode.InvalidArgument, elsewhere.StatusCode);

        var grown = await Client.ControllerExpandVolumeAsync(new ControllerExpandVolumeRequest
        {
            VolumeId = ids[3], CapacityRange = new CapacityRange { RequiredBytes = 24 * MiB }, VolumeCapability = BlockWriter,
        });
        Assert.True(grown.CapacityBytes >= 24 * MiB);
        Assert.True(grown.NodeExpansionRequired);

        var capacity = await Client.GetCapacityAsync(new GetCapacityRequest { Parameters = { ["pool"] = "files" } });
        Assert.True(capacity.AvailableCapacity > 0);

        await Client.ControllerUnpublishVolumeAsync(new ControllerUnpublishVolumeRequest { VolumeId = ids[0] });
        await Client.DeleteVolumeAsync(new DeleteVolumeRequest { VolumeId = restored.VolumeId });
        foreach (var id in ids)
        {
            await Client.DeleteVolumeAsync(new DeleteVolumeRequest { VolumeId = id });
        }
        // File-pool snapshots are full copies: they outlive their source and stay listed until deleted.
        Assert.Equal(snapshot.SnapshotId, (await Client.GetSnapshotAsync(new GetSnapshotRequest { SnapshotId = snapshot.SnapshotId })).Snapshot.SnapshotId);
        await Client.DeleteSnapshotAsync(new DeleteSnapshotRequest { SnapshotId = snapshot.SnapshotId });
        _cluster.AssertNothingLeft();
    }

    [Fact]
    public async Task Many_creates_at_once_and_duplicate_names_at_once_give_exactly_one_volume_each()
    {
        var created = await Task.WhenAll(Enumerable.Range(0, 8).Select(i => Client.CreateVolumeAsync(Create($"e2e-par-{i}", 4 * MiB)).ResponseAsync));
        Assert.Equal(8, created.Select(c => c.Volume.VolumeId).Distinct().Count());

        var duplicates = await Task.WhenAll(Enumerable.Range(0, 6).Select(async _ =>
        {
            try
            {
                return (await Client.CreateVolumeAsync(Create("e2e-dup", 4 * MiB))).Volume.VolumeId;
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.Aborted)
            {
                return null;
            }
        }));
        var winner = Assert.Single(duplicates.OfType<string>().Distinct());
        var all = await Client.ListVolumesAsync(new ListVolumesRequest());
        Assert.Equal(9, all.Entries.Count);
        Assert.Single(all.Entries, e => e.Volume.VolumeId == winner);

        foreach (var id in created.Select(c => c.Volume.VolumeId).Append(winner))
        {
            await Client.DeleteVolumeAsync(new DeleteVolumeRequest { VolumeId = id });
        }
        _cluster.AssertNothingLeft();
    }

    [Fact]
    public async Task Metrics_of_the_controller_count_calls_to_each_engine()
    {
        var volume = (await Client.CreateVolumeAsync(Create("e2e-metrics", 4 * MiB, ("targetNode", "storage-a")))).Volume;
        await Client.DeleteVolumeAsync(new DeleteVolumeRequest { VolumeId = volume.VolumeId });
        using var http = new HttpClient();
        var text = await http.GetStringAsync($"http://127.0.0.1:{_cluster.MetricsPort}/metrics");
        Assert.Matches("csi_scst_controller_engine_calls_total\\{node=\"storage-a\",method=\"EnsureVolume\",code=\"OK\"\\} [1-9]", text);
        Assert.Matches("csi_scst_controller_engine_calls_total\\{node=\"storage-a\",method=\"DeleteVolume\",code=\"OK\"\\} [1-9]", text);
        Assert.Matches("csi_scst_rpc_requests_total\\{service=\"csi.v1.Controller\",method=\"CreateVolume\",code=\"OK\"\\} [1-9]", text);
        Assert.Contains("csi_scst_controller_engines{state=\"ready\"} 2", text);
    }
}

[CollectionDefinition("controller-cluster")]
public sealed class ControllerClusterCollection
{
}
