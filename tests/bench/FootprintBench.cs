using System.Diagnostics;
using System.Globalization;
using System.Text;
using CsiScst.Bench.Infra;
using CsiScst.Core.Grpc;
using CsiScst.Engine.V1;

namespace CsiScst.Bench;

/// <summary>
/// Footprint: process start to first served RPC and idle RSS of each role (node, controller, target), the
/// same under GC settings given through DOTNET_* variables (what each knob is worth), and where the resident
/// memory of an idle node plugin goes (/proc/PID/smaps by mapping).
/// </summary>
internal sealed class FootprintBench(BenchSettings settings, Report report)
{
    private const string Section = "Footprint";
    private static readonly TimeSpan Settle = TimeSpan.FromSeconds(3);

    private sealed record Sample(double FirstRpcMs, double SecondRpcMs, MemoryReading Memory, List<(string Mapping, long Kib)> Mappings);

    public async Task RunAsync()
    {
        Console.WriteLine("== footprint");
        await using var rig = Rig.Create(settings, "footprint");
        await rig.StartTgtdAsync();
        await rig.StartTargetAsync("tgt");
        var initiatorFile = Path.Combine(rig.Root, "initiatorname.iscsi");
        await File.WriteAllTextAsync(initiatorFile, "InitiatorName=iqn.2026-11.io.csi-scst:bench-node\n");

        var binary = new FileInfo(settings.Binary);
        report.Add(Section, "binary size", $"{binary.Length / 1024.0 / 1024.0:0.0} MiB", note: binary.FullName);

        // The bench's own client code (gRPC, TLS) is JIT-compiled: throwaway runs warm it up so it does not count.
        await MeasureNodeAsync(rig, initiatorFile, null, warmUp: true);
        await MeasureControllerAsync(rig, null);
        await MeasureTargetAsync(rig, null);

        var node = await RepeatAsync(() => MeasureNodeAsync(rig, initiatorFile, null));
        var controller = await RepeatAsync(() => MeasureControllerAsync(rig, null));
        var target = await RepeatAsync(() => MeasureTargetAsync(rig, null));

        report.AddAtMost(Section, "node: idle RSS", Stats.Median(node.Select(s => s.Memory.RssMib).ToList()), 16, "MiB", note: Spread(node));
        report.AddAtMost(Section, "controller: idle RSS (one engine connected)", Stats.Median(controller.Select(s => s.Memory.RssMib).ToList()), 32, "MiB", note: Spread(controller));
        report.Add(Section, "target (tgt, empty): idle RSS", $"{Stats.Median(target.Select(s => s.Memory.RssMib).ToList()):0.0} MiB", note: "no target set; for the chart's requests");
        report.AddAtMost(Section, "node: start to first served RPC", Stats.Median(node.Select(s => s.FirstRpcMs).ToList()), 100, "ms", "0", note: "GetPluginInfo on the kubelet socket");
        report.AddAtMost(Section, "controller: start to first served RPC", Stats.Median(controller.Select(s => s.FirstRpcMs).ToList()), 100, "ms", "0", note: "GetPluginInfo");
        report.Add(Section, "controller: first Probe (dials the engine over mTLS)", $"{Stats.Median(controller.Select(s => s.SecondRpcMs).ToList()):0} ms");
        report.AddAtMost(Section, "target: start to first served RPC", Stats.Median(target.Select(s => s.FirstRpcMs).ToList()), 100, "ms", "0", note: "GetEngineInfo over mTLS, after state load and tgtd checks");

        var md = new StringBuilder();
        md.AppendLine("Idle = 3 s after the first RPCs; medians of " + settings.Runs + " runs. RSS parts from /proc/PID/status.");
        md.AppendLine();
        md.AppendLine("| role | RSS MiB | anon MiB | file MiB | peak MiB | threads |");
        md.AppendLine("|---|---|---|---|---|---|");
        foreach (var (name, samples) in new[] { ("node", node), ("controller", controller), ("target", target) })
        {
            md.AppendLine($"| {name} | {M(samples, m => m.RssKib)} | {M(samples, m => m.AnonKib)} | {M(samples, m => m.FileKib)} | {M(samples, m => m.PeakKib)} | {Stats.Median(samples.Select(s => (double)s.Memory.Threads).ToList()):0} |");
        }
        md.AppendLine();
        md.AppendLine("Where an idle node plugin's resident memory is (/proc/PID/smaps, one run):");
        md.AppendLine();
        md.AppendLine("| mapping | KiB |");
        md.AppendLine("|---|---|");
        foreach (var (mapping, kib) in node[0].Mappings.Take(10))
        {
            md.AppendLine($"| {mapping} | {kib} |");
        }
        report.Detail(Section, md.ToString());

        await GcVariantsAsync(rig, initiatorFile);
    }

    /// <summary>Each GC knob alone, on the node and controller roles: what it is worth.</summary>
    private async Task GcVariantsAsync(Rig rig, string initiatorFile)
    {
        var variants = new (string Name, Dictionary<string, string>? Env)[]
        {
            ("as built", null),
            ("DOTNET_gcServer=1 (server GC)", new() { ["DOTNET_gcServer"] = "1" }),
            ("DOTNET_gcServer=0 (workstation GC)", new() { ["DOTNET_gcServer"] = "0" }),
            ("DOTNET_gcConcurrent=0 (no background GC)", new() { ["DOTNET_gcConcurrent"] = "0" }),
            ("DOTNET_GCgen0size=0x100000 (1 MiB gen0 budget)", new() { ["DOTNET_GCgen0size"] = "0x100000" }),
            ("DOTNET_GCConserveMemory=7", new() { ["DOTNET_GCConserveMemory"] = "7" }),
            ("DOTNET_GCHeapHardLimit=0x1000000 (16 MiB)", new() { ["DOTNET_GCHeapHardLimit"] = "0x1000000" }),
        };
        var md = new StringBuilder();
        md.AppendLine("GC settings, one at a time (medians of " + settings.Runs + " runs; idle RSS in MiB, first RPC in ms):");
        md.AppendLine();
        md.AppendLine("| setting | node RSS | node first RPC | controller RSS | controller first RPC |");
        md.AppendLine("|---|---|---|---|---|");
        foreach (var (name, env) in variants)
        {
            var node = await RepeatAsync(() => MeasureNodeAsync(rig, initiatorFile, env));
            var controller = await RepeatAsync(() => MeasureControllerAsync(rig, env));
            md.AppendLine(CultureInfo.InvariantCulture, $"| {name} | {Stats.Median(node.Select(s => s.Memory.RssMib).ToList()):0.0} | {Stats.Median(node.Select(s => s.FirstRpcMs).ToList()):0} | {Stats.Median(controller.Select(s => s.Memory.RssMib).ToList()):0.0} | {Stats.Median(controller.Select(s => s.FirstRpcMs).ToList()):0} |");
            Console.WriteLine($"    {name}: node {Stats.Median(node.Select(s => s.Memory.RssMib).ToList()):0.0} MiB, controller {Stats.Median(controller.Select(s => s.Memory.RssMib).ToList()):0.0} MiB");
        }
        report.Detail(Section, md.ToString());
    }

    private async Task<List<Sample>> RepeatAsync(Func<Task<Sample>> measure)
    {
        var samples = new List<Sample>();
        for (var i = 0; i < settings.Runs; i++)
        {
            samples.Add(await measure());
        }
        return samples;
    }

    private static string M(List<Sample> samples, Func<MemoryReading, long> kib) =>
        (Stats.Median(samples.Select(s => (double)kib(s.Memory)).ToList()) / 1024).ToString("0.0", CultureInfo.InvariantCulture);

    private static string Spread(List<Sample> samples) =>
        $"runs {string.Join(", ", samples.Select(s => s.Memory.RssMib.ToString("0.0", CultureInfo.InvariantCulture)))} MiB";

    private async Task<Sample> MeasureNodeAsync(Rig rig, string initiatorFile, Dictionary<string, string>? env, bool warmUp = false)
    {
        var socket = Path.Combine(rig.Root, $"node-{Tools.RandomSuffix(4)}.sock");
        await using var process = new DriverProcess(settings.Binary,
            ["node", "--endpoint", "unix://" + socket, "--node-id", "bench-node", "--initiator-name-file", initiatorFile, "--log-level", "Warning"], env);
        using var channel = Channels.ForUnixSocket(socket);
        var identity = new Csi.V1.Identity.IdentityClient(channel);
        var first = await FirstCallAsync(process, () => identity.GetPluginInfoAsync(new Csi.V1.GetPluginInfoRequest()).ResponseAsync);
        var t = Stopwatch.GetTimestamp();
        await new Csi.V1.Node.NodeClient(channel).NodeGetInfoAsync(new Csi.V1.NodeGetInfoRequest());
        var second = Stopwatch.GetElapsedTime(t).TotalMilliseconds;
        return await IdleAsync(process, first, second, warmUp);
    }

    private async Task<Sample> MeasureControllerAsync(Rig rig, Dictionary<string, string>? env)
    {
        var socket = Path.Combine(rig.Root, $"ctl-{Tools.RandomSuffix(4)}.sock");
        await using var process = new DriverProcess(settings.Binary,
        [
            "controller", "--endpoint", "unix://" + socket,
            "--engine", $"{rig.NodeId}=tcp://127.0.0.1:{rig.ApiPort}",
            "--tls-ca", Path.Combine(rig.TlsDirectory, "ca.crt"),
            "--tls-cert", Path.Combine(rig.TlsDirectory, "client.crt"),
            "--tls-key", Path.Combine(rig.TlsDirectory, "client.key"),
            "--instance-id", rig.InstanceId, "--default-pool", "files", "--log-level", "Warning",
        ], env);
        using var channel = Channels.ForUnixSocket(socket);
        var identity = new Csi.V1.Identity.IdentityClient(channel);
        var first = await FirstCallAsync(process, () => identity.GetPluginInfoAsync(new Csi.V1.GetPluginInfoRequest()).ResponseAsync);
        var t = Stopwatch.GetTimestamp();
        var probe = await identity.ProbeAsync(new Csi.V1.ProbeRequest());
        var second = Stopwatch.GetElapsedTime(t).TotalMilliseconds;
        if (probe.Ready is false)
        {
            throw new InvalidOperationException("controller Probe said not ready: " + process.Tail());
        }
        // A controller at rest has its engine connection up: one capacity call settles it.
        await new Csi.V1.Controller.ControllerClient(channel).GetCapacityAsync(new Csi.V1.GetCapacityRequest());
        return await IdleAsync(process, first, second, false);
    }

    private async Task<Sample> MeasureTargetAsync(Rig rig, Dictionary<string, string>? env)
    {
        // A second engine on the same tgtd and instance would fight the rig's: give it its own instance and state.
        var port = Tools.FreePort();
        var root = Path.Combine(rig.Root, "t-" + Tools.RandomSuffix(4));
        Directory.CreateDirectory(Path.Combine(root, "pool"));
        await using var process = new DriverProcess(settings.Binary,
        [
            "target", "--listen", $"tcp://127.0.0.1:{port}",
            "--tls-ca", Path.Combine(rig.TlsDirectory, "ca.crt"),
            "--tls-cert", Path.Combine(rig.TlsDirectory, "server.crt"),
            "--tls-key", Path.Combine(rig.TlsDirectory, "server.key"),
            "--engine", "tgt", "--portal", rig.Tgtd!.Portal, "--tgt-control-port", rig.Tgtd.ControlPort.ToString(),
            "--state-dir", Path.Combine(root, "state"), "--pool", $"name=files,backend=file,path={Path.Combine(root, "pool")}",
            "--node-id", "bench-fp", "--instance-id", "f" + Tools.RandomSuffix(5), "--log-level", "Warning",
        ], env);
        var address = EndpointAddress.Tcp("127.0.0.1", port);
        // A fresh channel per attempt: a TCP channel whose first connect was refused waits out gRPC's reconnect
        // backoff (about 1 s), which would be measured as the engine's start-up time.
        var first = await FirstCallAsync(process, async () =>
        {
            using var attempt = new CsiScst.Engine.Api.EngineClient(address, rig.ClientTls());
            return await attempt.Api.GetEngineInfoAsync(new GetEngineInfoRequest());
        });
        using var client = new CsiScst.Engine.Api.EngineClient(address, rig.ClientTls());
        var t = Stopwatch.GetTimestamp();
        await client.Api.GetCapacityAsync(new GetCapacityRequest());
        var second = Stopwatch.GetElapsedTime(t).TotalMilliseconds;
        var sample = await IdleAsync(process, first, second, false);
        await process.TerminateAsync(TimeSpan.FromSeconds(30));
        Directory.Delete(root, recursive: true);
        return sample;
    }

    /// <summary>Calls as fast as the server can possibly answer; returns ms from process start to the first success.</summary>
    private static async Task<double> FirstCallAsync<T>(DriverProcess process, Func<Task<T>> call)
    {
        var deadline = Stopwatch.GetTimestamp() + (30 * Stopwatch.Frequency);
        while (true)
        {
            try
            {
                await call();
                return Stopwatch.GetElapsedTime(process.Started).TotalMilliseconds;
            }
            catch (Grpc.Core.RpcException) when (Stopwatch.GetTimestamp() < deadline && !process.Exited)
            {
                await Task.Delay(1);
            }
            catch (Grpc.Core.RpcException e)
            {
                throw new InvalidOperationException($"no first RPC: {e.Status.Detail}\n{process.Tail()}");
            }
        }
    }

    private static async Task<Sample> IdleAsync(DriverProcess process, double first, double second, bool warmUp)
    {
        if (warmUp)
        {
            return new Sample(first, second, process.Memory(), []);
        }
        await Task.Delay(Settle);
        return new Sample(first, second, process.Memory(), process.ResidentByMapping());
    }
}
