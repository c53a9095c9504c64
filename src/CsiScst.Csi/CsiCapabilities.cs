using Csi.V1;

namespace CsiScst.Csi;

/// <summary>
/// What this process really supports, filled in by the roles it hosts at start-up and read by
/// GetPluginCapabilities, ControllerGetCapabilities and NodeGetCapabilities. An RPC whose capability is
/// not here returns UNIMPLEMENTED: never a fake success.
/// </summary>
public sealed class CsiCapabilities
{
    public HashSet<PluginCapability.Types.Service.Types.Type> PluginServices { get; } = [];
    public PluginCapability.Types.VolumeExpansion.Types.Type? VolumeExpansion { get; set; }
    public HashSet<ControllerServiceCapability.Types.RPC.Types.Type> Controller { get; } = [];
    public HashSet<NodeServiceCapability.Types.RPC.Types.Type> Node { get; } = [];

    public bool Has(ControllerServiceCapability.Types.RPC.Types.Type rpc) => Controller.Contains(rpc);
    public bool Has(NodeServiceCapability.Types.RPC.Types.Type rpc) => Node.Contains(rpc);
}
