using System.Diagnostics;
using System.Globalization;
using System.Text;
using CsiScst.Bench.Infra;
using CsiScst.Core.Ids;
using CsiScst.Engine;
using CsiScst.Engine.State;
using CsiScst.Engine.V1;
using CsiScst.ScstModel;
using Microsoft.Extensions.Logging.Abstractions;

namespace CsiScst.Bench;

/// <summary>
/// Scale: one engine holding N exports (N = 500, 1,000, 2,000) on the SCST sysfs model and on a real tgtd.
/// The desired state is seeded by writing the engine's own state files (StateStore, the engine's format) and
/// backing files; the engine builds the exports at start-up. Then: a reconcile that finds nothing to change,
/// a rebuild of every export after the target lost them all (model reboot / every tgt target deleted) with
/// the share of its time spent in engine commands, and one full ListVolumes pass. Finally ListVolumes through
/// the controller over 10,000 seeded volumes.
/// </summary>
internal sealed class ScaleBench(BenchSettings settings, Report report)
{
    private const string Section = "Scale";
    private const string Initiator = "iqn.2026-11.io.csi-scst:bench-node";

    private sealed record Point(string Engine, int Exports, double SeedSeconds, double StartupReconcileSeconds, double NoopSeconds, double NoopOwnSeconds,
        double RebuildSeconds, double RebuildExternalSeconds, double ListSeconds, double OneVolumeSeconds, double OneVolumeOwnSeconds, double EngineRssMib, double EnginePeakMib);

    public async Task RunAsync()
    {
        Console.WriteLine("== scale");
        var sizes = settings.Quick ? new[] { 250, 500 } : [500, 1000, 2000];
        var points = new List<Point>();
        foreach (var engine in new[] { "scst", "tgt" })
        {
            foreach (var n in sizes)
            {
                var point = await MeasureAsync(engine, n);
                points.Add(point);
                Console.WriteLine($"    {engine} {n}: no-op {point.NoopSeconds * 1000:0} ms, rebuild {point.RebuildSeconds:0.00} s (engine commands {point.RebuildExternalSeconds:0.00} s), list {point.ListSeconds * 1000:0} ms");
            }
        }

        var largest = sizes[^1];
        foreach (var engine in new[] { "scst", "tgt" })
        {
            var name = engine == "scst" ? "SCST (sysfs model)" : "tgt";
            var p = points.Single(x => x.Engine == engine && x.Exports == largest);
            var first = points.First(x => x.Engine == engine);
            report.AddAtMost(Section, $"{name}, {largest} exports: reconcile with nothing to change", p.NoopSeconds * 1000, 200, "ms", "0",
                $"median; the driver's own part {p.NoopOwnSeconds * 1000:0} ms, the rest reading {(engine == "scst" ? "sysfs (FUSE model)" : "tgtadm show")}; {Growth(first.NoopSeconds, p.NoopSeconds, first.Exports, p.Exports)}");
            report.Add(Section, $"{name}, {largest} exports: rebuild all from an empty target", $"{p.RebuildSeconds:0.00} s",
                note: $"{p.RebuildSeconds / largest * 1000:0.00} ms per export; {Growth(first.RebuildSeconds, p.RebuildSeconds, first.Exports, p.Exports)}");
            report.AddAtMost(Section, $"{name}, {largest} exports: rebuild wall time ÷ time in engine commands", p.RebuildSeconds / p.RebuildExternalSeconds, 1.5, "×", "0.00",
                $"engine commands {p.RebuildExternalSeconds:0.00} s (tgtadm runs / sysfs writes)");
        }

        var md = new StringBuilder();
        md.AppendLine("Scaling (a step is linear when its growth exponent is about 1; 2 would be quadratic):");
        md.AppendLine();
        md.AppendLine("| engine | exports | seed state s | start-up reconcile s | no-op reconcile ms | of which own ms | rebuild s | in engine commands s | rebuild ms/export | ListVolumes (engine, all pages) ms | one more volume's life ms | of which own ms | engine RSS / peak MiB |");
        md.AppendLine("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        foreach (var p in points)
        {
            md.AppendLine(CultureInfo.InvariantCulture,
                $"| {p.Engine} | {p.Exports} | {p.SeedSeconds:0.0} | {p.StartupReconcileSeconds:0.00} | {p.NoopSeconds * 1000:0} | {p.NoopOwnSeconds * 1000:0} | {p.RebuildSeconds:0.00} | {p.RebuildExternalSeconds:0.00} | {p.RebuildSeconds / p.Exports * 1000:0.00} | {p.ListSeconds * 1000:0} | {p.OneVolumeSeconds * 1000:0} | {p.OneVolumeOwnSeconds * 1000:0} | {p.EngineRssMib:0} / {p.EnginePeakMib:0} |");
        }
        md.AppendLine();
        md.AppendLine("| engine | step | growth exponent over " + sizes[0] + " → " + largest + " |");
        md.AppendLine("|---|---|---|");
        foreach (var engine in new[] { "scst", "tgt" })
        {
            var a = points.First(x => x.Engine == engine);
            var b = points.Last(x => x.Engine == engine);
            md.AppendLine(CultureInfo.InvariantCulture, $"| {engine} | start-up reconcile | {Exponent(a.StartupReconcileSeconds, b.StartupReconcileSeconds, a.Exports, b.Exports):0.00} |");
            md.AppendLine(CultureInfo.InvariantCulture, $"| {engine} | no-op reconcile | {Exponent(a.NoopSeconds, b.NoopSeconds, a.Exports, b.Exports):0.00} |");
            md.AppendLine(CultureInfo.InvariantCulture, $"| {engine} | rebuild | {Exponent(a.RebuildSeconds, b.RebuildSeconds, a.Exports, b.Exports):0.00} |");
            md.AppendLine(CultureInfo.InvariantCulture, $"| {engine} | ListVolumes | {Exponent(a.ListSeconds, b.ListSeconds, a.Exports, b.Exports):0.00} |");
            md.AppendLine(CultureInfo.InvariantCulture, $"| {engine} | one more volume's life (0 = flat, 1 = creating N is quadratic) | {Exponent(a.OneVolumeSeconds, b.OneVolumeSeconds, a.Exports, b.Exports):0.00} |");
        }
        report.Detail(Section, md.ToString());

        await ListThroughControllerAsync(settings.Quick ? 2000 : 10000);
    }

    private static double Exponent(double t1, double t2, int n1, int n2) => Math.Log(t2 / t1) / Math.Log((double)n2 / n1);

    private static string Growth(double t1, double t2, int n1, int n2) =>
        $"growth exponent {Exponent(t1, t2, n1, n2):0.00} over {n1}→{n2}";

    private async Task<Point> MeasureAsync(string engine, int exports)
    {
        await using var rig = Rig.Create(settings, $"scale-{engine}-{exports}");
        ScstModelMount? model = null;
        try
        {
            string? sysfs = null;
            if (engine == "scst")
            {
                model = await ScstModelMount.StartAsync(Path.Combine(rig.Root, "mnt"), new ScstModelOptions());
                sysfs = model.SysfsRoot;
            }
            else
            {
                await rig.StartTgtdAsync();
            }
            var seed = await SeedAsync(rig, exports);
            await rig.StartTargetAsync(engine, sysfs, timeout: TimeSpan.FromMinutes(30));
            await rig.WaitForStartupReconcileAsync(TimeSpan.FromMinutes(30));
            var prom = await Prom.ScrapeAsync(rig.TargetMetricsPort, CancellationToken.None);
            var startup = prom.Sum("csi_scst_engine_reconcile_duration_seconds_sum");
            var exported = prom.Sum("csi_scst_engine_exports");
            if ((int)exported != exports)
            {
                throw new InvalidOperationException($"{engine}: the start-up reconcile left {exported} exports, expected {exports}:\n{rig.Target!.Tail()}");
            }

            using var client = rig.EngineClient();
            var noop = new List<double>();
            var filter = ("method", "Reconcile");
            var beforeNoop = await Prom.ScrapeAsync(rig.TargetMetricsPort, CancellationToken.None);
            // Through the SCST model every sysfs read is a FUSE round trip: fewer repetitions there.
            var noopRuns = engine == "scst" ? Math.Min(3, settings.Runs) : settings.Runs;
            for (var i = 0; i < noopRuns; i++)
            {
                var result = await client.Api.ReconcileAsync(new ReconcileRequest(), deadline: DateTime.UtcNow.AddMinutes(30));
                if (result.ExportsRepaired != 0 || result.OrphansRemoved != 0 || result.Errors.Count > 0)
                {
                    throw new InvalidOperationException($"{engine}: a reconcile with nothing to change changed something: repaired {result.ExportsRepaired}, removed {result.OrphansRemoved}, errors {string.Join("; ", result.Errors)}");
                }
                noop.Add(result.Seconds);
            }
            var afterNoop = await Prom.ScrapeAsync(rig.TargetMetricsPort, CancellationToken.None);
            var noopOwn = (afterNoop.Sum("csi_scst_rpc_own_duration_seconds_sum", filter) - beforeNoop.Sum("csi_scst_rpc_own_duration_seconds_sum", filter)) / noopRuns;

            // The target loses everything (SCST: a reboot; tgt: every target gone), the engine rebuilds it all.
            if (model is not null)
            {
                await File.WriteAllTextAsync(Path.Combine(model.ControlDir, "reboot"), "1");
            }
            else
            {
                await rig.Tgtd!.DeleteAllTargetsAsync();
            }
            var before = await Prom.ScrapeAsync(rig.TargetMetricsPort, CancellationToken.None);
            var rebuild = await client.Api.ReconcileAsync(new ReconcileRequest(), deadline: DateTime.UtcNow.AddMinutes(30));
            var after = await Prom.ScrapeAsync(rig.TargetMetricsPort, CancellationToken.None);
            if (rebuild.ExportsRepaired < exports || rebuild.Errors.Count > 0)
            {
                throw new InvalidOperationException($"{engine}: the rebuild repaired {rebuild.ExportsRepaired} of {exports}; errors: {string.Join("; ", rebuild.Errors.Take(3))}");
            }
            var total = after.Sum("csi_scst_rpc_duration_seconds_sum", filter) - before.Sum("csi_scst_rpc_duration_seconds_sum", filter);
            var own = after.Sum("csi_scst_rpc_own_duration_seconds_sum", filter) - before.Sum("csi_scst_rpc_own_duration_seconds_sum", filter);

            var list = new List<double>();
            for (var i = 0; i < settings.Runs; i++)
            {
                list.Add(await ListAllAsync(client, exports));
            }
            var (one, oneOwn) = await OneVolumeAsync(rig, client);
            // The engine's memory with N exports (for the chart's limits): now and its peak over the rebuild.
            var memory = rig.Target!.Memory();
            return new Point(engine, exports, seed, startup, Stats.Median(noop), noopOwn, rebuild.Seconds, total - own, Stats.Median(list), one, oneOwn,
                memory.RssMib, memory.PeakKib / 1024.0);
        }
        finally
        {
            // The engine must stop before its sysfs goes away; the tgtd is emptied by the rig.
            if (rig.Target is not null)
            {
                await rig.Target.TerminateAsync(TimeSpan.FromSeconds(60));
            }
            model?.Dispose();
        }
    }

    /// <summary>
    /// One more volume's life (EnsureVolume, EnsureAccess, RevokeAccess, DeleteVolume on the engine API) while the
    /// engine holds N: each step should not cost more with N, or creating N volumes is quadratic.
    /// </summary>
    private async Task<(double Seconds, double OwnSeconds)> OneVolumeAsync(Rig rig, CsiScst.Engine.Api.EngineClient client)
    {
        var names = new ObjectNames(rig.InstanceId);
        var times = new List<double>();
        var before = await Prom.ScrapeAsync(rig.TargetMetricsPort, CancellationToken.None);
        for (var i = 0; i < settings.Runs; i++)
        {
            var key = names.VolumeKey($"probe-{i}-{Tools.RandomSuffix(4)}");
            var started = Stopwatch.GetTimestamp();
            await client.Api.EnsureVolumeAsync(new EnsureVolumeRequest
            {
                Key = key,
                Name = "probe",
                Pool = "files",
                RequiredBytes = 16L << 20,
                Options = new ExportOptions { ThinProvisioned = true },
            });
            await client.Api.EnsureAccessAsync(new EnsureAccessRequest { Key = key, Pool = "files", NodeId = "probe/" + Initiator, InitiatorIqn = Initiator });
            await client.Api.RevokeAccessAsync(new RevokeAccessRequest { Key = key, Pool = "files", NodeId = "probe/" + Initiator });
            await client.Api.DeleteVolumeAsync(new DeleteVolumeRequest { Key = key, Pool = "files" });
            times.Add(Stopwatch.GetElapsedTime(started).TotalSeconds);
        }
        var after = await Prom.ScrapeAsync(rig.TargetMetricsPort, CancellationToken.None);
        double Delta(string metric) => new[] { "EnsureVolume", "EnsureAccess", "RevokeAccess", "DeleteVolume" }
            .Sum(m => after.Sum(metric, ("method", m)) - before.Sum(metric, ("method", m)));
        return (Stats.Median(times), Delta("csi_scst_rpc_own_duration_seconds_sum") / settings.Runs);
    }

    private static async Task<double> ListAllAsync(CsiScst.Engine.Api.EngineClient client, int expected)
    {
        var started = Stopwatch.GetTimestamp();
        var token = "";
        var count = 0;
        do
        {
            var page = await client.Api.ListVolumesAsync(new ListVolumesRequest { MaxEntries = 500, StartingToken = token });
            count += page.Volumes.Count;
            token = page.NextToken;
        }
        while (token.Length > 0);
        var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
        if (count != expected)
        {
            throw new InvalidOperationException($"ListVolumes returned {count} volumes, expected {expected}");
        }
        return seconds;
    }

    /// <summary>Writes N Ready volumes, each published to one initiator, as the engine's own StateStore writes them; and their sparse backing files.</summary>
    private static async Task<double> SeedAsync(Rig rig, int count, VolumePhase phase = VolumePhase.Ready)
    {
        var started = Stopwatch.GetTimestamp();
        var names = new ObjectNames(rig.InstanceId);
        var store = new StateStore(new EngineOptions { StateDirectory = rig.StateDirectory }, NullLogger<StateStore>.Instance);
        await store.LoadAsync(CancellationToken.None);
        await Parallel.ForEachAsync(Enumerable.Range(0, count), new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (i, ct) =>
        {
            var name = $"pvc-seeded-{i:D6}";
            var key = names.VolumeKey(name);
            var path = Path.Combine(rig.PoolDirectory, names.VolumeName(key) + ".img");
            if (phase == VolumePhase.Ready)
            {
                await using var stream = new FileStream(path, FileMode.CreateNew);
                stream.SetLength(16L << 20);
            }
            await store.SaveVolumeAsync(new VolumeRecord
            {
                Key = key,
                Name = name,
                Pool = "files",
                Backend = "file",
                Phase = phase,
                RequiredBytes = 16L << 20,
                CapacityBytes = 16L << 20,
                ThinProvisioned = true,
                BackingPath = phase == VolumePhase.Ready ? path : null,
                Access = [new AccessRecord("bench-node/" + Initiator, Initiator, ReadOnly: false, Exclusive: false)],
            }, ct);
        });
        return Stopwatch.GetElapsedTime(started).TotalSeconds;
    }

    /// <summary>CSI ListVolumes through the controller, paging over 10,000 volumes an engine holds.</summary>
    private async Task ListThroughControllerAsync(int volumes)
    {
        await using var rig = Rig.Create(settings, "scale-list");
        await rig.StartTgtdAsync();
        try
        {
            // Records in phase Creating: listed like any other, but reconcile builds no export for them, so
            // 10,000 need no 10,000 tgt targets (the export side is measured above).
            var seed = await SeedAsync(rig, volumes, VolumePhase.Creating);
            await rig.StartTargetAsync("tgt", timeout: TimeSpan.FromMinutes(30));
            await rig.WaitForStartupReconcileAsync(TimeSpan.FromMinutes(60));
            await rig.StartControllerAsync();
            using var channel = rig.ControllerChannel();
            var controller = new Csi.V1.Controller.ControllerClient(channel);
            var timings = new Dictionary<int, List<double>>();
            foreach (var pageSize in new[] { 0, 500, 100 })
            {
                timings[pageSize] = [];
                for (var run = 0; run < settings.Runs + 1; run++)
                {
                    var started = Stopwatch.GetTimestamp();
                    var token = "";
                    var count = 0;
                    var pages = 0;
                    do
                    {
                        var page = await controller.ListVolumesAsync(new Csi.V1.ListVolumesRequest { MaxEntries = pageSize, StartingToken = token });
                        count += page.Entries.Count;
                        token = page.NextToken;
                        pages++;
                    }
                    while (token.Length > 0);
                    var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
                    if (count != volumes)
                    {
                        throw new InvalidOperationException($"ListVolumes through the controller returned {count} volumes, expected {volumes}");
                    }
                    if (run > 0)
                    {
                        timings[pageSize].Add(seconds);
                    }
                    else
                    {
                        Console.WriteLine($"    page size {pageSize}: {pages} pages");
                    }
                }
            }
            report.AddAtMost(Section, $"ListVolumes through the controller, all {volumes} volumes, pages of 500", Stats.Median(timings[500]), 1, "s", "0.000",
                $"seeding {seed:0} s; default page: {Stats.Median(timings[0]):0.000} s; pages of 100: {Stats.Median(timings[100]):0.000} s");
        }
        finally
        {
            if (rig.Target is not null)
            {
                await rig.Target.TerminateAsync(TimeSpan.FromSeconds(60));
            }
            if (rig.Controller is not null)
            {
                await rig.Controller.TerminateAsync(TimeSpan.FromSeconds(30));
            }
        }
    }
}
