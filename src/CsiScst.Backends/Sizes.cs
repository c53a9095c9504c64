using System.Globalization;
using CsiScst.Core.Errors;

namespace CsiScst.Backends;

/// <summary>Byte arithmetic and the way sizes appear in messages ("1073741824 bytes (1 GiB)").</summary>
internal static class Sizes
{
    public const long KiB = 1024;
    public const long MiB = 1024 * KiB;
    public const long GiB = 1024 * MiB;

    public static long RoundUp(long value, long granularity)
    {
        if (granularity <= 1 || value % granularity == 0)
        {
            return value;
        }
        var rounded = (value / granularity + 1) * granularity;
        if (rounded < value)
        {
            throw StatusException.OutOfRange($"size {value} bytes rounded up to a multiple of {granularity} overflows");
        }
        return rounded;
    }

    public static string Format(long bytes)
    {
        string[] units = ["KiB", "MiB", "GiB", "TiB", "PiB"];
        if (Math.Abs(bytes) < KiB)
        {
            return $"{bytes} bytes";
        }
        double value = bytes;
        var unit = -1;
        while (Math.Abs(value) >= 1024 && unit < units.Length - 1)
        {
            value /= 1024;
            unit++;
        }
        return string.Create(CultureInfo.InvariantCulture, $"{bytes} bytes ({value:0.##} {units[unit]})");
    }

    /// <summary>Parses "4096", "4K", "4KiB", "4M", "1G" … (binary multiples).</summary>
    public static bool TryParse(string text, out long bytes)
    {
        bytes = 0;
        var span = text.AsSpan().Trim();
        if (span.EndsWith("iB", StringComparison.Ordinal))
        {
            span = span[..^2];
        }
        else if (span.EndsWith("B", StringComparison.Ordinal))
        {
            span = span[..^1];
        }
        long multiplier = 1;
        if (span.Length > 0 && char.IsAsciiLetter(span[^1]))
        {
            multiplier = char.ToUpperInvariant(span[^1]) switch
            {
                'K' => KiB,
                'M' => MiB,
                'G' => GiB,
                'T' => 1024 * GiB,
                _ => 0,
            };
            span = span[..^1];
        }
        if (multiplier == 0 || !long.TryParse(span, NumberStyles.None, CultureInfo.InvariantCulture, out var number))
        {
            return false;
        }
        try
        {
            bytes = checked(number * multiplier);
            return true;
        }
        catch (OverflowException)
        {
            return false;
        }
    }
}
