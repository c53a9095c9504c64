using Csi.V1;
using Grpc.Core;
using Grpc.Net.Client;
using static Csi.V1.VolumeCapability.Types;

namespace CsiScst.IntegrationTests.Foundation;

/// <summary>
/// Every RPC's request validation, through a real gRPC client on the real binary's Unix socket:
/// the CSI spec's status code and a message naming the field.
/// </summary>
public sealed class ValidationTests : IClassFixture<StandaloneFixture>
{
    private readonly StandaloneFixture _fixture;

    public ValidationTests(StandaloneFixture fixture)
    {
        _fixture = fixture;
    }

    public sealed record Case(string Name, Func<GrpcChannel, Task> Call, StatusCode Code, string MessagePart)
    {
        public override string ToString() => Name;
    }

    private static VolumeCapability Mount(AccessMode.Types.Mode mode = AccessMode.Types.Mode.SingleNodeWriter, string fs = "ext4") =>
        new() { Mount = new MountVolume { FsType = fs }, AccessMode = new AccessMode { Mode = mode } };

    private static VolumeCapability Block(AccessMode.Types.Mode mode = AccessMode.Types.Mode.SingleNodeWriter) =>
        new() { Block = new BlockVolume(), AccessMode = new AccessMode { Mode = mode } };

    private static Controller.ControllerClient C(GrpcChannel c) => new(c);
    private static Node.NodeClient N(GrpcChannel c) => new(c);

    private static CreateVolumeRequest Create(string name = "pvc-1") => new() { Name = name, VolumeCapabilities = { Mount() } };

    public static TheoryData<Case> Cases => new()
    {
        // CreateVolume
        new("create: name missing", c => C(c).CreateVolumeAsync(new CreateVolumeRequest { VolumeCapabilities = { Mount() } }).ResponseAsync, StatusCode.InvalidArgument, "name"),
        new("create: name over 128 bytes", c => C(c).CreateVolumeAsync(Create(new string('n', 129))).ResponseAsync, StatusCode.InvalidArgument, "128"),
        new("create: name with a control character", c => C(c).CreateVolumeAsync(Create("pvc-\u0001")).ResponseAsync, StatusCode.InvalidArgument, "U+0001"),
        new("create: capabilities missing", c => C(c).CreateVolumeAsync(new CreateVolumeRequest { Name = "v" }).ResponseAsync, StatusCode.InvalidArgument, "volume_capabilities"),
        new("create: access type missing", c => C(c).CreateVolumeAsync(new CreateVolumeRequest { Name = "v", VolumeCapabilities = { new VolumeCapability { AccessMode = new AccessMode { Mode = AccessMode.Types.Mode.SingleNodeWriter } } } }).ResponseAsync, StatusCode.InvalidArgument, "access_type"),
        new("create: access mode missing", c => C(c).CreateVolumeAsync(new CreateVolumeRequest { Name = "v", VolumeCapabilities = { new VolumeCapability { Block = new BlockVolume() } } }).ResponseAsync, StatusCode.InvalidArgument, "access_mode"),
        new("create: unknown access mode", c => C(c).CreateVolumeAsync(new CreateVolumeRequest { Name = "v", VolumeCapabilities = { Block((AccessMode.Types.Mode)42) } }).ResponseAsync, StatusCode.InvalidArgument, "42"),
        new("create: unsupported fs type", c => C(c).CreateVolumeAsync(new CreateVolumeRequest { Name = "v", VolumeCapabilities = { Mount(fs: "ntfs") } }).ResponseAsync, StatusCode.InvalidArgument, "ntfs"),
        new("create: multi-writer filesystem", c => C(c).CreateVolumeAsync(new CreateVolumeRequest { Name = "v", VolumeCapabilities = { Mount(AccessMode.Types.Mode.MultiNodeMultiWriter) } }).ResponseAsync, StatusCode.InvalidArgument, "block volumes"),
        new("create: negative required bytes", c => C(c).CreateVolumeAsync(new CreateVolumeRequest { Name = "v", VolumeCapabilities = { Mount() }, CapacityRange = new CapacityRange { RequiredBytes = -1 } }).ResponseAsync, StatusCode.InvalidArgument, "required_bytes"),
        new("create: negative limit", c => C(c).CreateVolumeAsync(new CreateVolumeRequest { Name = "v", VolumeCapabilities = { Mount() }, CapacityRange = new CapacityRange { LimitBytes = -5 } }).ResponseAsync, StatusCode.InvalidArgument, "limit_bytes"),
        new("create: limit below required", c => C(c).CreateVolumeAsync(new CreateVolumeRequest { Name = "v", VolumeCapabilities = { Mount() }, CapacityRange = new CapacityRange { RequiredBytes = 2048, LimitBytes = 1024 } }).ResponseAsync, StatusCode.OutOfRange, "limit_bytes"),
        new("create: empty snapshot source", c => C(c).CreateVolumeAsync(new CreateVolumeRequest { Name = "v", VolumeCapabilities = { Mount() }, VolumeContentSource = new VolumeContentSource { Snapshot = new VolumeContentSource.Types.SnapshotSource() } }).ResponseAsync, StatusCode.InvalidArgument, "snapshot_id"),
        new("create: content source without type", c => C(c).CreateVolumeAsync(new CreateVolumeRequest { Name = "v", VolumeCapabilities = { Mount() }, VolumeContentSource = new VolumeContentSource() }).ResponseAsync, StatusCode.InvalidArgument, "volume_content_source"),
        new("create: parameters over 4 KiB", c => C(c).CreateVolumeAsync(new CreateVolumeRequest { Name = "v", VolumeCapabilities = { Mount() }, Parameters = { ["big"] = new string('x', 5000) } }).ResponseAsync, StatusCode.InvalidArgument, "parameters"),
        // DeleteVolume
        new("delete: id missing", c => C(c).DeleteVolumeAsync(new DeleteVolumeRequest()).ResponseAsync, StatusCode.InvalidArgument, "volume_id"),
        new("delete: id over 128 bytes", c => C(c).DeleteVolumeAsync(new DeleteVolumeRequest { VolumeId = new string('x', 200) }).ResponseAsync, StatusCode.InvalidArgument, "128"),
        // ControllerPublish / Unpublish
        new("publish: volume id missing", c => C(c).ControllerPublishVolumeAsync(new ControllerPublishVolumeRequest { NodeId = "n/iqn.2026-11.x:y", VolumeCapability = Mount() }).ResponseAsync, StatusCode.InvalidArgument, "volume_id"),
        new("publish: node id missing", c => C(c).ControllerPublishVolumeAsync(new ControllerPublishVolumeRequest { VolumeId = "v", VolumeCapability = Mount() }).ResponseAsync, StatusCode.InvalidArgument, "node_id"),
        new("publish: node id over 256 bytes", c => C(c).ControllerPublishVolumeAsync(new ControllerPublishVolumeRequest { VolumeId = "v", NodeId = new string('n', 257), VolumeCapability = Mount() }).ResponseAsync, StatusCode.InvalidArgument, "256"),
        new("publish: capability missing", c => C(c).ControllerPublishVolumeAsync(new ControllerPublishVolumeRequest { VolumeId = "v", NodeId = "n/iqn.2026-11.x:y" }).ResponseAsync, StatusCode.InvalidArgument, "volume_capability"),
        new("unpublish: volume id missing", c => C(c).ControllerUnpublishVolumeAsync(new ControllerUnpublishVolumeRequest { NodeId = "n" }).ResponseAsync, StatusCode.InvalidArgument, "volume_id"),
        // ValidateVolumeCapabilities
        new("validate: volume id missing", c => C(c).ValidateVolumeCapabilitiesAsync(new ValidateVolumeCapabilitiesRequest { VolumeCapabilities = { Mount() } }).ResponseAsync, StatusCode.InvalidArgument, "volume_id"),
        new("validate: capabilities missing", c => C(c).ValidateVolumeCapabilitiesAsync(new ValidateVolumeCapabilitiesRequest { VolumeId = "v" }).ResponseAsync, StatusCode.InvalidArgument, "volume_capabilities"),
        // Lists
        new("list volumes: negative max entries", c => C(c).ListVolumesAsync(new ListVolumesRequest { MaxEntries = -1 }).ResponseAsync, StatusCode.InvalidArgument, "max_entries"),
        new("list snapshots: negative max entries", c => C(c).ListSnapshotsAsync(new ListSnapshotsRequest { MaxEntries = -3 }).ResponseAsync, StatusCode.InvalidArgument, "max_entries"),
        // Snapshots
        new("create snapshot: source missing", c => C(c).CreateSnapshotAsync(new CreateSnapshotRequest { Name = "s" }).ResponseAsync, StatusCode.InvalidArgument, "source_volume_id"),
        new("create snapshot: name missing", c => C(c).CreateSnapshotAsync(new CreateSnapshotRequest { SourceVolumeId = "v" }).ResponseAsync, StatusCode.InvalidArgument, "name"),
        new("delete snapshot: id missing", c => C(c).DeleteSnapshotAsync(new DeleteSnapshotRequest()).ResponseAsync, StatusCode.InvalidArgument, "snapshot_id"),
        new("get snapshot: id missing", c => C(c).GetSnapshotAsync(new GetSnapshotRequest()).ResponseAsync, StatusCode.InvalidArgument, "snapshot_id"),
        // Expand / Get / Modify
        new("expand: volume id missing", c => C(c).ControllerExpandVolumeAsync(new ControllerExpandVolumeRequest { CapacityRange = new CapacityRange { RequiredBytes = 1 } }).ResponseAsync, StatusCode.InvalidArgument, "volume_id"),
        new("expand: capacity range missing", c => C(c).ControllerExpandVolumeAsync(new ControllerExpandVolumeRequest { VolumeId = "v" }).ResponseAsync, StatusCode.InvalidArgument, "capacity_range"),
        new("get volume: id missing", c => C(c).ControllerGetVolumeAsync(new ControllerGetVolumeRequest()).ResponseAsync, StatusCode.InvalidArgument, "volume_id"),
        new("modify: id missing", c => C(c).ControllerModifyVolumeAsync(new ControllerModifyVolumeRequest()).ResponseAsync, StatusCode.InvalidArgument, "volume_id"),
        // Node
        new("stage: volume id missing", c => N(c).NodeStageVolumeAsync(new NodeStageVolumeRequest { StagingTargetPath = "/s", VolumeCapability = Mount() }).ResponseAsync, StatusCode.InvalidArgument, "volume_id"),
        new("stage: staging path missing", c => N(c).NodeStageVolumeAsync(new NodeStageVolumeRequest { VolumeId = "v", VolumeCapability = Mount() }).ResponseAsync, StatusCode.InvalidArgument, "staging_target_path"),
        new("stage: relative staging path", c => N(c).NodeStageVolumeAsync(new NodeStageVolumeRequest { VolumeId = "v", StagingTargetPath = "rel/path", VolumeCapability = Mount() }).ResponseAsync, StatusCode.InvalidArgument, "absolute"),
        new("stage: path with ..", c => N(c).NodeStageVolumeAsync(new NodeStageVolumeRequest { VolumeId = "v", StagingTargetPath = "/a/../etc", VolumeCapability = Mount() }).ResponseAsync, StatusCode.InvalidArgument, ".."),
        new("stage: capability missing", c => N(c).NodeStageVolumeAsync(new NodeStageVolumeRequest { VolumeId = "v", StagingTargetPath = "/s" }).ResponseAsync, StatusCode.InvalidArgument, "volume_capability"),
        new("stage: multi-writer filesystem", c => N(c).NodeStageVolumeAsync(new NodeStageVolumeRequest { VolumeId = "v", StagingTargetPath = "/s", VolumeCapability = Mount(AccessMode.Types.Mode.MultiNodeMultiWriter) }).ResponseAsync, StatusCode.InvalidArgument, "block volumes"),
        new("unstage: volume id missing", c => N(c).NodeUnstageVolumeAsync(new NodeUnstageVolumeRequest { StagingTargetPath = "/s" }).ResponseAsync, StatusCode.InvalidArgument, "volume_id"),
        new("unstage: staging path missing", c => N(c).NodeUnstageVolumeAsync(new NodeUnstageVolumeRequest { VolumeId = "v" }).ResponseAsync, StatusCode.InvalidArgument, "staging_target_path"),
        new("publish node: volume id missing", c => N(c).NodePublishVolumeAsync(new NodePublishVolumeRequest { TargetPath = "/t", StagingTargetPath = "/s", VolumeCapability = Mount() }).ResponseAsync, StatusCode.InvalidArgument, "volume_id"),
        new("publish node: target path missing", c => N(c).NodePublishVolumeAsync(new NodePublishVolumeRequest { VolumeId = "v", StagingTargetPath = "/s", VolumeCapability = Mount() }).ResponseAsync, StatusCode.InvalidArgument, "target_path"),
        new("publish node: capability missing", c => N(c).NodePublishVolumeAsync(new NodePublishVolumeRequest { VolumeId = "v", TargetPath = "/t", StagingTargetPath = "/s" }).ResponseAsync, StatusCode.InvalidArgument, "volume_capability"),
        new("unpublish node: target path missing", c => N(c).NodeUnpublishVolumeAsync(new NodeUnpublishVolumeRequest { VolumeId = "v" }).ResponseAsync, StatusCode.InvalidArgument, "target_path"),
        new("unpublish node: volume id missing", c => N(c).NodeUnpublishVolumeAsync(new NodeUnpublishVolumeRequest { TargetPath = "/t" }).ResponseAsync, StatusCode.InvalidArgument, "volume_id"),
        new("stats: volume path missing", c => N(c).NodeGetVolumeStatsAsync(new NodeGetVolumeStatsRequest { VolumeId = "v" }).ResponseAsync, StatusCode.InvalidArgument, "volume_path"),
        new("stats: volume id missing", c => N(c).NodeGetVolumeStatsAsync(new NodeGetVolumeStatsRequest { VolumePath = "/p" }).ResponseAsync, StatusCode.InvalidArgument, "volume_id"),
        new("node expand: volume path missing", c => N(c).NodeExpandVolumeAsync(new NodeExpandVolumeRequest { VolumeId = "v" }).ResponseAsync, StatusCode.InvalidArgument, "volume_path"),
        new("node expand: negative size", c => N(c).NodeExpandVolumeAsync(new NodeExpandVolumeRequest { VolumeId = "v", VolumePath = "/p", CapacityRange = new CapacityRange { RequiredBytes = -1 } }).ResponseAsync, StatusCode.InvalidArgument, "required_bytes"),
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Bad_requests_get_the_spec_code_and_a_message_naming_the_problem(Case test)
    {
        var e = await Assert.ThrowsAsync<RpcException>(() => test.Call(_fixture.Channel));
        Assert.Equal(test.Code, e.StatusCode);
        Assert.Contains(test.MessagePart, e.Status.Detail);
    }

    [Fact]
    public async Task Secrets_are_never_echoed_in_errors()
    {
        var request = new CreateVolumeRequest { Name = "v", VolumeCapabilities = { Mount() }, Secrets = { ["password"] = "TOPSECRETVALUE" + new string('x', 5000) } };
        var e = await Assert.ThrowsAsync<RpcException>(() => C(_fixture.Channel).CreateVolumeAsync(request).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.DoesNotContain("TOPSECRETVALUE", e.Status.Detail);
        Assert.DoesNotContain("TOPSECRETVALUE", _fixture.Process.Output);
    }
}
