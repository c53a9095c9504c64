using System.CommandLine;
using CsiScst.Csi;
using CsiScst.Csi.Node;
using CsiScst.Hosting;
using CsiScst.Initiator.Iscsi;

namespace CsiScst.Commands;

/// <summary>Flags of the node role (also used by standalone).</summary>
internal sealed class NodeOptionSet
{
    public Option<string?> InitiatorName { get; } = new("--initiator-name")
    {
        Description = "Initiator IQN to report; default: read from the initiator name file (generated with iscsi-iname when absent).",
    };

    public Option<string> InitiatorNameFile { get; } = new("--initiator-name-file")
    {
        Description = "open-iscsi's initiator name file.",
        DefaultValueFactory = _ => InitiatorNameFileReader.DefaultPath,
    };

    public Option<long> MaxVolumesPerNode { get; } = new("--max-volumes-per-node")
    {
        Description = "Most volumes the scheduler may put on this node (0: no limit).",
        DefaultValueFactory = _ => 0,
    };

    public void AddTo(Command command)
    {
        command.Options.Add(InitiatorName);
        command.Options.Add(InitiatorNameFile);
        command.Options.Add(MaxVolumesPerNode);
    }

    public NodeInfoOptions Bind(ParseResult parse) => new()
    {
        InitiatorName = parse.GetValue(InitiatorName),
        InitiatorNameFile = parse.GetValue(InitiatorNameFile)!,
        MaxVolumesPerNode = parse.GetValue(MaxVolumesPerNode),
    };
}

/// <summary>The node role.</summary>
internal static class NodeCommand
{
    public static Command Create()
    {
        var common = new CommonOptions("unix:///csi/csi.sock");
        var node = new NodeOptionSet();
        var command = new Command("node", "Serve CSI Identity + Node on the kubelet plugin socket (DaemonSet on every node, privileged).");
        common.AddTo(command);
        node.AddTo(command);
        command.SetAction((parse, ct) =>
        {
            var settings = common.Bind(parse);
            var plan = CsiPlans.Create("node", settings);
            var capabilities = new CsiCapabilities();
            var nodeInfo = node.Bind(parse);
            plan.Services.Add(s => s.AddCsiNode(capabilities, nodeInfo));
            plan.Endpoints.Add(app => app.MapCsiServices(controller: false, node: true));
            return RoleRunner.RunAsync([plan], ct);
        });
        return command;
    }
}
