using CsiScst.Initiator;
using CsiScst.Initiator.Devices;
using CsiScst.Initiator.Iscsi;
using CsiScst.Initiator.Mounts;

namespace CsiScst.Csi.Node;

/// <summary>Everything the node role is configured with (flags of <c>csi-scst node</c>).</summary>
public sealed class NodePluginOptions
{
    public NodeInfoOptions Info { get; init; } = new();
    public HostToolOptions Host { get; init; } = new();
    public IscsiOptions Iscsi { get; init; } = new();
    public DeviceOptions Devices { get; init; } = new();
    public MountOptions Mounts { get; init; } = new();

    /// <summary>Log out, at start-up, of this instance's sessions that back no staged volume.</summary>
    public bool CleanOrphanSessions { get; init; } = true;
}
