using Csi.V1;
using CsiScst.Core;
using CsiScst.Core.Errors;
using CsiScst.Core.Exec;
using CsiScst.Core.Metrics;
using CsiScst.Csi;
using CsiScst.Csi.Node;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using static Csi.V1.VolumeCapability.Types;
using NodeRpc = Csi.V1.NodeServiceCapability.Types.RPC.Types.Type;

namespace CsiScst.Tests.NodePlugin;

/// <summary>The Node service as the node role wires it (DI), for what needs no device: capabilities, locking, validation.</summary>
public sealed class NodeServiceTests : IDisposable
{
    private readonly ServiceProvider _provider;
    private readonly RecordingToolRunner _tools = new();

    public NodeServiceTests()
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddSingleton(new DriverOptions { NodeName = "node-1" });
        services.AddSingleton(new DriverMetrics());
        services.AddSingleton<IToolRunner>(_tools);
        services.AddCsiNode(Capabilities, new NodePluginOptions { Info = new NodeInfoOptions { InitiatorName = "iqn.2026-11.io.example:node-1" } });
        _provider = services.BuildServiceProvider();
        Service = _provider.GetRequiredService<NodeService>();
    }

    private CsiCapabilities Capabilities { get; } = new();
    private NodeService Service { get; }

    public void Dispose() => _provider.Dispose();

    private const string VolumeId = "v1:csi:storage-1:lvm:vg1:0123456789abcdef";

    [Fact]
    public async Task Advertises_exactly_what_the_node_implements()
    {
        var response = await Service.NodeGetCapabilities(new NodeGetCapabilitiesRequest(), new TestCallContext());
        Assert.Equal(
            [NodeRpc.StageUnstageVolume, NodeRpc.GetVolumeStats, NodeRpc.ExpandVolume, NodeRpc.VolumeCondition, NodeRpc.SingleNodeMultiWriter, NodeRpc.VolumeMountGroup],
            response.Capabilities.Select(c => c.Rpc.Type));
        var info = await Service.NodeGetInfo(new NodeGetInfoRequest(), new TestCallContext());
        Assert.Equal("node-1/iqn.2026-11.io.example:node-1", info.NodeId);
    }

    [Fact]
    public async Task A_second_call_for_a_volume_in_flight_is_aborted_before_touching_anything()
    {
        var locks = _provider.GetRequiredService<NodeLocks>();
        using (locks.TryAcquireVolume(VolumeId))
        {
            var calls = new Func<Task>[]
            {
                () => Service.NodePublishVolume(new NodePublishVolumeRequest
                {
                    VolumeId = VolumeId, StagingTargetPath = "/staging", TargetPath = "/target",
                    VolumeCapability = new VolumeCapability { AccessMode = new AccessMode { Mode = AccessMode.Types.Mode.SingleNodeWriter }, Mount = new MountVolume() },
                }, new TestCallContext()),
                () => Service.NodeUnpublishVolume(new NodeUnpublishVolumeRequest { VolumeId = VolumeId, TargetPath = "/target" }, new TestCallContext()),
                () => Service.NodeUnstageVolume(new NodeUnstageVolumeRequest { VolumeId = VolumeId, StagingTargetPath = "/staging" }, new TestCallContext()),
                () => Service.NodeExpandVolume(new NodeExpandVolumeRequest { VolumeId = VolumeId, VolumePath = "/target" }, new TestCallContext()),
                () => Service.NodeStageVolume(new NodeStageVolumeRequest
                {
                    VolumeId = VolumeId, StagingTargetPath = "/staging",
                    VolumeCapability = new VolumeCapability { AccessMode = new AccessMode { Mode = AccessMode.Types.Mode.SingleNodeWriter }, Block = new BlockVolume() },
                    PublishContext = { [VolumeContextKeys.Portals] = "127.0.0.1:3260", [VolumeContextKeys.Lun] = "0" },
                }, new TestCallContext()),
            };
            foreach (var call in calls)
            {
                var e = await Assert.ThrowsAsync<StatusException>(call);
                Assert.Equal(StatusCode.Aborted, e.Code);
                Assert.Contains(VolumeId, e.Message);
            }
        }
        Assert.Empty(_tools.Commands);
        Assert.Equal(0, _provider.GetRequiredService<NodeLocks>().Count);
    }

    [Fact]
    public async Task Stage_of_a_target_a_cleanup_holds_is_aborted()
    {
        var locks = _provider.GetRequiredService<NodeLocks>();
        using (locks.TryAcquireTarget("iqn.2026-11.io.csi-scst:csi.0123456789abcdef"))
        {
            var e = await Assert.ThrowsAsync<StatusException>(() => Service.NodeStageVolume(new NodeStageVolumeRequest
            {
                VolumeId = VolumeId,
                StagingTargetPath = "/staging",
                VolumeCapability = new VolumeCapability { AccessMode = new AccessMode { Mode = AccessMode.Types.Mode.SingleNodeWriter }, Block = new BlockVolume() },
                PublishContext = { [VolumeContextKeys.Portals] = "127.0.0.1:3260", [VolumeContextKeys.Lun] = "0" },
            }, new TestCallContext()));
            Assert.Equal(StatusCode.Aborted, e.Code);
        }
        Assert.Equal(0, locks.Count);
    }

    [Fact]
    public async Task Forbidden_mount_flags_are_refused()
    {
        var request = new NodeStageVolumeRequest
        {
            VolumeId = VolumeId,
            StagingTargetPath = Path.Join(Path.GetTempPath(), "csi-scst-unit-" + Guid.NewGuid().ToString("N")),
            VolumeCapability = new VolumeCapability { AccessMode = new AccessMode { Mode = AccessMode.Types.Mode.SingleNodeWriter }, Mount = new MountVolume { MountFlags = { "noatime,bind" } } },
            PublishContext = { [VolumeContextKeys.Portals] = "127.0.0.1:3260", [VolumeContextKeys.Lun] = "0" },
        };
        _tools.Answer = _ => (0, "");
        var e = await Assert.ThrowsAsync<StatusException>(() => Service.NodeStageVolume(request, new TestCallContext()));
        Assert.Equal(StatusCode.InvalidArgument, e.Code);
        Assert.Contains("'bind'", e.Message);
        Assert.False(Directory.Exists(request.StagingTargetPath));
        Assert.DoesNotContain(_tools.Commands, c => c.ToolName == "iscsiadm");
    }
}

/// <summary>A ServerCallContext for calling service methods directly.</summary>
internal sealed class TestCallContext : ServerCallContext
{
    protected override string MethodCore => "/csi.v1.Node/Test";
    protected override string HostCore => "localhost";
    protected override string PeerCore => "unix:test";
    protected override DateTime DeadlineCore => DateTime.MaxValue;
    protected override Metadata RequestHeadersCore => [];
    protected override CancellationToken CancellationTokenCore => CancellationToken.None;
    protected override Metadata ResponseTrailersCore => [];
    protected override Status StatusCore { get; set; }
    protected override WriteOptions? WriteOptionsCore { get; set; }
    protected override AuthContext AuthContextCore => new(null, new Dictionary<string, List<AuthProperty>>());
    protected override ContextPropagationToken CreatePropagationTokenCore(ContextPropagationOptions? options) => throw new NotSupportedException();
    protected override Task WriteResponseHeadersAsyncCore(Metadata responseHeaders) => Task.CompletedTask;
}
