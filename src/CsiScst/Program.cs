using System.CommandLine;
using CsiScst.Commands;

var root = new RootCommand(
    "csi-scst: a Kubernetes CSI driver that exports block volumes (LVM, Ceph RBD, files) over iSCSI from SCST, LIO or tgt.");
root.Subcommands.Add(ControllerCommand.Create());
root.Subcommands.Add(NodeCommand.Create());
root.Subcommands.Add(TargetCommand.Create());
root.Subcommands.Add(StandaloneCommand.Create());
root.Subcommands.Add(ClientCommand.Create());

var parse = root.Parse(args);
if (parse.Errors.Count > 0 && parse.Action is not System.CommandLine.Help.HelpAction)
{
    foreach (var error in parse.Errors)
    {
        await Console.Error.WriteLineAsync($"error: {error.Message}");
    }
    await Console.Error.WriteLineAsync("Run with --help for usage.");
    return 2;
}
// The generic host handles SIGTERM itself and drains in-flight calls; don't let the parser kill us first.
return await parse.InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null });
