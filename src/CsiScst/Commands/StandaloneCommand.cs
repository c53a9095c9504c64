using System.CommandLine;
using CsiScst.Csi;
using CsiScst.Hosting;
using Microsoft.Extensions.DependencyInjection;

namespace CsiScst.Commands;

/// <summary>All roles in one process.</summary>
internal static class StandaloneCommand
{
    public static Command Create()
    {
        var common = new CommonOptions("unix:///run/csi-scst/csi.sock");
        var node = new NodeOptionSet();
        var command = new Command("standalone", "Run controller, node and target engine in one process on one machine (quick start, tests). The controller still reaches the engine through its gRPC API with mutual TLS.");
        common.AddTo(command);
        node.AddTo(command);
        command.SetAction((parse, ct) =>
        {
            var settings = common.Bind(parse);
            var plan = CsiPlans.Create("standalone", settings);
            var capabilities = new CsiCapabilities();
            var nodeInfo = node.Bind(parse);
            plan.Services.Add(s => s.AddCsiController(capabilities).AddCsiNode(capabilities, nodeInfo));
            plan.Endpoints.Add(app => app.MapCsiServices(controller: true, node: true));
            return RoleRunner.RunAsync([plan], ct);
        });
        return command;
    }
}
