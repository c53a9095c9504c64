using System.Runtime.CompilerServices;
using CsiScst.Targets.Lio;

namespace CsiScst.Tests.Lio;

/// <summary>The parsers on configfs text recorded from a real kernel (Fixtures/README.md).</summary>
public sealed class CapturedTextTests
{
    private static string Fixture(string name, [CallerFilePath] string source = "") =>
        File.ReadAllText(Path.Combine(Path.GetDirectoryName(source)!, "Fixtures", name));

    [Fact]
    public void Acl_info_with_and_without_a_session()
    {
        Assert.Equal(new AclSession("iqn.1993-08.org.debian:01:csi-scst-vm", "TARG_SESS_STATE_LOGGED_IN", "127.0.0.1"),
            LioText.ParseAclInfo(Fixture("acl-info-session.txt")));
        Assert.Null(LioText.ParseAclInfo(Fixture("acl-info-no-session.txt")));
    }

    [Fact]
    public void Backstore_info_serial_and_statistics()
    {
        Assert.Equal((33554432L, false), LioText.ParseFileioInfo(Fixture("fileio-info.txt")));
        Assert.Equal((253, 0), LioText.ParseIblockDevice(Fixture("iblock-info.txt")));
        Assert.Equal("CS7e1dcd2ccd205bf4", LioText.ParseUnitSerial(Fixture("vpd_unit_serial.txt")));
        Assert.Equal(160, LioText.ParseLong(Fixture("scsi_tgt_port-in_cmds.txt")));
        Assert.Equal(10, LioText.ParseLong(Fixture("scsi_tgt_port-read_mbytes.txt")));
        Assert.Equal(8, LioText.ParseLong(Fixture("scsi_tgt_port-write_mbytes.txt")));
    }
}
