using Csi.V1;
using CsiScst.Core.Errors;

namespace CsiScst.Csi.Controller;

/// <summary>Volume sizes: the default when none is asked, rounded up to the pool's granularity, within the limit.</summary>
public static class Capacity
{
    /// <summary>
    /// The size to ask the engine for. <paramref name="minimum"/> is the content source's size (a copy is never
    /// smaller than what it copies). OUT_OF_RANGE when no multiple of the granularity fits the range.
    /// </summary>
    public static long Choose(CapacityRange? range, long defaultBytes, long granularity, long minimum = 0)
    {
        granularity = Math.Max(1, granularity);
        var required = range?.RequiredBytes ?? 0;
        var limit = range?.LimitBytes ?? 0;
        long size;
        if (required == 0 && minimum == 0)
        {
            size = limit > 0 ? Math.Min(defaultBytes, limit) : defaultBytes;
            size = RoundUp(size, granularity);
            if (limit > 0 && size > limit)
            {
                size = limit / granularity * granularity;
            }
            if (size == 0)
            {
                throw StatusException.OutOfRange(
                    $"capacity_range.limit_bytes {limit} is smaller than the pool's allocation unit of {granularity} bytes; no volume fits");
            }
            return size;
        }
        var wanted = Math.Max(required, minimum);
        size = RoundUp(wanted, granularity);
        if (limit > 0 && size > limit)
        {
            var why = minimum > required ? $"the content source's size {minimum}" : $"required_bytes {required}";
            throw StatusException.OutOfRange(
                $"{why} rounded up to the pool's allocation unit of {granularity} bytes is {size}, above capacity_range.limit_bytes {limit}");
        }
        return size;
    }

    public static long RoundUp(long bytes, long granularity)
    {
        var remainder = bytes % granularity;
        if (remainder == 0)
        {
            return bytes;
        }
        if (bytes > long.MaxValue - granularity)
        {
            throw StatusException.OutOfRange($"{bytes} bytes is too large");
        }
        return bytes - remainder + granularity;
    }
}
