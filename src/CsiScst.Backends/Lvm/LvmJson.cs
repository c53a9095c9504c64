using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace CsiScst.Backends.Lvm;

// lvm2's JSON reports (`--reportformat json --units b --nosuffix`): every value is a string, sizes in
// bytes, percentages with two decimals, empty strings for "not applicable". Shapes checked against the
// captures in tests/fixtures/captures (lvm2 2.03.16).

internal sealed class LvmReport<T>
{
    [JsonPropertyName("report")] public List<LvmReportSection<T>> Report { get; set; } = [];
}

internal sealed class LvmReportSection<T>
{
    [JsonPropertyName("lv")] public List<T>? Lv { get; set; }
    [JsonPropertyName("vg")] public List<T>? Vg { get; set; }
}

/// <summary>One row of <c>lvs -o <see cref="Fields"/></c>.</summary>
internal sealed class LvmLv
{
    public const string Fields = "lv_name,vg_name,lv_size,lv_attr,lv_tags,pool_lv,origin,data_percent,metadata_percent,snap_percent,lv_uuid,lv_path,lv_dm_path,lv_active,lv_layout,lv_role";

    /// <summary>What the backend asks for: <see cref="Fields"/> plus creation time and a COW snapshot's origin size.</summary>
    public const string ReportFields = Fields + ",lv_time,origin_size";

    [JsonPropertyName("lv_name")] public string Name { get; set; } = "";
    [JsonPropertyName("vg_name")] public string VolumeGroup { get; set; } = "";
    [JsonPropertyName("lv_size")] public string SizeText { get; set; } = "0";
    [JsonPropertyName("lv_attr")] public string Attributes { get; set; } = "";
    [JsonPropertyName("lv_tags")] public string TagsText { get; set; } = "";
    [JsonPropertyName("pool_lv")] public string PoolLv { get; set; } = "";
    [JsonPropertyName("origin")] public string Origin { get; set; } = "";
    [JsonPropertyName("data_percent")] public string DataPercentText { get; set; } = "";
    [JsonPropertyName("snap_percent")] public string SnapPercentText { get; set; } = "";
    [JsonPropertyName("lv_path")] public string Path { get; set; } = "";
    [JsonPropertyName("lv_active")] public string Active { get; set; } = "";
    [JsonPropertyName("lv_layout")] public string Layout { get; set; } = "";
    /// <summary>"2026-11-25 08:10:07 +0000".</summary>
    [JsonPropertyName("lv_time")] public string TimeText { get; set; } = "";
    [JsonPropertyName("origin_size")] public string OriginSizeText { get; set; } = "";

    [JsonIgnore] public long OriginSize => LvmNumbers.Bytes(OriginSizeText);

    [JsonIgnore] public DateTimeOffset CreatedAt => LvmNumbers.Time(TimeText);

    [JsonIgnore] public long Size => LvmNumbers.Bytes(SizeText);

    [JsonIgnore] public IReadOnlyList<string> Tags => TagsText.Split(',', StringSplitOptions.RemoveEmptyEntries);

    [JsonIgnore] public double? DataPercent => LvmNumbers.Percent(DataPercentText);

    /// <summary>lv_attr[0]: 't' thin pool, 'V' thin volume, 's' COW snapshot, 'o' origin, '-' plain.</summary>
    [JsonIgnore] public char VolumeType => Attributes.Length > 0 ? Attributes[0] : '-';

    /// <summary>lv_attr[4] 'I' or 'S': a COW snapshot that overflowed its space or is otherwise invalid.</summary>
    [JsonIgnore] public bool IsInvalidSnapshot => Attributes.Length > 4 && Attributes[4] is 'I' or 'S';

    /// <summary>lv_attr[9] 'k': activation is skipped unless asked with -K (thin snapshots).</summary>
    [JsonIgnore] public bool SkipsActivation => Attributes.Length > 9 && Attributes[9] == 'k';

    [JsonIgnore] public bool IsActive => Active == "active";

    [JsonIgnore] public bool IsThinPool => VolumeType == 't';
}

/// <summary>One row of <c>vgs -o <see cref="Fields"/></c>.</summary>
internal sealed class LvmVg
{
    public const string Fields = "vg_name,vg_size,vg_free,vg_extent_size,vg_extent_count,vg_free_count,lv_count,snap_count,vg_attr,vg_tags,vg_uuid";

    [JsonPropertyName("vg_name")] public string Name { get; set; } = "";
    [JsonPropertyName("vg_size")] public string SizeText { get; set; } = "0";
    [JsonPropertyName("vg_free")] public string FreeText { get; set; } = "0";
    [JsonPropertyName("vg_extent_size")] public string ExtentSizeText { get; set; } = "0";

    [JsonIgnore] public long Size => LvmNumbers.Bytes(SizeText);
    [JsonIgnore] public long Free => LvmNumbers.Bytes(FreeText);
    [JsonIgnore] public long ExtentSize => LvmNumbers.Bytes(ExtentSizeText);
}

internal static class LvmNumbers
{
    public static long Bytes(string text) =>
        long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) ? value : 0;

    public static DateTimeOffset Time(string text) =>
        DateTimeOffset.TryParseExact(InsertColon(text), "yyyy-MM-dd HH:mm:ss zzz", CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal, out var value)
            ? value
            : DateTimeOffset.UnixEpoch;

    // "+0000" -> "+00:00", the offset form .NET parses.
    private static string InsertColon(string text) =>
        text.Length > 5 && text[^5] is '+' or '-' ? text[..^2] + ":" + text[^2..] : text;

    public static double? Percent(string text) =>
        double.TryParse(text, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var value) ? value : null;
}

[JsonSerializable(typeof(LvmReport<LvmLv>))]
[JsonSerializable(typeof(LvmReport<LvmVg>))]
internal sealed partial class LvmJsonContext : JsonSerializerContext
{
    public static List<LvmLv> ParseLvs(string text)
    {
        var report = Deserialize(text, Default.LvmReportLvmLv);
        return report.Report.SelectMany(s => s.Lv ?? []).ToList();
    }

    public static List<LvmVg> ParseVgs(string text)
    {
        var report = Deserialize(text, Default.LvmReportLvmVg);
        return report.Report.SelectMany(s => s.Vg ?? []).ToList();
    }

    private static T Deserialize<T>(string text, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type)
    {
        try
        {
            return JsonSerializer.Deserialize(text, type) ?? throw new JsonException("empty report");
        }
        catch (JsonException e)
        {
            throw new FormatException($"could not read lvm2's JSON report: {e.Message}", e);
        }
    }
}
