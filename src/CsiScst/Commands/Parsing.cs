using System.Globalization;

namespace CsiScst.Commands;

/// <summary>Small parsers for command-line values.</summary>
internal static class Parsing
{
    /// <summary>Bytes from "1073741824", "512Mi", "1Gi", "100M", "2G", "1Ti".</summary>
    public static bool TryParseSize(string text, out long bytes)
    {
        bytes = 0;
        text = text.Trim();
        var split = text.Length;
        while (split > 0 && !char.IsAsciiDigit(text[split - 1]))
        {
            split--;
        }
        if (split == 0 || !long.TryParse(text[..split], NumberStyles.None, CultureInfo.InvariantCulture, out var number))
        {
            return false;
        }
        long multiplier = text[split..] switch
        {
            "" or "B" => 1,
            "K" or "k" => 1000,
            "M" => 1000 * 1000,
            "G" => 1000L * 1000 * 1000,
            "T" => 1000L * 1000 * 1000 * 1000,
            "Ki" => 1L << 10,
            "Mi" => 1L << 20,
            "Gi" => 1L << 30,
            "Ti" => 1L << 40,
            _ => 0,
        };
        if (multiplier == 0 || number > long.MaxValue / multiplier)
        {
            return false;
        }
        bytes = number * multiplier;
        return true;
    }

    /// <summary>"key=value" pairs into a dictionary; the value may contain '='.</summary>
    public static Dictionary<string, string> ParsePairs(IEnumerable<string>? pairs, string option)
    {
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var pair in pairs ?? [])
        {
            var eq = pair.IndexOf('=');
            if (eq <= 0)
            {
                throw new FormatException($"{option} '{pair}' must be key=value");
            }
            map[pair[..eq]] = pair[(eq + 1)..];
        }
        return map;
    }
}
