using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace CsiScst.IntegrationTests.Packaging;

/// <summary>
/// docs/metrics.md against the code and against real /metrics output: every metric the source creates is
/// documented, every label a real series carries is listed, and the Grafana dashboard only queries real metrics.
/// </summary>
public static partial class MetricsDocumentation
{
    public sealed record Documented(string Name, string Type, IReadOnlySet<string> Labels);

    public static string DocPath => RepoPaths.Combine("docs", "metrics.md");

    /// <summary>Rows of the tables in docs/metrics.md: | `name` | type | `label`, `label` | meaning |.</summary>
    public static IReadOnlyDictionary<string, Documented> Load()
    {
        var rows = new Dictionary<string, Documented>(StringComparer.Ordinal);
        foreach (Match row in RowPattern().Matches(File.ReadAllText(DocPath)))
        {
            var labels = LabelPattern().Matches(row.Groups[3].Value).Select(m => m.Groups[1].Value).ToHashSet(StringComparer.Ordinal);
            rows[row.Groups[1].Value] = new Documented(row.Groups[1].Value, row.Groups[2].Value.Trim(), labels);
        }
        return rows;
    }

    /// <summary>Metric names the source creates ("csi_scst_…" literals in src/**/*.cs).</summary>
    public static IReadOnlySet<string> InSource()
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var file in Directory.EnumerateFiles(RepoPaths.Combine("src"), "*.cs", SearchOption.AllDirectories)
                     .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal)))
        {
            foreach (Match m in SourceNamePattern().Matches(File.ReadAllText(file)))
            {
                names.Add(m.Groups[1].Value);
            }
        }
        return names;
    }

    /// <summary>Every csi_scst_ series in a real /metrics text is documented with exactly its labels.</summary>
    public static void AssertDocumented(string exposition)
    {
        var documented = Load();
        var seen = 0;
        foreach (Match sample in SamplePattern().Matches(exposition))
        {
            var family = Family(sample.Groups[1].Value);
            Assert.True(documented.TryGetValue(family, out var row), $"{family} is exposed but not documented in docs/metrics.md");
            var labels = LabelNamePattern().Matches(sample.Groups[2].Value).Select(m => m.Groups[1].Value).Where(l => l != "le").ToHashSet(StringComparer.Ordinal);
            Assert.True(labels.SetEquals(row!.Labels), $"{family} is exposed with labels [{string.Join(", ", labels.Order())}], documented with [{string.Join(", ", row.Labels.Order())}]");
            seen++;
        }
        Assert.True(seen > 0, "no csi_scst_ series in the exposition");
    }

    /// <summary>Names used in the dashboard's queries, without the histogram suffixes.</summary>
    public static IReadOnlySet<string> InDashboard(string json)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var expr in Expressions(JsonNode.Parse(json)!))
        {
            foreach (Match m in QueryNamePattern().Matches(expr))
            {
                names.Add(Family(m.Value));
            }
        }
        return names;
    }

    private static IEnumerable<string> Expressions(JsonNode node)
    {
        switch (node)
        {
            case JsonObject o:
                foreach (var (key, value) in o)
                {
                    if (key == "expr" && value is JsonValue v && v.TryGetValue<string>(out var s))
                    {
                        yield return s;
                    }
                    else if (value is not null)
                    {
                        foreach (var e in Expressions(value))
                        {
                            yield return e;
                        }
                    }
                }
                break;
            case JsonArray a:
                foreach (var item in a.Where(i => i is not null))
                {
                    foreach (var e in Expressions(item!))
                    {
                        yield return e;
                    }
                }
                break;
        }
    }

    public static string Family(string sample)
    {
        foreach (var suffix in new[] { "_bucket", "_sum", "_count" })
        {
            if (sample.EndsWith(suffix, StringComparison.Ordinal) && sample.Contains("_seconds", StringComparison.Ordinal))
            {
                return sample[..^suffix.Length];
            }
        }
        return sample;
    }

    [GeneratedRegex(@"^\|\s*`(csi_scst_[a-z_]+)`\s*\|([^|]*)\|([^|]*)\|", RegexOptions.Multiline)]
    private static partial Regex RowPattern();

    [GeneratedRegex("`([a-z_]+)`")]
    private static partial Regex LabelPattern();

    [GeneratedRegex("\"(csi_scst_[a-z_]+)\"")]
    private static partial Regex SourceNamePattern();

    [GeneratedRegex(@"^(csi_scst_[a-z_]+)(?:\{([^}]*)\})? ", RegexOptions.Multiline)]
    private static partial Regex SamplePattern();

    [GeneratedRegex(@"([a-z_]+)=""")]
    private static partial Regex LabelNamePattern();

    [GeneratedRegex("csi_scst_[a-z_]+")]
    private static partial Regex QueryNamePattern();
}
