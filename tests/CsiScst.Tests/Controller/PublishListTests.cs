using Csi.V1;
using CsiScst.Csi.Controller;
using Grpc.Core;
using static Csi.V1.VolumeCapability.Types;
using CsiScst.Csi;

namespace CsiScst.Tests.Controller;

public sealed class PublishListTests : ControllerTestBase
{
    [Fact]
    public async Task Publish_returns_only_portals_iqn_and_lun_and_is_idempotent()
    {
        var volume = (await Client.CreateVolumeAsync(Create("pvc-pub"))).Volume;
        var request = new ControllerPublishVolumeRequest { VolumeId = volume.VolumeId, NodeId = NodeX, VolumeCapability = Mount() };
        var first = await Client.ControllerPublishVolumeAsync(request);
        var second = await Client.ControllerPublishVolumeAsync(request);

        Assert.Equal(first.PublishContext, second.PublishContext);
        Assert.Equal(new[] { VolumeContextKeys.TargetIqn, VolumeContextKeys.Lun, VolumeContextKeys.Portals }.Order(), first.PublishContext.Keys.Order());
        Assert.Equal("127.0.0.1:3260", first.PublishContext[VolumeContextKeys.Portals]);
        Assert.Equal("1", first.PublishContext[VolumeContextKeys.Lun]);
        var access = (CsiScst.Engine.V1.EnsureAccessRequest)B.Calls.Last(c => c.Method == "EnsureAccess").Request;
        Assert.Equal(("iqn.1993-08.org.debian:01:aaaa", NodeX, true, false), (access.InitiatorIqn, access.NodeId, access.Exclusive, access.ReadOnly));
    }

    [Fact]
    public async Task Publish_errors_follow_the_spec()
    {
        var volume = (await Client.CreateVolumeAsync(Create("pvc-pub-err"))).Volume;
        await Fails(StatusCode.NotFound, async () => await Client.ControllerPublishVolumeAsync(
            new ControllerPublishVolumeRequest { VolumeId = volume.VolumeId, NodeId = "some-fake-node-id", VolumeCapability = Mount() }));
        await Fails(StatusCode.NotFound, async () => await Client.ControllerPublishVolumeAsync(
            new ControllerPublishVolumeRequest { VolumeId = "fake-volume", NodeId = NodeX, VolumeCapability = Mount() }));
        await Fails(StatusCode.NotFound, async () => await Client.ControllerPublishVolumeAsync(
            new ControllerPublishVolumeRequest { VolumeId = volume.VolumeId.Replace(volume.VolumeId[^4..], "0000"), NodeId = NodeX, VolumeCapability = Mount() }));
        await Fails(StatusCode.InvalidArgument, async () => await Client.ControllerPublishVolumeAsync(
            new ControllerPublishVolumeRequest { VolumeId = volume.VolumeId, NodeId = NodeX }));

        await Client.ControllerPublishVolumeAsync(new ControllerPublishVolumeRequest { VolumeId = volume.VolumeId, NodeId = NodeX, VolumeCapability = Mount() });
        // Single-node mode, another node: the engine refuses.
        await Fails(StatusCode.FailedPrecondition, async () => await Client.ControllerPublishVolumeAsync(
            new ControllerPublishVolumeRequest { VolumeId = volume.VolumeId, NodeId = NodeY, VolumeCapability = Mount() }));
        // Same node, other read-only flag.
        await Fails(StatusCode.AlreadyExists, async () => await Client.ControllerPublishVolumeAsync(
            new ControllerPublishVolumeRequest { VolumeId = volume.VolumeId, NodeId = NodeX, VolumeCapability = Mount(), Readonly = true }));
    }

    [Fact]
    public async Task Multi_writer_block_publishes_to_two_nodes_and_unpublish_without_node_revokes_all()
    {
        var volume = (await Client.CreateVolumeAsync(new CreateVolumeRequest
        {
            Name = "pvc-rwx",
            VolumeCapabilities = { Block(AccessMode.Types.Mode.MultiNodeMultiWriter) },
            Parameters = { ["pool"] = "files" },
        })).Volume;
        foreach (var node in new[] { NodeX, NodeY })
        {
            await Client.ControllerPublishVolumeAsync(new ControllerPublishVolumeRequest
            {
                VolumeId = volume.VolumeId, NodeId = node, VolumeCapability = Block(AccessMode.Types.Mode.MultiNodeMultiWriter),
            });
        }
        var got = await Client.ControllerGetVolumeAsync(new ControllerGetVolumeRequest { VolumeId = volume.VolumeId });
        Assert.Equal(new[] { NodeX, NodeY }, got.Status.PublishedNodeIds.Order());
        Assert.False(got.Status.VolumeCondition.Abnormal);

        await Client.ControllerUnpublishVolumeAsync(new ControllerUnpublishVolumeRequest { VolumeId = volume.VolumeId });
        Assert.Empty(B.Volumes.Single().Access);
        // Not attached / not ours: OK.
        await Client.ControllerUnpublishVolumeAsync(new ControllerUnpublishVolumeRequest { VolumeId = volume.VolumeId, NodeId = NodeX });
        await Client.ControllerUnpublishVolumeAsync(new ControllerUnpublishVolumeRequest { VolumeId = "fake", NodeId = NodeX });

        // Mount + multi-writer is refused before anything happens.
        await Fails(StatusCode.InvalidArgument, async () => await Client.ControllerPublishVolumeAsync(new ControllerPublishVolumeRequest
        {
            VolumeId = volume.VolumeId, NodeId = NodeX, VolumeCapability = Mount(AccessMode.Types.Mode.MultiNodeMultiWriter),
        }));
    }

    [Fact]
    public async Task List_volumes_pages_across_engines_with_published_nodes()
    {
        var ids = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            ids.Add((await Client.CreateVolumeAsync(Create($"pvc-la-{i}", 0, 0, ("targetNode", "node-a")))).Volume.VolumeId);
            ids.Add((await Client.CreateVolumeAsync(Create($"pvc-lb-{i}", 0, 0, ("targetNode", "node-b")))).Volume.VolumeId);
        }
        await Client.ControllerPublishVolumeAsync(new ControllerPublishVolumeRequest { VolumeId = ids[0], NodeId = NodeX, VolumeCapability = Mount() });

        var all = await Client.ListVolumesAsync(new ListVolumesRequest());
        Assert.Equal(ids.Order(), all.Entries.Select(e => e.Volume.VolumeId).Order());
        Assert.Empty(all.NextToken);
        Assert.Equal(NodeX, all.Entries.Single(e => e.Volume.VolumeId == ids[0]).Status.PublishedNodeIds.Single());

        foreach (var size in new[] { 1, 2, 3, 4, 5 })
        {
            var seen = new List<string>();
            var token = "";
            var pages = 0;
            do
            {
                var page = await Client.ListVolumesAsync(new ListVolumesRequest { MaxEntries = size, StartingToken = token });
                Assert.True(page.Entries.Count <= size);
                seen.AddRange(page.Entries.Select(e => e.Volume.VolumeId));
                token = page.NextToken;
                pages++;
            }
            while (token.Length > 0);
            Assert.Equal(ids.Order(), seen.Order());
            Assert.True(pages >= 6 / size);
        }
        await Fails(StatusCode.Aborted, async () => await Client.ListVolumesAsync(new ListVolumesRequest { StartingToken = "invalid-token" }));
    }

    [Fact]
    public async Task Validate_capabilities_confirms_supported_ones_and_not_found_for_unknown_volumes()
    {
        var volume = (await Client.CreateVolumeAsync(Create("pvc-val"))).Volume;
        var ok = await Client.ValidateVolumeCapabilitiesAsync(new ValidateVolumeCapabilitiesRequest { VolumeId = volume.VolumeId, VolumeCapabilities = { Mount() } });
        Assert.NotNull(ok.Confirmed);
        Assert.Single(ok.Confirmed.VolumeCapabilities);

        var no = await Client.ValidateVolumeCapabilitiesAsync(new ValidateVolumeCapabilitiesRequest
        {
            VolumeId = volume.VolumeId, VolumeCapabilities = { Mount(AccessMode.Types.Mode.MultiNodeMultiWriter) },
        });
        Assert.Null(no.Confirmed);
        Assert.Contains("MULTI_NODE_MULTI_WRITER", no.Message);

        await Fails(StatusCode.NotFound, async () => await Client.ValidateVolumeCapabilitiesAsync(
            new ValidateVolumeCapabilitiesRequest { VolumeId = "fake-vol", VolumeCapabilities = { Mount() } }));
    }

    [Fact]
    public async Task Expand_asks_the_engine_and_requires_node_expansion_only_for_filesystems()
    {
        var volume = (await Client.CreateVolumeAsync(Create("pvc-grow", GiB))).Volume;
        var mount = await Client.ControllerExpandVolumeAsync(new ControllerExpandVolumeRequest
        {
            VolumeId = volume.VolumeId, CapacityRange = new CapacityRange { RequiredBytes = 2 * GiB }, VolumeCapability = Mount(),
        });
        Assert.Equal(2 * GiB, mount.CapacityBytes);
        Assert.True(mount.NodeExpansionRequired);
        var block = await Client.ControllerExpandVolumeAsync(new ControllerExpandVolumeRequest
        {
            VolumeId = volume.VolumeId, CapacityRange = new CapacityRange { RequiredBytes = 3 * GiB }, VolumeCapability = Block(),
        });
        Assert.True(block.NodeExpansionRequired); // the node must rescan its iSCSI session to see the new size
        Assert.Equal(3 * GiB, B.Volumes.Single().CapacityBytes);
        await Fails(StatusCode.NotFound, async () => await Client.ControllerExpandVolumeAsync(new ControllerExpandVolumeRequest
        {
            VolumeId = "fake", CapacityRange = new CapacityRange { RequiredBytes = GiB },
        }));
    }

    [Fact]
    public async Task Capacity_sums_pools_and_reports_the_largest_volume()
    {
        var total = await Client.GetCapacityAsync(new GetCapacityRequest());
        Assert.Equal(35 * GiB, total.AvailableCapacity);
        var files = await Client.GetCapacityAsync(new GetCapacityRequest { Parameters = { ["pool"] = "files" } });
        Assert.Equal(30 * GiB, files.AvailableCapacity);
        Assert.Equal(20 * GiB, files.MaximumVolumeSize);
        var onA = await Client.GetCapacityAsync(new GetCapacityRequest { Parameters = { ["pool"] = "files", ["targetNode"] = "node-a" } });
        Assert.Equal(10 * GiB, onA.AvailableCapacity);
        await Fails(StatusCode.InvalidArgument, async () => await Client.GetCapacityAsync(new GetCapacityRequest { Parameters = { ["bogus"] = "1" } }));
    }

    [Fact]
    public async Task Capabilities_are_advertised_and_probe_does_not_call_engines()
    {
        var caps = await Client.ControllerGetCapabilitiesAsync(new ControllerGetCapabilitiesRequest());
        Assert.Equal(CsiScst.Csi.Controller.ControllerRegistration.Capabilities.Order(), caps.Capabilities.Select(c => c.Rpc.Type).Order());
        var before = A.Calls.Count + B.Calls.Count;
        var probe = await Harness.Identity.ProbeAsync(new ProbeRequest());
        Assert.True(probe.Ready);
        Assert.Equal(before, A.Calls.Count + B.Calls.Count);
    }

    [Fact]
    public async Task Metrics_count_rpcs_and_engine_calls()
    {
        await Client.CreateVolumeAsync(Create("pvc-metrics"));
        var metrics = await Harness.MetricsAsync();
        Assert.Contains("csi_scst_rpc_requests_total{service=\"csi.v1.Controller\",method=\"CreateVolume\",code=\"OK\"} 1", metrics);
        Assert.Contains("csi_scst_controller_engine_calls_total{node=\"node-b\",method=\"EnsureVolume\",code=\"OK\"} 1", metrics);
        Assert.Contains("csi_scst_controller_engines{state=\"ready\"} 2", metrics);
    }
}
