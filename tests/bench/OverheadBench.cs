using System.Globalization;
using System.Text;
using CsiScst.Bench.Infra;
using CsiScst.Core.Grpc;

namespace CsiScst.Bench;

/// <summary>
/// Control-plane overhead: the driver's own time per RPC (csi_scst_rpc_own_duration_seconds: duration minus
/// time in external tools, sysfs, the engine's locks and calls to other roles) with 100 RPCs in flight, on
/// the controller, the engine (tgt, file volumes) and the node plugin. p99 comes from the histogram buckets
/// (interpolated like Prometheus' histogram_quantile); the 5 ms bucket bound gives the exact share under 5 ms.
/// </summary>
internal sealed class OverheadBench(BenchSettings settings, Report report)
{
    private const string Section = "Control-plane overhead (100 RPCs in flight)";
    private const string OwnHistogram = "csi_scst_rpc_own_duration_seconds";
    private const string TotalHistogram = "csi_scst_rpc_duration_seconds";

    public async Task RunAsync()
    {
        Console.WriteLine("== overhead");
        const int inFlight = 100;
        var rounds = settings.Quick ? 1 : 2;
        await using var rig = Rig.Create(settings, "overhead");
        await rig.StartTgtdAsync();
        await rig.StartTargetAsync("tgt");
        await rig.StartControllerAsync();
        using var channel = rig.ControllerChannel();
        var csi = new CsiCalls(new Csi.V1.Controller.ControllerClient(channel));
        var warm = await csi.CreateAsync("warmup");
        await csi.PublishAsync(warm);
        await csi.UnpublishAsync(warm);
        await csi.DeleteAsync(warm);

        var controllerBefore = await Prom.ScrapeAsync(rig.ControllerMetricsPort, CancellationToken.None);
        var targetBefore = await Prom.ScrapeAsync(rig.TargetMetricsPort, CancellationToken.None);
        var load = Tools.LoadAverage();
        var errors = await CsiCalls.ForEachAsync(Enumerable.Range(0, inFlight), inFlight, async worker =>
        {
            for (var round = 0; round < rounds; round++)
            {
                var id = await csi.CreateAsync($"ovh-{worker:D3}-{round}");
                await csi.PublishAsync(id);
                await csi.GetAsync(id);
                await csi.ListPageAsync(100);
                await csi.CapacityAsync();
                await csi.UnpublishAsync(id);
                await csi.DeleteAsync(id);
            }
        });
        var controllerAfter = await Prom.ScrapeAsync(rig.ControllerMetricsPort, CancellationToken.None);
        var targetAfter = await Prom.ScrapeAsync(rig.TargetMetricsPort, CancellationToken.None);
        report.Add(Section, "errors", errors.Count.ToString(CultureInfo.InvariantCulture), "0", errors.Count == 0 ? Verdict.Met : Verdict.Missed,
            errors.Count > 0 ? errors[0] : $"{inFlight} workers × {rounds} × 7 controller calls; load {load:0.0} at start");

        var md = new StringBuilder();
        md.AppendLine("Per method (medians and p99 from the histogram buckets, in ms; share = observations ≤ 5 ms of own time):");
        md.AppendLine();
        md.AppendLine("| role | method | calls | total p50 | total p99 | own p50 | own p99 | own ≤ 5 ms |");
        md.AppendLine("|---|---|---|---|---|---|---|---|");
        var controllerOwn = Summarize("controller", controllerAfter, controllerBefore, md);
        var engineOwn = Summarize("engine", targetAfter, targetBefore, md);

        var controllerMemory = rig.Controller!.Memory();
        var engineMemory = rig.Target!.Memory();
        var node = await NodeAsync(rig, inFlight, md);
        report.Add(Section, "peak RSS under this load (VmHWM): controller / engine / node",
            $"{controllerMemory.PeakKib / 1024.0:0.0} / {engineMemory.PeakKib / 1024.0:0.0} / {node.PeakMib:0.0} MiB",
            note: $"now {controllerMemory.RssMib:0.0} / {engineMemory.RssMib:0.0} MiB; for the chart's memory requests and limits");
        report.AddAtMost(Section, "controller: own time p99", controllerOwn.P99 * 1000, 5, "ms", "0.00", $"{controllerOwn.Share * 100:0.0}% ≤ 5 ms");
        report.AddAtMost(Section, "engine (tgt): own time p99", engineOwn.P99 * 1000, 5, "ms", "0.00", $"{engineOwn.Share * 100:0.0}% ≤ 5 ms");
        report.AddAtMost(Section, "node: own time p99", node.P99 * 1000, 5, "ms", "0.00", $"{node.Share * 100:0.0}% ≤ 5 ms; Identity + NodeGetInfo/Capabilities (staging needs a kernel)");
        report.Detail(Section, md.ToString());
    }

    private static (double P99, double Share) Summarize(string role, Prom after, Prom before, StringBuilder md)
    {
        foreach (var method in after.LabelValues(OwnHistogram + "_count", "method"))
        {
            var own = Prom.Delta(after.Buckets(OwnHistogram, ("method", method)), before.Buckets(OwnHistogram, ("method", method)));
            var total = Prom.Delta(after.Buckets(TotalHistogram, ("method", method)), before.Buckets(TotalHistogram, ("method", method)));
            if (own.Count == 0 || own[^1].Count <= 0)
            {
                continue;
            }
            md.AppendLine(CultureInfo.InvariantCulture,
                $"| {role} | {method} | {own[^1].Count:0} | {Stats.HistogramQuantile(total, 0.5) * 1000:0.00} | {Stats.HistogramQuantile(total, 0.99) * 1000:0.00} | {Stats.HistogramQuantile(own, 0.5) * 1000:0.00} | {Stats.HistogramQuantile(own, 0.99) * 1000:0.00} | {Stats.FractionAtOrBelow(own, 0.005) * 100:0.0}% |");
        }
        var all = Prom.Delta(after.Buckets(OwnHistogram), before.Buckets(OwnHistogram));
        return (Stats.HistogramQuantile(all, 0.99), Stats.FractionAtOrBelow(all, 0.005));
    }

    private async Task<(double P99, double Share, double PeakMib)> NodeAsync(Rig rig, int inFlight, StringBuilder md)
    {
        var socket = Path.Combine(rig.Root, "node.sock");
        var metricsPort = Tools.FreePort();
        var initiatorFile = Path.Combine(rig.Root, "initiatorname.iscsi");
        await File.WriteAllTextAsync(initiatorFile, "InitiatorName=iqn.2026-11.io.csi-scst:bench-node\n");
        await using var node = new DriverProcess(settings.Binary,
            ["node", "--endpoint", "unix://" + socket, "--node-id", "bench-node", "--initiator-name-file", initiatorFile,
             "--metrics-address", $"127.0.0.1:{metricsPort}", "--log-level", "Warning"]);
        await Tools.WaitForAsync(() => Task.FromResult(File.Exists(socket)), "the node socket", TimeSpan.FromSeconds(30), TimeSpan.FromMilliseconds(10));
        using var channel = Channels.ForUnixSocket(socket);
        var identity = new Csi.V1.Identity.IdentityClient(channel);
        var nodeClient = new Csi.V1.Node.NodeClient(channel);
        await nodeClient.NodeGetInfoAsync(new Csi.V1.NodeGetInfoRequest());
        var before = await Prom.ScrapeAsync(metricsPort, CancellationToken.None);
        await CsiCalls.ForEachAsync(Enumerable.Range(0, inFlight), inFlight, async _ =>
        {
            for (var i = 0; i < 10; i++)
            {
                await nodeClient.NodeGetInfoAsync(new Csi.V1.NodeGetInfoRequest());
                await nodeClient.NodeGetCapabilitiesAsync(new Csi.V1.NodeGetCapabilitiesRequest());
                await identity.ProbeAsync(new Csi.V1.ProbeRequest());
            }
        });
        var after = await Prom.ScrapeAsync(metricsPort, CancellationToken.None);
        var (p99, share) = Summarize("node", after, before, md);
        return (p99, share, node.Memory().PeakKib / 1024.0);
    }
}
