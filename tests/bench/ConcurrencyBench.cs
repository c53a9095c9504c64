using System.Diagnostics;
using System.Globalization;
using System.Text;
using CsiScst.Bench.Infra;

namespace CsiScst.Bench;

/// <summary>
/// Concurrency: 200 CreateVolume + ControllerPublishVolume (+ the ControllerUnpublishVolume DeleteVolume needs
/// first) + DeleteVolume for distinct names, 50 at a time, through the real controller and a real tgt engine
/// with file volumes. The wall time is compared with the time the engine's commands took in the same run
/// (csi_scst_tool_duration_seconds) and with the same tgtadm/file work run directly, one command at a time.
/// </summary>
internal sealed class ConcurrencyBench(BenchSettings settings, Report report)
{
    private const string Section = "Concurrency (tgt engine, file volumes)";

    public async Task RunAsync()
    {
        Console.WriteLine("== concurrency");
        var volumes = settings.Quick ? 60 : 200;
        const int parallel = 50;
        await using var rig = Rig.Create(settings, "concurrency");
        await rig.StartTgtdAsync();
        await rig.StartTargetAsync("tgt");
        await rig.StartControllerAsync();
        using var channel = rig.ControllerChannel();
        var csi = new CsiCalls(new Csi.V1.Controller.ControllerClient(channel));

        // Connections up and every code path touched once before measuring.
        foreach (var i in Enumerable.Range(0, 3))
        {
            var id = await csi.CreateAsync($"warmup-{i}");
            await csi.PublishAsync(id);
            await csi.UnpublishAsync(id);
            await csi.DeleteAsync(id);
        }

        var targetBefore = await Prom.ScrapeAsync(rig.TargetMetricsPort, CancellationToken.None);
        var controllerBefore = await Prom.ScrapeAsync(rig.ControllerMetricsPort, CancellationToken.None);
        var load = Tools.LoadAverage();
        var started = Stopwatch.GetTimestamp();
        var errors = await CsiCalls.ForEachAsync(Enumerable.Range(0, volumes), parallel, async i =>
        {
            var id = await csi.CreateAsync($"bench-{i:D4}");
            await csi.PublishAsync(id);
            await csi.UnpublishAsync(id);
            await csi.DeleteAsync(id);
        });
        var wall = Stopwatch.GetElapsedTime(started).TotalSeconds;
        var targetAfter = await Prom.ScrapeAsync(rig.TargetMetricsPort, CancellationToken.None);
        var controllerAfter = await Prom.ScrapeAsync(rig.ControllerMetricsPort, CancellationToken.None);

        double Delta(Prom after, Prom before, string name, params (string, string)[] filter) => after.Sum(name, filter) - before.Sum(name, filter);
        var toolSeconds = Delta(targetAfter, targetBefore, "csi_scst_tool_duration_seconds_sum");
        var toolRuns = Delta(targetAfter, targetBefore, "csi_scst_tool_duration_seconds_count");
        var engineRpcSeconds = Delta(targetAfter, targetBefore, "csi_scst_rpc_duration_seconds_sum");
        var engineOwnSeconds = Delta(targetAfter, targetBefore, "csi_scst_rpc_own_duration_seconds_sum");
        var controllerRpcSeconds = Delta(controllerAfter, controllerBefore, "csi_scst_rpc_duration_seconds_sum");
        var controllerOwnSeconds = Delta(controllerAfter, controllerBefore, "csi_scst_rpc_own_duration_seconds_sum");
        var leftovers = (await rig.Tgtd!.TidsAsync()).Count;

        report.Add(Section, $"{volumes} × (create, publish, unpublish, delete), {parallel} at a time: errors", errors.Count.ToString(CultureInfo.InvariantCulture), "0",
            errors.Count == 0 ? Verdict.Met : Verdict.Missed, errors.Count > 0 ? errors[0] : $"targets left on tgtd: {leftovers}");
        report.Add(Section, "wall time", $"{wall:0.00} s", note: $"{volumes * 4 / wall:0} CSI calls/s; load {load:0.0} at start");
        report.Add(Section, "time in engine commands (Σ csi_scst_tool_duration_seconds)", $"{toolSeconds:0.00} s",
            note: $"{toolRuns:0} tool runs, {toolRuns / volumes:0.0} per volume, {toolSeconds / toolRuns * 1000:0.0} ms each");
        report.AddAtMost(Section, "wall time ÷ time in engine commands", wall / toolSeconds, 1.5, "×", "0.00",
            note: $"tgtadm runs overlap {toolSeconds / wall:0.00}× on average: export changes are serialized (one lock per engine), GetEngineInfo probes are not");

        var replay = await ReplayDirectAsync(rig, volumes);
        report.AddAtMost(Section, "wall time ÷ the same tgtadm + file work run directly, serially", wall / replay.Seconds, 1.5, "×", "0.00",
            note: $"direct: {replay.Seconds:0.00} s for {replay.Commands} commands ({replay.Seconds / replay.Commands * 1000:0.0} ms each)");

        var md = new StringBuilder();
        md.AppendLine("Tool runs in the timed run, by tool and per volume (from the engine's /metrics):");
        md.AppendLine();
        md.AppendLine("| tool | runs | per volume | seconds | ms per run |");
        md.AppendLine("|---|---|---|---|---|");
        foreach (var tool in targetAfter.LabelValues("csi_scst_tool_duration_seconds_count", "tool"))
        {
            var runs = Delta(targetAfter, targetBefore, "csi_scst_tool_duration_seconds_count", ("tool", tool));
            var secs = Delta(targetAfter, targetBefore, "csi_scst_tool_duration_seconds_sum", ("tool", tool));
            md.AppendLine(CultureInfo.InvariantCulture, $"| {tool} | {runs:0} | {runs / volumes:0.0} | {secs:0.00} | {(runs > 0 ? secs / runs * 1000 : 0):0.0} |");
        }
        md.AppendLine();
        md.AppendLine(CultureInfo.InvariantCulture, $"Σ RPC time: controller {controllerRpcSeconds:0.0} s (own {controllerOwnSeconds:0.00} s), engine {engineRpcSeconds:0.0} s (own {engineOwnSeconds:0.00} s). " +
            $"The RPC sums exceed the wall time because {parallel} calls wait at once; the tgtadm busy share of the wall time is {toolSeconds / wall * 100:0}%.");
        report.Detail(Section, md.ToString());
    }

    /// <summary>
    /// The commands one volume's life needs on tgt, run directly and serially: create the sparse file, read the
    /// target list (the engine reads it once per operation), target new, logicalunit new, bind, show, unbind,
    /// show, target delete, remove the file.
    /// </summary>
    private static async Task<(double Seconds, int Commands)> ReplayDirectAsync(Rig rig, int volumes)
    {
        var tgtd = rig.Tgtd!;
        var dir = Path.Combine(rig.Root, "replay");
        Directory.CreateDirectory(dir);
        var commands = 0;
        var started = Stopwatch.GetTimestamp();
        for (var i = 0; i < volumes; i++)
        {
            var file = Path.Combine(dir, $"replay-{i}.img");
            var tid = (10000 + i).ToString(CultureInfo.InvariantCulture);
            var iqn = $"iqn.2026-11.io.csi-scst:replay.{i:x16}";
            await using (var stream = new FileStream(file, FileMode.CreateNew))
            {
                stream.SetLength(16L << 20);
            }
            async Task Adm(params string[] args)
            {
                commands++;
                var result = await tgtd.AdmAsync(args);
                if (result.ExitCode != 0)
                {
                    throw new InvalidOperationException($"tgtadm {string.Join(' ', args)}: {result.Stderr}");
                }
            }
            await Adm("--mode", "target", "--op", "show");
            await Adm("--mode", "target", "--op", "new", "--tid", tid, "--targetname", iqn);
            await Adm("--mode", "logicalunit", "--op", "new", "--tid", tid, "--lun", "1", "--backing-store", file, "--bstype", "rdwr",
                "--blocksize", "512", "--bsoflags", "sync");
            await Adm("--mode", "target", "--op", "show");
            await Adm("--mode", "target", "--op", "bind", "--tid", tid, "--initiator-name", "iqn.2026-11.io.csi-scst:bench-node");
            await Adm("--mode", "target", "--op", "show");
            await Adm("--mode", "target", "--op", "unbind", "--tid", tid, "--initiator-name", "iqn.2026-11.io.csi-scst:bench-node");
            await Adm("--mode", "target", "--op", "show");
            await Adm("--mode", "target", "--op", "delete", "--force", "--tid", tid);
            File.Delete(file);
            commands += 2;
        }
        return (Stopwatch.GetElapsedTime(started).TotalSeconds, commands);
    }
}
