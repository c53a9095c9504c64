using System.Globalization;
using System.Text;

namespace CsiScst.Bench.Infra;

internal enum Verdict
{
    Met,
    Missed,
    Info,
}

/// <summary>One figure: what was measured, its value, the target, and the 1-minute load average when it was taken.</summary>
internal sealed record Figure(string Section, string Name, string Value, string Target, Verdict Verdict, double Load, string Note = "");

/// <summary>Collects the figures and extra tables of a run; prints them and writes docs/benchmarks.md.</summary>
internal sealed class Report
{
    private readonly List<Figure> _figures = [];
    private readonly List<(string Section, string Markdown)> _details = [];

    public void Add(string section, string name, string value, string target = "", Verdict verdict = Verdict.Info, string note = "")
    {
        var figure = new Figure(section, name, value, target, verdict, Tools.LoadAverage(), note);
        _figures.Add(figure);
        var mark = verdict switch { Verdict.Met => "MET   ", Verdict.Missed => "MISSED", _ => "      " };
        Console.WriteLine($"  [{mark}] {name}: {value}{(target.Length > 0 ? $"   (target {target})" : "")}   load {figure.Load:0.0}{(note.Length > 0 ? "   — " + note : "")}");
    }

    /// <summary>A figure against an upper bound.</summary>
    public void AddAtMost(string section, string name, double value, double limit, string unit, string format = "0.0", string note = "") =>
        Add(section, name, value.ToString(format, CultureInfo.InvariantCulture) + " " + unit,
            "≤ " + limit.ToString(format, CultureInfo.InvariantCulture) + " " + unit,
            double.IsNaN(value) ? Verdict.Missed : value <= limit ? Verdict.Met : Verdict.Missed, note);

    public void Detail(string section, string markdown)
    {
        _details.Add((section, markdown));
        Console.WriteLine(markdown);
    }

    public IReadOnlyList<Figure> Figures => _figures;

    public string ToMarkdown(string command, DateTimeOffset started, double loadBefore, double loadAfter, string commit, IReadOnlyList<string> sections)
    {
        var md = new StringBuilder();
        md.AppendLine("# csi-scst benchmarks");
        md.AppendLine();
        md.AppendLine("Written by `tests/bench` (`tests/bench/run.sh`, or `dotnet run -c Release --project tests/bench -- all`). Do not edit by hand: rerun it.");
        md.AppendLine("Each figure is a median of repeated runs unless it says otherwise; the load column is the 1-minute load average when");
        md.AppendLine("the figure was taken. On a shared, busy machine the timings are upper bounds: rerun on a quiet one for the real numbers.");
        md.AppendLine();
        md.AppendLine("| | |");
        md.AppendLine("|---|---|");
        md.AppendLine($"| date | {started:yyyy-MM-dd HH:mm} UTC |");
        md.AppendLine($"| command | `{command}` |");
        md.AppendLine($"| commit | `{commit}` |");
        md.AppendLine($"| machine | {Machine()} |");
        md.AppendLine($"| load average (1 min) | {loadBefore:0.0} at start, {loadAfter:0.0} at the end |");
        md.AppendLine($"| sections | {string.Join(", ", sections)} |");
        md.AppendLine();
        foreach (var section in _figures.Select(f => f.Section).Concat(_details.Select(d => d.Section)).Distinct())
        {
            md.AppendLine($"## {section}");
            md.AppendLine();
            // Each section says when and where it was measured: a later run of some sections keeps the others.
            var loads = _figures.Where(f => f.Section == section).Select(f => f.Load).DefaultIfEmpty(loadBefore).ToList();
            md.AppendLine($"_Measured {started:yyyy-MM-dd HH:mm} UTC at commit `{commit}`, load average {loads.Min():0.0}–{loads.Max():0.0}._");
            md.AppendLine();
            var figures = _figures.Where(f => f.Section == section).ToList();
            if (figures.Count > 0)
            {
                md.AppendLine("| figure | value | target | | load | note |");
                md.AppendLine("|---|---|---|---|---|---|");
                foreach (var f in figures)
                {
                    var verdict = f.Verdict switch { Verdict.Met => "met", Verdict.Missed => "**missed**", _ => "" };
                    md.AppendLine($"| {f.Name} | {f.Value} | {f.Target} | {verdict} | {f.Load:0.0} | {f.Note} |");
                }
                md.AppendLine();
            }
            foreach (var (_, detail) in _details.Where(d => d.Section == section))
            {
                md.AppendLine(detail.TrimEnd());
                md.AppendLine();
            }
        }
        return md.ToString();
    }

    /// <summary>
    /// Replaces the sections of <paramref name="previous"/> (an earlier docs/benchmarks.md) that this run measured
    /// and keeps the others, so one section can be rerun without losing the rest; the header is this run's.
    /// </summary>
    public static string Merge(string current, string previous)
    {
        static (string Head, List<(string Title, string Body)> Sections) Split(string markdown)
        {
            var parts = ("\n" + markdown).Split("\n## ");
            var sections = parts.Skip(1).Select(p => (p[..p.IndexOf('\n', StringComparison.Ordinal)], "## " + p.TrimEnd() + "\n")).ToList();
            return (parts[0].TrimStart('\n'), sections);
        }
        var (head, fresh) = Split(current);
        var (_, old) = Split(previous);
        var titles = old.Select(s => s.Title).Union(fresh.Select(s => s.Title)).ToList();
        var md = new StringBuilder(head.TrimEnd());
        md.AppendLine();
        md.AppendLine("| sections kept from an earlier run | " + string.Join(", ", old.Select(s => s.Title).Except(fresh.Select(s => s.Title))) + " (each says when it was measured) |");
        md.AppendLine();
        foreach (var title in titles)
        {
            md.AppendLine(fresh.Concat(old).First(s => s.Title == title).Body);
        }
        return md.ToString();
    }

    private static string Machine()
    {
        var cpu = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "?";
        var memKib = long.Parse(File.ReadLines("/proc/meminfo").First().Split(':')[1].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
        var kernel = File.ReadAllText("/proc/sys/kernel/osrelease").Trim();
        var os = File.Exists("/etc/os-release")
            ? File.ReadLines("/etc/os-release").FirstOrDefault(l => l.StartsWith("PRETTY_NAME=", StringComparison.Ordinal))?[12..].Trim('"') ?? "Linux"
            : "Linux";
        return $"{os}, kernel {kernel}, {Environment.ProcessorCount} CPUs ({cpu}), {memKib / 1024 / 1024.0:0} GiB, .NET {Environment.Version}";
    }
}
