using Csi.V1;
using CsiScst.Core.Ids;
using CsiScst.Csi.Controller;
using Grpc.Core;
using CsiScst.Csi;

namespace CsiScst.Tests.Controller;

public sealed class CreateDeleteTests : ControllerTestBase
{
    [Fact]
    public async Task Create_without_capacity_makes_the_documented_default_size_on_the_node_with_most_free_space()
    {
        var response = await Client.CreateVolumeAsync(Create("pvc-1"));

        Assert.Equal(GiB, response.Volume.CapacityBytes);
        Assert.True(VolumeId.TryParse(response.Volume.VolumeId, out var id));
        Assert.Equal(("csi", "node-b", "file", "files"), (id!.Instance, id.TargetNode, id.Backend, id.Pool));
        Assert.Equal(new ObjectNames("csi").VolumeKey("pvc-1"), id.Key);
        Assert.Equal("CS" + id.Key, response.Volume.VolumeContext[VolumeContextKeys.Serial]);
        Assert.Equal("none", response.Volume.VolumeContext[VolumeContextKeys.Chap]);
        Assert.Empty(response.Volume.AccessibleTopology);
        Assert.Single(B.Volumes);
        Assert.Empty(A.Volumes);
    }

    [Fact]
    public async Task Retried_create_lands_on_the_same_node_even_when_free_space_changed()
    {
        var first = await Client.CreateVolumeAsync(Create("pvc-retry", 2 * GiB));
        // node-a now looks emptier than node-b; a retry must still find the volume on node-b.
        A.Pools["files"].AvailableBytes = 100 * GiB;
        var second = await Client.CreateVolumeAsync(Create("pvc-retry", 2 * GiB));

        Assert.Equal(first.Volume.VolumeId, second.Volume.VolumeId);
        Assert.Single(B.Volumes);
        Assert.Empty(A.Volumes);
    }

    [Fact]
    public async Task Same_name_with_incompatible_size_is_already_exists()
    {
        await Client.CreateVolumeAsync(Create("pvc-size", GiB, GiB));
        await Fails(StatusCode.AlreadyExists, async () => await Client.CreateVolumeAsync(Create("pvc-size", 2 * GiB, 2 * GiB)));
    }

    [Fact]
    public async Task Capacity_is_rounded_up_to_the_pool_granularity_and_out_of_range_when_the_limit_forbids()
    {
        var rounded = await Client.CreateVolumeAsync(Create("pvc-round", 5 * MiB + 1, 0, ("pool", "fast")));
        Assert.Equal(8 * MiB, rounded.Volume.CapacityBytes);

        var e = await Fails(StatusCode.OutOfRange, async () => await Client.CreateVolumeAsync(Create("pvc-range", 5 * MiB, 6 * MiB, ("pool", "fast"))));
        Assert.Contains("4194304", e.Status.Detail);
        await Fails(StatusCode.OutOfRange, async () => await Client.CreateVolumeAsync(Create("pvc-limit", 2 * GiB, GiB)));
    }

    [Fact]
    public async Task Unknown_parameters_are_refused_by_name_and_provisioner_keys_are_ignored()
    {
        var e = await Fails(StatusCode.InvalidArgument, async () =>
            await Client.CreateVolumeAsync(Create("pvc-typo", 0, 0, ("blocksize", "4096"), ("csi.storage.k8s.io/pvc/name", "x"))));
        Assert.Contains("'blocksize'", e.Status.Detail);
        Assert.DoesNotContain("pvc/name", e.Status.Detail);

        await Fails(StatusCode.InvalidArgument, async () => await Client.CreateVolumeAsync(Create("pvc-bs", 0, 0, ("blockSize", "1024"))));
        await Fails(StatusCode.InvalidArgument, async () => await Client.CreateVolumeAsync(Create("pvc-wc", 0, 0, ("writeCache", "sometimes"))));
        var backend = await Fails(StatusCode.InvalidArgument, async () => await Client.CreateVolumeAsync(Create("pvc-rbd", 0, 0, ("rbdFeatures", "layering"))));
        Assert.Contains("file pool", backend.Status.Detail);

        var ok = await Client.CreateVolumeAsync(Create("pvc-opts", 0, 0, ("blockSize", "4096"), ("writeCache", "writeback"), ("thinProvisioned", "true"),
            ("fsType", "xfs"), ("replacementTimeout", "30"), ("loginRetries", "3"), ("csi.storage.k8s.io/pvc/namespace", "ns")));
        Assert.Equal("xfs", ok.Volume.VolumeContext[VolumeContextKeys.FsType]);
        Assert.Equal("30", ok.Volume.VolumeContext[VolumeContextKeys.ReplacementTimeout]);
        Assert.Equal("3", ok.Volume.VolumeContext[VolumeContextKeys.LoginRetries]);
        Assert.Equal("4096", ok.Volume.VolumeContext[VolumeContextKeys.BlockSize]);
        var sent = (CsiScst.Engine.V1.EnsureVolumeRequest)B.Calls.Last(c => c.Method == "EnsureVolume").Request;
        Assert.Equal(4096u, sent.Options.BlockSize);
        Assert.Equal(CsiScst.Engine.V1.WriteCache.WriteBack, sent.Options.WriteCache);
        Assert.True(sent.Options.ThinProvisioned);
        Assert.Empty(sent.Parameters);
    }

    [Fact]
    public async Task Pool_is_required_without_a_default_and_must_exist()
    {
        var request = Create("pvc-nopool");
        request.Parameters.Remove("pool");
        var e = await Fails(StatusCode.InvalidArgument, async () => await Client.CreateVolumeAsync(request));
        Assert.Contains("--default-pool", e.Status.Detail);

        var missing = await Fails(StatusCode.InvalidArgument, async () => await Client.CreateVolumeAsync(Create("pvc-x", 0, 0, ("pool", "nosuch"))));
        Assert.Contains("nosuch", missing.Status.Detail);
    }

    [Fact]
    public async Task Target_node_parameter_places_the_volume_there_and_full_pools_are_resource_exhausted()
    {
        var placed = await Client.CreateVolumeAsync(Create("pvc-on-a", GiB, 0, ("targetNode", "node-a")));
        Assert.Contains(":node-a:", placed.Volume.VolumeId);

        await Fails(StatusCode.ResourceExhausted, async () => await Client.CreateVolumeAsync(Create("pvc-huge", 50 * GiB)));
        var unknown = await Fails(StatusCode.Unavailable, async () => await Client.CreateVolumeAsync(Create("pvc-z", 0, 0, ("targetNode", "node-z"))));
        Assert.Contains("node-z", unknown.Status.Detail);
    }

    [Fact]
    public async Task Delete_is_ok_for_foreign_ids_and_removes_real_volumes()
    {
        await Client.DeleteVolumeAsync(new DeleteVolumeRequest { VolumeId = "not-ours" });
        await Client.DeleteVolumeAsync(new DeleteVolumeRequest { VolumeId = "v1:other:node-a:file:files:0123456789abcdef" });

        var created = await Client.CreateVolumeAsync(Create("pvc-del"));
        await Client.DeleteVolumeAsync(new DeleteVolumeRequest { VolumeId = created.Volume.VolumeId });
        await Client.DeleteVolumeAsync(new DeleteVolumeRequest { VolumeId = created.Volume.VolumeId });
        Assert.Empty(B.Volumes);
    }

    [Fact]
    public async Task Delete_with_dependent_snapshots_is_failed_precondition()
    {
        var created = await Client.CreateVolumeAsync(Create("pvc-snapped"));
        await Client.CreateSnapshotAsync(new CreateSnapshotRequest { Name = "snap-1", SourceVolumeId = created.Volume.VolumeId });
        await Fails(StatusCode.FailedPrecondition, async () => await Client.DeleteVolumeAsync(new DeleteVolumeRequest { VolumeId = created.Volume.VolumeId }));
    }

    [Fact]
    public async Task Unreachable_target_is_unavailable_naming_the_node()
    {
        var created = await Client.CreateVolumeAsync(Create("pvc-gone"));
        await B.DisposeAsync();
        // Wait out the engine-info cache so the controller notices.
        await Task.Delay(TimeSpan.FromSeconds(2.5));

        foreach (var call in new Func<Task>[]
        {
            async () => await Client.DeleteVolumeAsync(new DeleteVolumeRequest { VolumeId = created.Volume.VolumeId }),
            async () => await Client.ControllerUnpublishVolumeAsync(new ControllerUnpublishVolumeRequest { VolumeId = created.Volume.VolumeId, NodeId = NodeX }),
            async () => await Client.ControllerExpandVolumeAsync(new ControllerExpandVolumeRequest { VolumeId = created.Volume.VolumeId, CapacityRange = new CapacityRange { RequiredBytes = 2 * GiB } }),
        })
        {
            var e = await Fails(StatusCode.Unavailable, call);
            Assert.Contains("node-b", e.Status.Detail);
        }
        var condition = await Client.ControllerGetVolumeAsync(new ControllerGetVolumeRequest { VolumeId = created.Volume.VolumeId });
        Assert.True(condition.Status.VolumeCondition.Abnormal);
        Assert.Contains("node-b", condition.Status.VolumeCondition.Message);
    }

    [Fact]
    public async Task Many_creates_at_once_make_one_volume_each_and_duplicates_make_exactly_one()
    {
        var distinct = await Task.WhenAll(Enumerable.Range(0, 20).Select(i => Client.CreateVolumeAsync(Create($"pvc-par-{i}", 64 * MiB)).ResponseAsync));
        Assert.Equal(20, distinct.Select(r => r.Volume.VolumeId).Distinct().Count());
        Assert.Equal(20, A.Volumes.Count + B.Volumes.Count);

        var outcomes = await Task.WhenAll(Enumerable.Range(0, 10).Select(async _ =>
        {
            try
            {
                return (await Client.CreateVolumeAsync(Create("pvc-dup", 64 * MiB))).Volume.VolumeId;
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.Aborted)
            {
                return null;
            }
        }));
        Assert.Single(outcomes.OfType<string>().Distinct());
        var key = new ObjectNames("csi").VolumeKey("pvc-dup");
        Assert.Equal(1, A.Volumes.Count(v => v.Key == key) + B.Volumes.Count(v => v.Key == key));
    }
}
