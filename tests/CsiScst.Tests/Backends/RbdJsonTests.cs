using CsiScst.Backends.Rbd;

namespace CsiScst.Tests.Backends;

/// <summary>
/// Parsing of rbd's JSON against real output recorded in the test VM by tests/fixtures/capture-vm.sh (krbd
/// mappings exist only there). The commands themselves run against a real cluster in the integration tests.
/// </summary>
public sealed class RbdJsonTests
{
    private readonly CapturedToolRunner _captures = new("captures");

    [Fact]
    public void Showmapped_lists_each_mapping_and_a_second_map_of_one_image_is_a_second_device()
    {
        var one = RbdJsonContext.ParseList(_captures["rbd-showmapped-json"].StandardOutput, RbdJsonContext.Default.ListRbdMapping, "showmapped");
        var mapping = Assert.Single(one);
        Assert.Equal(("rbd", "", "csi-csi-5555555555555555", "-", "/dev/rbd0"), (mapping.Pool, mapping.Namespace, mapping.Name, mapping.Snap, mapping.Device));
        Assert.Equal(_captures["rbd-map"].StandardOutput.Trim(), mapping.Device);

        // rbd map does not reuse a mapping: that is why AttachAsync reads showmapped first and DetachAsync unmaps all.
        var twice = RbdJsonContext.ParseList(_captures["rbd-showmapped-json-twice"].StandardOutput, RbdJsonContext.Default.ListRbdMapping, "showmapped");
        Assert.Equal(["/dev/rbd0", "/dev/rbd1"], twice.Select(m => m.Device));
        Assert.All(twice, m => Assert.Equal("csi-csi-5555555555555555", m.Name));

        Assert.Empty(RbdJsonContext.ParseList(_captures["rbd-showmapped-json-none"].StandardOutput, RbdJsonContext.Default.ListRbdMapping, "showmapped"));
    }

    [Fact]
    public void Info_gives_size_object_size_features_and_no_parent_for_a_plain_image()
    {
        var info = RbdJsonContext.Parse(_captures["rbd-info-json"].StandardOutput, RbdJsonContext.Default.RbdImageInfo, "info");
        Assert.Equal(("csi-csi-5555555555555555", 64L * 1024 * 1024, 4L * 1024 * 1024), (info.Name, info.Size, info.ObjectSize));
        Assert.Contains("layering", info.Features);
        Assert.Null(info.Parent);
    }

    [Theory]
    [InlineData("Wed Nov 25 08:07:17 2026", 2026, 11, 25, 8, 7, 17)]
    [InlineData("Thu Nov  5 18:00:01 2026", 2026, 11, 5, 18, 0, 1)]
    public void Snapshot_timestamps_in_ctime_form_are_read_as_utc(string text, int year, int month, int day, int hour, int minute, int second)
    {
        Assert.Equal(new DateTimeOffset(year, month, day, hour, minute, second, TimeSpan.Zero), RbdSnapshotInfo.ParseTimestamp(text));
    }

    [Fact]
    public void Error_tails_keep_rbds_own_lines()
    {
        foreach (var name in new[] { "rbd-map-missing", "rbd-unmap-not-mapped", "rbd-map-again" })
        {
            var stderr = _captures[name].StandardError;
            var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            Assert.Equal(string.Join(" | ", lines.TakeLast(3)), RbdCli.Tail(stderr));
        }
    }
}
