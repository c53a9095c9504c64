using Csi.V1;
using CsiScst.Core;
using CsiScst.Core.Errors;
using CsiScst.Core.Exec;
using CsiScst.Core.Ids;
using CsiScst.Initiator.Iscsi;

namespace CsiScst.Csi.Node;

public sealed class NodeInfoOptions
{
    /// <summary>Initiator IQN to report; null: read from the initiator name file.</summary>
    public string? InitiatorName { get; set; }
    public string InitiatorNameFile { get; set; } = InitiatorNameFileReader.DefaultPath;
    /// <summary>0: no limit.</summary>
    public long MaxVolumesPerNode { get; set; }
}

/// <summary>
/// NodeGetInfo: node id = node name + "/" + initiator IQN (docs/design.md), the volume limit, and a zone
/// segment only when the operator configured zones. The IQN is resolved once and cached.
/// </summary>
public sealed class NodeInfoProvider : INodeInfoProvider
{
    private readonly DriverOptions _driver;
    private readonly NodeInfoOptions _options;
    private readonly InitiatorNameFileReader _file;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private NodeId? _nodeId;

    public NodeInfoProvider(DriverOptions driver, NodeInfoOptions options, IToolRunner tools)
    {
        _driver = driver;
        _options = options;
        _file = new InitiatorNameFileReader(tools, options.InitiatorNameFile);
    }

    public async Task<NodeId> GetNodeIdAsync(CancellationToken cancellationToken)
    {
        if (_nodeId is { } cached)
        {
            return cached;
        }
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_nodeId is null)
            {
                var iqn = string.IsNullOrEmpty(_options.InitiatorName)
                    ? await _file.ReadOrCreateAsync(createIfMissing: true, cancellationToken).ConfigureAwait(false)
                    : _options.InitiatorName;
                var id = new NodeId(_driver.NodeName, iqn);
                if (!NodeId.TryParse(id.ToString(), out _))
                {
                    throw StatusException.FailedPrecondition(
                        $"node id '{id}' is not valid: the node name must be a DNS name without '/', the initiator name a valid iSCSI name (iqn./eui./naa.), and the whole at most {NodeId.MaxLength} bytes");
                }
                _nodeId = id;
            }
            return _nodeId;
        }
        finally
        {
            _gate.Release();
        }
    }

    public async Task<NodeGetInfoResponse> GetInfoAsync(CancellationToken cancellationToken)
    {
        var id = await GetNodeIdAsync(cancellationToken).ConfigureAwait(false);
        var response = new NodeGetInfoResponse
        {
            NodeId = id.ToString(),
            MaxVolumesPerNode = _options.MaxVolumesPerNode,
        };
        if (!string.IsNullOrEmpty(_driver.Zone))
        {
            response.AccessibleTopology = new Topology();
            response.AccessibleTopology.Segments[DriverOptions.ZoneTopologyKey] = _driver.Zone;
        }
        return response;
    }
}
