using Csi.V1;
using CsiScst.Core;
using CsiScst.Core.Errors;
using CsiScst.Core.Exec;
using CsiScst.Core.Ids;
using CsiScst.Initiator.Iscsi;
using Microsoft.Extensions.Logging;

namespace CsiScst.Csi.Node;

public sealed class NodeInfoOptions
{
    /// <summary>
    /// Initiator IQN to report; null: read from the initiator name file (or from the iface record when
    /// an iface is configured). With an iface, a given name is also written into the iface record.
    /// </summary>
    public string? InitiatorName { get; set; }
    public string InitiatorNameFile { get; set; } = InitiatorNameFileReader.DefaultPath;
    /// <summary>0: no limit.</summary>
    public long MaxVolumesPerNode { get; set; }
}

/// <summary>
/// NodeGetInfo: node id = node name + "/" + initiator IQN (docs/design.md), the volume limit, and a zone
/// segment only when the operator configured zones. The IQN is the one the target sees: the iface
/// record's initiator name when the plugin logs in through an iface, otherwise iscsid's own from
/// /etc/iscsi/initiatorname.iscsi. Resolved once and cached (it is fixed for the process's life).
/// </summary>
public sealed class NodeInfoProvider : INodeInfoProvider
{
    private readonly DriverOptions _driver;
    private readonly NodeInfoOptions _options;
    private readonly IscsiOptions _iscsi;
    private readonly IscsiAdm _iscsiadm;
    private readonly InitiatorNameFileReader _file;
    private readonly ILogger<NodeInfoProvider> _logger;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private NodeId? _nodeId;

    public NodeInfoProvider(DriverOptions driver, NodeInfoOptions options, IscsiOptions iscsi, IscsiAdm iscsiadm, IToolRunner tools, ILogger<NodeInfoProvider> logger)
    {
        _driver = driver;
        _options = options;
        _iscsi = iscsi;
        _iscsiadm = iscsiadm;
        _logger = logger;
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
                var iqn = await ResolveInitiatorNameAsync(cancellationToken).ConfigureAwait(false);
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

    private async Task<string> ResolveInitiatorNameAsync(CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(_iscsi.Iface))
        {
            return string.IsNullOrEmpty(_options.InitiatorName)
                ? await _file.ReadOrCreateAsync(createIfMissing: true, cancellationToken).ConfigureAwait(false)
                : _options.InitiatorName;
        }
        if (!string.IsNullOrEmpty(_options.InitiatorName))
        {
            if (!Names.IsValidInitiatorName(_options.InitiatorName))
            {
                throw StatusException.FailedPrecondition($"--initiator-name '{_options.InitiatorName}' is not a valid iSCSI name");
            }
            await _iscsiadm.EnsureIfaceAsync(_iscsi.Iface, _options.InitiatorName, cancellationToken).ConfigureAwait(false);
            return _options.InitiatorName;
        }
        var fromIface = await _iscsiadm.GetIfaceInitiatorNameAsync(_iscsi.Iface, cancellationToken).ConfigureAwait(false);
        if (fromIface is not null)
        {
            return fromIface;
        }
        _logger.LogInformation("iface {Iface} has no initiator name of its own; iscsid logs in with the default one", _iscsi.Iface);
        return await _file.ReadOrCreateAsync(createIfMissing: true, cancellationToken).ConfigureAwait(false);
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
