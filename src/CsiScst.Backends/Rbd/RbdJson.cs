using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace CsiScst.Backends.Rbd;

// What `rbd … --format json` and `ceph df detail --format json` print (Ceph 16, checked against real runs
// in the integration tests). Only the fields we read.

internal sealed class RbdImageInfo
{
    [JsonPropertyName("name")] public string Name { get; set; } = "";
    [JsonPropertyName("id")] public string Id { get; set; } = "";
    [JsonPropertyName("size")] public long Size { get; set; }
    [JsonPropertyName("object_size")] public long ObjectSize { get; set; }
    [JsonPropertyName("features")] public List<string> Features { get; set; } = [];
    [JsonPropertyName("parent")] public RbdParent? Parent { get; set; }
}

internal sealed class RbdParent
{
    [JsonPropertyName("pool")] public string Pool { get; set; } = "";
    [JsonPropertyName("pool_namespace")] public string PoolNamespace { get; set; } = "";
    [JsonPropertyName("image")] public string Image { get; set; } = "";
    [JsonPropertyName("snapshot")] public string Snapshot { get; set; } = "";
}

internal sealed class RbdSnapshotInfo
{
    [JsonPropertyName("id")] public long Id { get; set; }
    [JsonPropertyName("name")] public string Name { get; set; } = "";
    [JsonPropertyName("size")] public long Size { get; set; }
    /// <summary>"true" or "false" (a string in rbd's output).</summary>
    [JsonPropertyName("protected")] public string Protected { get; set; } = "false";
    /// <summary>ctime-style local time, e.g. "Wed Nov 25 08:10:07 2026" (we run rbd with TZ=UTC).</summary>
    [JsonPropertyName("timestamp")] public string Timestamp { get; set; } = "";

    [JsonIgnore] public bool IsProtected => Protected == "true";

    public static DateTimeOffset ParseTimestamp(string text)
    {
        // Collapse the double space ctime puts before one-digit days.
        var normalized = string.Join(' ', text.Split(' ', StringSplitOptions.RemoveEmptyEntries));
        return DateTimeOffset.TryParseExact(normalized, "ddd MMM d HH:mm:ss yyyy", CultureInfo.InvariantCulture,
            DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var value)
            ? value
            : DateTimeOffset.UnixEpoch;
    }
}

/// <summary>One line of <c>rbd ls -l</c>: an image, or one of its snapshots when <see cref="Snapshot"/> is set.</summary>
internal sealed class RbdListEntry
{
    [JsonPropertyName("image")] public string Image { get; set; } = "";
    [JsonPropertyName("size")] public long Size { get; set; }
    [JsonPropertyName("snapshot")] public string? Snapshot { get; set; }
}

internal sealed class RbdChild
{
    [JsonPropertyName("pool")] public string Pool { get; set; } = "";
    [JsonPropertyName("pool_namespace")] public string PoolNamespace { get; set; } = "";
    [JsonPropertyName("image")] public string Image { get; set; } = "";
}

/// <summary>One kernel mapping (<c>rbd showmapped</c>); snap is "-" for the image head.</summary>
internal sealed class RbdMapping
{
    [JsonPropertyName("id")] public string Id { get; set; } = "";
    [JsonPropertyName("pool")] public string Pool { get; set; } = "";
    [JsonPropertyName("namespace")] public string Namespace { get; set; } = "";
    [JsonPropertyName("name")] public string Name { get; set; } = "";
    [JsonPropertyName("snap")] public string Snap { get; set; } = "";
    [JsonPropertyName("device")] public string Device { get; set; } = "";
}

internal sealed class CephDf
{
    [JsonPropertyName("stats")] public CephDfStats Stats { get; set; } = new();
    [JsonPropertyName("pools")] public List<CephDfPool> Pools { get; set; } = [];
}

internal sealed class CephDfStats
{
    [JsonPropertyName("total_bytes")] public long TotalBytes { get; set; }
    [JsonPropertyName("total_avail_bytes")] public long TotalAvailableBytes { get; set; }
}

internal sealed class CephDfPool
{
    [JsonPropertyName("name")] public string Name { get; set; } = "";
    [JsonPropertyName("stats")] public CephDfPoolStats Stats { get; set; } = new();
}

internal sealed class CephDfPoolStats
{
    [JsonPropertyName("stored")] public long Stored { get; set; }
    [JsonPropertyName("objects")] public long Objects { get; set; }
    [JsonPropertyName("max_avail")] public long MaxAvailable { get; set; }
    [JsonPropertyName("quota_bytes")] public long QuotaBytes { get; set; }
    [JsonPropertyName("quota_objects")] public long QuotaObjects { get; set; }
}

[JsonSourceGenerationOptions(NumberHandling = JsonNumberHandling.AllowReadingFromString)]
[JsonSerializable(typeof(RbdImageInfo))]
[JsonSerializable(typeof(List<RbdSnapshotInfo>))]
[JsonSerializable(typeof(List<RbdListEntry>))]
[JsonSerializable(typeof(List<RbdChild>))]
[JsonSerializable(typeof(List<RbdMapping>))]
[JsonSerializable(typeof(List<string>))]
[JsonSerializable(typeof(CephDf))]
internal sealed partial class RbdJsonContext : JsonSerializerContext
{
    public static T Parse<T>(string text, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type, string what)
    {
        try
        {
            // The ceph CLI starts its JSON with a newline.
            return JsonSerializer.Deserialize(text.Trim(), type) ?? throw new JsonException("empty output");
        }
        catch (JsonException e)
        {
            throw new FormatException($"could not read the JSON of {what}: {e.Message}", e);
        }
    }

    /// <summary>rbd prints nothing at all (not "[]") for some empty lists.</summary>
    public static List<T> ParseList<T>(string text, System.Text.Json.Serialization.Metadata.JsonTypeInfo<List<T>> type, string what) =>
        text.Trim().Length == 0 ? [] : Parse(text, type, what);
}
