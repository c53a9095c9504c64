namespace CsiScst.Bench.Infra;

/// <summary>Medians and percentiles of repeated measurements, and quantiles from Prometheus histogram buckets.</summary>
internal static class Stats
{
    public static double Median(IReadOnlyCollection<double> values)
    {
        if (values.Count == 0)
        {
            return double.NaN;
        }
        var sorted = values.Order().ToArray();
        var mid = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }

    /// <summary>Nearest-rank percentile (p in 0..100).</summary>
    public static double Percentile(IReadOnlyCollection<double> values, double p)
    {
        if (values.Count == 0)
        {
            return double.NaN;
        }
        var sorted = values.Order().ToArray();
        var rank = (int)Math.Ceiling(p / 100 * sorted.Length);
        return sorted[Math.Clamp(rank - 1, 0, sorted.Length - 1)];
    }

    /// <summary>
    /// The q-quantile of a cumulative histogram (upper bound, count) the way Prometheus' histogram_quantile
    /// does it: linear interpolation inside the bucket that holds the rank.
    /// </summary>
    public static double HistogramQuantile(IReadOnlyList<(double Le, double Count)> buckets, double q)
    {
        if (buckets.Count == 0 || buckets[^1].Count <= 0)
        {
            return double.NaN;
        }
        var total = buckets[^1].Count;
        var rank = q * total;
        double previousLe = 0, previousCount = 0;
        foreach (var (le, count) in buckets)
        {
            if (count >= rank)
            {
                if (double.IsPositiveInfinity(le))
                {
                    return previousLe;
                }
                var inBucket = count - previousCount;
                return inBucket <= 0 ? le : previousLe + ((le - previousLe) * (rank - previousCount) / inBucket);
            }
            previousLe = le;
            previousCount = count;
        }
        return previousLe;
    }

    /// <summary>Share of observations at or below <paramref name="le"/> (which must be a bucket bound).</summary>
    public static double FractionAtOrBelow(IReadOnlyList<(double Le, double Count)> buckets, double le)
    {
        if (buckets.Count == 0 || buckets[^1].Count <= 0)
        {
            return double.NaN;
        }
        var at = buckets.Where(b => b.Le <= le + 1e-12).Select(b => b.Count).DefaultIfEmpty(0).Max();
        return at / buckets[^1].Count;
    }
}
