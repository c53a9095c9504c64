using CsiScst.Initiator.Devices;
using CsiScst.Initiator.Iscsi;

namespace CsiScst.Tests.NodePlugin;

public sealed class PortalAndByPathTests
{
    [Theory]
    [InlineData("10.0.0.5:3260", "10.0.0.5", 3260, "10.0.0.5:3260")]
    [InlineData("10.0.0.5", "10.0.0.5", 3260, "10.0.0.5:3260")]
    [InlineData(" 10.0.0.5:3261 ", "10.0.0.5", 3261, "10.0.0.5:3261")]
    [InlineData("[fd00::5]:3260", "fd00::5", 3260, "[fd00::5]:3260")]
    [InlineData("[FD00:0::5]", "fd00::5", 3260, "[fd00::5]:3260")]
    [InlineData("fd00::5", "fd00::5", 3260, "[fd00::5]:3260")]
    [InlineData("storage-1.example:3260", "storage-1.example", 3260, "storage-1.example:3260")]
    public void Portals_parse_and_normalize(string text, string address, int port, string iscsiadm)
    {
        var portal = Portal.Parse(text);
        Assert.Equal(address, portal.Address);
        Assert.Equal(port, portal.Port);
        Assert.Equal(iscsiadm, portal.ToIscsiadm());
    }

    [Theory]
    [InlineData("")]
    [InlineData("10.0.0.5:0")]
    [InlineData("10.0.0.5:70000")]
    [InlineData("10.0.0.5:32a")]
    [InlineData("[fd00::5")]
    [InlineData("[fd00::5]3260")]
    [InlineData("10.0.0.5:3260,1")]
    [InlineData("a b:3260")]
    public void Bad_portals_are_refused(string text)
    {
        Assert.False(Portal.TryParse(text, out _, out var error));
        Assert.NotEmpty(error);
    }

    [Fact]
    public void Portal_lists_drop_duplicates_that_differ_only_in_form()
    {
        var list = Portal.ParseList("10.0.0.5:3260, 10.0.0.5 ,[fd00::5]:3260,fd00:0::5");
        Assert.Equal([Portal.Parse("10.0.0.5"), Portal.Parse("fd00::5")], list);
    }

    [Theory]
    [InlineData("10.0.0.5:3260", 0, "ip-10.0.0.5:3260-iscsi-iqn.2026-11.io.csi-scst:csi.0123456789abcdef-lun-0")]
    [InlineData("10.0.0.5:3260", 1, "ip-10.0.0.5:3260-iscsi-iqn.2026-11.io.csi-scst:csi.0123456789abcdef-lun-1")]
    [InlineData("10.0.0.5:3260", 255, "ip-10.0.0.5:3260-iscsi-iqn.2026-11.io.csi-scst:csi.0123456789abcdef-lun-255")]
    // path_id: LUNs from 256 use "lun-0x%04lx%04lx00000000" over the kernel's LUN (flat addressing 0x4000 | LUN).
    [InlineData("10.0.0.5:3260", 256, "ip-10.0.0.5:3260-iscsi-iqn.2026-11.io.csi-scst:csi.0123456789abcdef-lun-0x4100000000000000")]
    [InlineData("10.0.0.5:3260", 300, "ip-10.0.0.5:3260-iscsi-iqn.2026-11.io.csi-scst:csi.0123456789abcdef-lun-0x412c000000000000")]
    // IPv6: the persistent address without brackets.
    [InlineData("[fd00::5]:3260", 0, "ip-fd00::5:3260-iscsi-iqn.2026-11.io.csi-scst:csi.0123456789abcdef-lun-0")]
    public void By_path_names_follow_udev_path_id(string portal, int lun, string expected)
    {
        Assert.Equal(expected, ByPath.LinkName(Portal.Parse(portal), "iqn.2026-11.io.csi-scst:csi.0123456789abcdef", lun));
    }
}
