using System.Diagnostics;
using CsiScst.Bench;
using CsiScst.Bench.Infra;

// csi-scst-bench [all|footprint|overhead|concurrency|scale]... [--binary PATH] [--runs N] [--quick] [--out FILE] [--no-write]
// Measures the real csi-scst binary (run.sh publishes it with Native AOT) and writes docs/benchmarks.md.
var sections = new List<string>();
string? binary = Environment.GetEnvironmentVariable("CSI_SCST_BINARY");
string? output = null;
var runs = 5;
var quick = false;
var write = true;
for (var i = 0; i < args.Length; i++)
{
    string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
    switch (args[i])
    {
        case "all" or "footprint" or "overhead" or "concurrency" or "scale":
            sections.Add(args[i]);
            break;
        case "--binary":
            binary = Next();
            break;
        case "--runs":
            runs = int.Parse(Next(), System.Globalization.CultureInfo.InvariantCulture);
            break;
        case "--quick":
            quick = true;
            break;
        case "--out":
            output = Next();
            break;
        case "--no-write":
            write = false;
            break;
        default:
            Console.Error.WriteLine($"unknown argument '{args[i]}'\nusage: csi-scst-bench [all|footprint|overhead|concurrency|scale]... [--binary PATH] [--runs N] [--quick] [--out FILE] [--no-write]");
            return 2;
    }
}
if (sections.Count == 0 || sections.Contains("all"))
{
    sections = ["footprint", "overhead", "concurrency", "scale"];
}

var repo = FindRepository();
binary ??= Path.Combine(repo, "artifacts", "bench", "aot", "csi-scst");
if (!File.Exists(binary))
{
    Console.Error.WriteLine($"no csi-scst binary at {binary}: run tests/bench/run.sh (publishes it with Native AOT) or pass --binary");
    return 2;
}
if (Environment.UserName != "root" || !File.Exists("/dev/fuse"))
{
    Console.Error.WriteLine("the bench needs root (tgtd, FUSE for the SCST model) and /dev/fuse");
    return 2;
}
output ??= Path.Combine(repo, "docs", "benchmarks.md");

var work = Path.Combine(Path.GetTempPath(), "csi-scst-bench-" + Tools.RandomSuffix(6));
Directory.CreateDirectory(work);
var settings = new BenchSettings(Path.GetFullPath(binary), work, quick ? Math.Min(runs, 3) : runs, quick);
var report = new Report();
var started = DateTimeOffset.UtcNow;
var loadBefore = Tools.LoadAverage();
// The commit that was measured: taken now, not when the run ends (the tree may move on meanwhile).
var commit = await CommitAsync(repo);
Console.WriteLine($"csi-scst bench: {string.Join(", ", sections)}; binary {settings.Binary}; {settings.Runs} runs per figure; load {loadBefore:0.0}");
var failed = false;
try
{
    foreach (var section in sections)
    {
        var clock = Stopwatch.StartNew();
        try
        {
            switch (section)
            {
                case "footprint":
                    await new FootprintBench(settings, report).RunAsync();
                    break;
                case "overhead":
                    await new OverheadBench(settings, report).RunAsync();
                    break;
                case "concurrency":
                    await new ConcurrencyBench(settings, report).RunAsync();
                    break;
                case "scale":
                    await new ScaleBench(settings, report).RunAsync();
                    break;
            }
        }
        catch (Exception e) when (e is InvalidOperationException or TimeoutException or IOException or Grpc.Core.RpcException or HttpRequestException)
        {
            // One broken section must not hide the others' figures.
            failed = true;
            Console.Error.WriteLine($"section {section} failed: {e}");
            report.Add(char.ToUpperInvariant(section[0]) + section[1..], "section failed", e.GetType().Name, verdict: Verdict.Missed, note: e.Message.Split('\n')[0]);
        }
        Console.WriteLine($"   ({section} took {clock.Elapsed.TotalSeconds:0} s)");
    }
}
finally
{
    Directory.Delete(work, recursive: true);
}

var loadAfter = Tools.LoadAverage();
var command = "dotnet run -c Release --project tests/bench -- " + string.Join(' ', args);
if (write)
{
    var markdown = report.ToMarkdown(command, started, loadBefore, loadAfter, commit, sections);
    if (sections.Count < 4 && File.Exists(output))
    {
        markdown = Report.Merge(markdown, await File.ReadAllTextAsync(output));
    }
    await File.WriteAllTextAsync(output, markdown);
    Console.WriteLine($"wrote {output}");
}
var met = report.Figures.Count(f => f.Verdict == Verdict.Met);
var missed = report.Figures.Count(f => f.Verdict == Verdict.Missed);
Console.WriteLine($"targets: {met} met, {missed} missed; load {loadBefore:0.0} → {loadAfter:0.0}");
return failed ? 1 : 0;

static string FindRepository()
{
    for (var dir = new DirectoryInfo(Environment.CurrentDirectory); dir is not null; dir = dir.Parent)
    {
        if (File.Exists(Path.Combine(dir.FullName, "CsiScst.sln")))
        {
            return dir.FullName;
        }
    }
    return Environment.CurrentDirectory;
}

static async Task<string> CommitAsync(string repo)
{
    try
    {
        var head = await Tools.RunAsync("git", ["-C", repo, "rev-parse", "--short=12", "HEAD"]);
        var status = await Tools.RunAsync("git", ["-C", repo, "status", "--porcelain", "--untracked-files=no"]);
        var dirty = status.Stdout.Split('\n').Any(l => l.Length > 0 && !l.EndsWith("docs/benchmarks.md", StringComparison.Ordinal));
        return head.Stdout.Trim() + (dirty ? " (with uncommitted changes)" : "");
    }
    catch (System.ComponentModel.Win32Exception)
    {
        return "unknown";
    }
}
