using System.CommandLine;
using CsiScst.Csi;
using CsiScst.Hosting;
using Microsoft.Extensions.DependencyInjection;

namespace CsiScst.Commands;

/// <summary>The controller role.</summary>
internal static class ControllerCommand
{
    public static Command Create()
    {
        var common = new CommonOptions("unix:///csi/csi.sock");
        var command = new Command("controller", "Serve CSI Identity + Controller on a Unix socket (Deployment, next to the kubernetes-csi sidecars).");
        common.AddTo(command);
        command.SetAction((parse, ct) =>
        {
            var settings = common.Bind(parse);
            var plan = CsiPlans.Create("controller", settings);
            var capabilities = new CsiCapabilities();
            plan.Services.Add(s => s.AddCsiController(capabilities));
            plan.Endpoints.Add(app => app.MapCsiServices(controller: true, node: false));
            return RoleRunner.RunAsync([plan], ct);
        });
        return command;
    }
}
