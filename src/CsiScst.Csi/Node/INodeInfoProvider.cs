using Csi.V1;

namespace CsiScst.Csi.Node;

/// <summary>NodeGetInfo's answer: node id (node name + initiator IQN), volume limit, topology.</summary>
public interface INodeInfoProvider
{
    Task<NodeGetInfoResponse> GetInfoAsync(CancellationToken cancellationToken);
}
