using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace CsiScst.Csi.Node;

/// <summary>Resolves the node id at start-up so a bad initiator name stops the plugin with a clear error instead of failing registration later.</summary>
public sealed class NodeStartup(NodeInfoProvider info, ILogger<NodeStartup> logger) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var id = await info.GetNodeIdAsync(cancellationToken).ConfigureAwait(false);
        logger.LogInformation("Node plugin for node {NodeName} with initiator {InitiatorIqn}", id.NodeName, id.InitiatorIqn);
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
