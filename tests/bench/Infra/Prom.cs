using System.Globalization;

namespace CsiScst.Bench.Infra;

/// <summary>A parsed Prometheus text exposition: samples by metric name and labels.</summary>
internal sealed class Prom
{
    private readonly List<(string Name, Dictionary<string, string> Labels, double Value)> _samples = [];

    public static async Task<Prom> ScrapeAsync(int port, CancellationToken ct)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        return Parse(await http.GetStringAsync($"http://127.0.0.1:{port}/metrics", ct));
    }

    public static Prom Parse(string text)
    {
        var prom = new Prom();
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line[0] == '#')
            {
                continue;
            }
            var labels = new Dictionary<string, string>(StringComparer.Ordinal);
            string name;
            string rest;
            var brace = line.IndexOf('{');
            var space = line.IndexOf(' ');
            if (brace >= 0 && brace < space)
            {
                name = line[..brace];
                var close = line.LastIndexOf('}');
                foreach (var pair in SplitLabels(line[(brace + 1)..close]))
                {
                    var eq = pair.IndexOf('=');
                    labels[pair[..eq]] = pair[(eq + 2)..^1];
                }
                rest = line[(close + 1)..].Trim();
            }
            else
            {
                name = line[..space];
                rest = line[(space + 1)..].Trim();
            }
            var valueText = rest.Split(' ')[0];
            var value = valueText switch
            {
                "+Inf" => double.PositiveInfinity,
                "-Inf" => double.NegativeInfinity,
                "NaN" => double.NaN,
                _ => double.Parse(valueText, CultureInfo.InvariantCulture),
            };
            prom._samples.Add((name, labels, value));
        }
        return prom;
    }

    private static IEnumerable<string> SplitLabels(string text)
    {
        var start = 0;
        var quoted = false;
        for (var i = 0; i < text.Length; i++)
        {
            if (text[i] == '"' && (i == 0 || text[i - 1] != '\\'))
            {
                quoted = !quoted;
            }
            else if (text[i] == ',' && !quoted)
            {
                yield return text[start..i];
                start = i + 1;
            }
        }
        if (start < text.Length)
        {
            yield return text[start..];
        }
    }

    private static bool Matches(Dictionary<string, string> labels, (string Key, string Value)[] filter) =>
        filter.All(f => labels.TryGetValue(f.Key, out var v) && v == f.Value);

    /// <summary>Sum over every series of <paramref name="name"/> whose labels match.</summary>
    public double Sum(string name, params (string Key, string Value)[] filter) =>
        _samples.Where(s => s.Name == name && Matches(s.Labels, filter)).Sum(s => s.Value);

    /// <summary>Cumulative buckets of a histogram, summed over the matching series.</summary>
    public List<(double Le, double Count)> Buckets(string histogram, params (string Key, string Value)[] filter) =>
        _samples.Where(s => s.Name == histogram + "_bucket" && Matches(s.Labels, filter))
            .GroupBy(s => s.Labels["le"] == "+Inf" ? double.PositiveInfinity : double.Parse(s.Labels["le"], CultureInfo.InvariantCulture))
            .Select(g => (g.Key, g.Sum(s => s.Value)))
            .OrderBy(b => b.Key)
            .ToList();

    /// <summary>Distinct values of one label over a metric's series.</summary>
    public List<string> LabelValues(string name, string label) =>
        _samples.Where(s => s.Name == name && s.Labels.ContainsKey(label)).Select(s => s.Labels[label]).Distinct().Order().ToList();

    /// <summary>Bucket counts of this scrape minus an earlier one (the same histogram and filter).</summary>
    public static List<(double Le, double Count)> Delta(List<(double Le, double Count)> after, List<(double Le, double Count)> before) =>
        after.Select(a => (a.Le, a.Count - before.Where(b => b.Le == a.Le).Select(b => b.Count).DefaultIfEmpty(0).Sum())).ToList();
}
