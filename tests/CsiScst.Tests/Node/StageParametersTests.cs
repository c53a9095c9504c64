using CsiScst.Core;
using CsiScst.Core.Errors;
using CsiScst.Csi;
using CsiScst.Csi.Node;
using CsiScst.Initiator.Iscsi;
using Google.Protobuf.Collections;
using Grpc.Core;

namespace CsiScst.Tests.NodePlugin;

public sealed class StageParametersTests
{
    private const string VolumeId = "v1:csi:storage-1:lvm:vg1:0123456789abcdef";
    private static readonly DriverOptions Driver = new();
    private static readonly IscsiOptions Defaults = new();

    private static MapField<string, string> Map(params (string Key, string Value)[] pairs)
    {
        var map = new MapField<string, string>();
        foreach (var (key, value) in pairs)
        {
            map.Add(key, value);
        }
        return map;
    }

    private static IscsiVolumeTarget Parse(MapField<string, string> publish, MapField<string, string>? volume = null, MapField<string, string>? secrets = null, string volumeId = VolumeId) =>
        StageParameters.Parse(volumeId, publish, volume ?? Map(), secrets ?? Map(), Driver, Defaults);

    [Fact]
    public void Publish_context_gives_portals_iqn_and_lun_and_the_serial_comes_from_the_volume_context()
    {
        var target = Parse(
            Map((VolumeContextKeys.Portals, "10.0.0.5:3260,10.0.0.6:3260"), (VolumeContextKeys.TargetIqn, "iqn.2026-11.io.csi-scst:csi.0123456789abcdef"), (VolumeContextKeys.Lun, "1")),
            Map((VolumeContextKeys.Serial, "CS0123456789abcdef")));
        Assert.Equal("iqn.2026-11.io.csi-scst:csi.0123456789abcdef", target.TargetIqn);
        Assert.Equal([Portal.Parse("10.0.0.5"), Portal.Parse("10.0.0.6")], target.Portals);
        Assert.Equal(1, target.Lun);
        Assert.Equal("CS0123456789abcdef", target.Serial);
        Assert.True(target.IsMultipath);
        Assert.Equal(Defaults.MultipathReplacementTimeout, target.Settings.ReplacementTimeout);
        Assert.Null(target.Chap);
    }

    [Fact]
    public void Iqn_and_serial_are_derived_from_our_volume_id_when_absent()
    {
        var target = Parse(Map((VolumeContextKeys.Portals, "10.0.0.5"), (VolumeContextKeys.Lun, "0")));
        Assert.Equal("iqn.2026-11.io.csi-scst:csi.0123456789abcdef", target.TargetIqn);
        Assert.Equal("CS0123456789abcdef", target.Serial);
        Assert.Equal(Defaults.ReplacementTimeout, target.Settings.ReplacementTimeout);
    }

    [Fact]
    public void Volume_context_overrides_the_iscsi_settings_within_bounds()
    {
        var target = Parse(
            Map((VolumeContextKeys.Portals, "10.0.0.5"), (VolumeContextKeys.Lun, "0")),
            Map((VolumeContextKeys.ReplacementTimeout, "30"), (VolumeContextKeys.LoginTimeout, "5"), (VolumeContextKeys.LoginRetries, "0"),
                (VolumeContextKeys.NoopOutInterval, "2"), (VolumeContextKeys.NoopOutTimeout, "3")));
        Assert.Equal(new NodeRecordSettings(30, 5, 0, 2, 3), target.Settings);

        var e = Assert.Throws<StatusException>(() => Parse(Map((VolumeContextKeys.Portals, "10.0.0.5"), (VolumeContextKeys.Lun, "0")), Map((VolumeContextKeys.LoginTimeout, "0"))));
        Assert.Equal(StatusCode.InvalidArgument, e.Code);
        Assert.Contains(VolumeContextKeys.LoginTimeout, e.Message);
    }

    [Theory]
    [InlineData(VolumeContextKeys.Portals, "10.0.0.5:99999", "is not a list of portals")]
    [InlineData(VolumeContextKeys.Lun, "x", "LUN number")]
    [InlineData(VolumeContextKeys.Lun, "16384", "LUN number")]
    [InlineData(VolumeContextKeys.TargetIqn, "not an iqn", "not a valid iSCSI name")]
    public void Bad_values_are_invalid_arguments_naming_the_key(string key, string value, string message)
    {
        var publish = Map((VolumeContextKeys.Portals, "10.0.0.5"), (VolumeContextKeys.Lun, "0"));
        publish[key] = value;
        var e = Assert.Throws<StatusException>(() => Parse(publish));
        Assert.Equal(StatusCode.InvalidArgument, e.Code);
        Assert.Contains(key, e.Message);
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void A_foreign_volume_id_needs_iqn_and_serial_in_the_contexts()
    {
        var publish = Map((VolumeContextKeys.Portals, "10.0.0.5"), (VolumeContextKeys.Lun, "0"));
        var e = Assert.Throws<StatusException>(() => Parse(publish, volumeId: "static-pv-1"));
        Assert.Contains(VolumeContextKeys.TargetIqn, e.Message);
        publish[VolumeContextKeys.TargetIqn] = "iqn.2001-01.com.example:disk1";
        e = Assert.Throws<StatusException>(() => Parse(publish, volumeId: "static-pv-1"));
        Assert.Contains(VolumeContextKeys.Serial, e.Message);
        var target = Parse(publish, Map((VolumeContextKeys.Serial, "ABC123")), volumeId: "static-pv-1");
        Assert.Equal("ABC123", target.Serial);
    }

    [Fact]
    public void Chap_comes_from_the_node_stage_secret_and_is_never_echoed()
    {
        var publish = Map((VolumeContextKeys.Portals, "10.0.0.5"), (VolumeContextKeys.Lun, "0"));
        var chap = Parse(publish, secrets: Map(("username", "u1"), ("password", "p1-secret"), ("username_in", "t1"), ("password_in", "p2-secret"))).Chap;
        Assert.Equal(new ChapCredentials("u1", "p1-secret", "t1", "p2-secret"), chap);
        Assert.DoesNotContain("secret", chap!.ToString());

        var alias = Parse(publish, secrets: Map(("node.session.auth.username", "u1"), ("node.session.auth.password", "p1-secret"))).Chap;
        Assert.Equal(new ChapCredentials("u1", "p1-secret", null, null), alias);

        var half = Assert.Throws<StatusException>(() => Parse(publish, secrets: Map(("password", "lonely-secret"))));
        Assert.Contains("only the password", half.Message);
        Assert.DoesNotContain("lonely-secret", half.Message);
        var mutualHalf = Assert.Throws<StatusException>(() => Parse(publish, secrets: Map(("username", "u"), ("password", "p"), ("username_in", "t"))));
        Assert.Contains("password_in", mutualHalf.Message);
    }

    [Theory]
    [InlineData("snapshot", true)]
    [InlineData("volume", true)]
    [InlineData("", false)]
    [InlineData("other", false)]
    public void Copies_are_recognized_for_xfs_nouuid(string source, bool copy)
    {
        Assert.Equal(copy, StageParameters.IsCopy(Map((VolumeContextKeys.ContentSource, source))));
    }

    [Fact]
    public void A_volume_that_requires_chap_needs_the_node_stage_secret()
    {
        var publish = Map((VolumeContextKeys.Portals, "10.0.0.5"), (VolumeContextKeys.Lun, "0"));
        var none = Assert.Throws<StatusException>(() => Parse(publish, Map((VolumeContextKeys.Chap, "chap"))));
        Assert.Equal(StatusCode.FailedPrecondition, none.Code);
        Assert.Contains("node-stage-secret-name", none.Message);
        var oneWay = Assert.Throws<StatusException>(() => Parse(publish, Map((VolumeContextKeys.Chap, "mutual")), Map(("username", "u"), ("password", "p"))));
        Assert.Contains("mutual", oneWay.Message);
        Assert.NotNull(Parse(publish, Map((VolumeContextKeys.Chap, "mutual")), Map(("username", "u"), ("password", "p"), ("username_in", "t"), ("password_in", "q"))).Chap);
        Assert.Null(Parse(publish, Map((VolumeContextKeys.Chap, "none"))).Chap);
    }

    [Theory]
    [InlineData("xfs", "ext4", "xfs")]
    [InlineData("", "xfs", "xfs")]
    [InlineData("", "", "")]
    public void The_capability_fs_type_wins_over_the_storage_class_hint(string capability, string hint, string expected)
    {
        Assert.Equal(expected, StageParameters.RequestedFsType(capability, hint.Length > 0 ? Map((VolumeContextKeys.FsType, hint)) : Map()));
    }
}
