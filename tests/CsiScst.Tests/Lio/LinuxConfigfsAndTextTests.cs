using CsiScst.Core.Errors;
using CsiScst.Targets.Lio;
using CsiScst.Targets.Native;

namespace CsiScst.Tests.Lio;

/// <summary>The raw system calls return the kernel's exact errno; the show-handler parsers read LIO's formats.</summary>
public sealed class LinuxConfigfsAndTextTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "csi-scst-lio-fs-" + Guid.NewGuid().ToString("N"));
    private readonly LinuxConfigfs _fs = new();

    public LinuxConfigfsAndTextTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Directory_calls_return_exact_errno()
    {
        Assert.Equal(0, _fs.MakeDirectory(_dir + "/a"));
        Assert.Equal(Errno.EEXIST, _fs.MakeDirectory(_dir + "/a"));
        Assert.Equal(Errno.ENOENT, _fs.MakeDirectory(_dir + "/missing/b"));
        Assert.Equal(0, _fs.MakeDirectory(_dir + "/a/b"));
        Assert.Equal(Errno.ENOTEMPTY, _fs.RemoveDirectory(_dir + "/a"));
        Assert.Equal(0, _fs.RemoveDirectory(_dir + "/a/b"));
        Assert.Equal(Errno.ENOENT, _fs.RemoveDirectory(_dir + "/a/b"));
        Assert.True(_fs.DirectoryExists(_dir + "/a"));
    }

    [Fact]
    public void Writes_are_one_call_without_a_newline_and_reads_return_the_bytes()
    {
        Assert.Equal(Errno.ENOENT, _fs.Write(_dir + "/attr", "1"));
        File.WriteAllText(_dir + "/attr", "");
        Assert.Equal(0, _fs.Write(_dir + "/attr", "udev_path=/dev/vg/lv"));
        Assert.Equal((0, "udev_path=/dev/vg/lv"), _fs.Read(_dir + "/attr"));
        Assert.Equal(Errno.ENOENT, _fs.Read(_dir + "/nothing").Errno);
        Directory.CreateDirectory(_dir + "/group");
        Assert.Equal(Errno.EISDIR, _fs.Write(_dir + "/group", "1"));
    }

    [Fact]
    public void Links_and_listings_report_kinds()
    {
        Directory.CreateDirectory(_dir + "/so");
        File.WriteAllText(_dir + "/enable", "1\n");
        Assert.Equal(0, _fs.CreateSymlink(_dir + "/so", _dir + "/link"));
        Assert.Equal(Errno.EEXIST, _fs.CreateSymlink(_dir + "/so", _dir + "/link"));
        Assert.Equal(_dir + "/so", _fs.ReadLink(_dir + "/link"));
        Assert.Null(_fs.ReadLink(_dir + "/so"));
        Assert.Equal(
            [new ConfigfsEntry("enable", ConfigfsEntryKind.File), new ConfigfsEntry("link", ConfigfsEntryKind.Symlink), new ConfigfsEntry("so", ConfigfsEntryKind.Directory)],
            _fs.List(_dir));
        Assert.Empty(_fs.List(_dir + "/missing"));
        Assert.Equal(0, _fs.RemoveLink(_dir + "/link"));
        Assert.Equal(Errno.ENOENT, _fs.RemoveLink(_dir + "/link"));
    }

    // Formats from drivers/target: target_wwn_vpd_unit_serial_show, fd_show_configfs_dev_params,
    // iblock_show_configfs_dev_params, lio_target_nacl_info_show.
    [Fact]
    public void Show_handler_formats_are_parsed()
    {
        Assert.Equal("CS0123456789abcdef", LioText.ParseUnitSerial("T10 VPD Unit Serial Number: CS0123456789abcdef\n"));
        Assert.Null(LioText.ParseUnitSerial("T10 VPD Unit Serial Number: \n"));

        var fileio = "Status: ACTIVATED  Max Queue Depth: 128  SectorSize: 512  HwMaxSectors: 16384\n        TCM FILEIO ID: 0        File: /var/lib/x.img  Size: 1073741824  Mode: Buffered-WCE Async: 0\n";
        Assert.Equal((1073741824L, true), LioText.ParseFileioInfo(fileio));
        Assert.Equal((4096L, false), LioText.ParseFileioInfo("SectorSize: 512\n File: /f  Size: 4096  Mode: O_DSYNC\n"));

        Assert.Equal((253, 4), LioText.ParseIblockDevice("        iBlock device: dm-4  UDEV PATH: /dev/vg/lv  readonly: 0\n        Major: 253 Minor: 4  CLAIMED: IBLOCK\n"));
        Assert.Null(LioText.ParseIblockDevice("        Major: 0 Minor: 0\n"));

        Assert.Null(LioText.ParseAclInfo("No active iSCSI Session for Initiator Endpoint: iqn.1993-08.org.debian:01:a\n"));
        var session = "InitiatorName: iqn.1993-08.org.debian:01:a\nInitiatorAlias: vm\nLIO Session ID: 1   ISID: 0x00023d000001  TSIH: 1  SessionType: Normal\n"
            + "Session State: TARG_SESS_STATE_LOGGED_IN\n----------------------[iSCSI Connections]-------------------------\n"
            + "CID: 0  Connection State: TARG_CONN_STATE_LOGGED_IN\n   Address 10.0.2.15 TCP  StatSN: 0x6916c3e9\n";
        Assert.Equal(new AclSession("iqn.1993-08.org.debian:01:a", "TARG_SESS_STATE_LOGGED_IN", "10.0.2.15"), LioText.ParseAclInfo(session));
        Assert.Null(LioText.ParseAclInfo(session.Replace("SessionType: Normal", "SessionType: Discovery", StringComparison.Ordinal)));
    }

    [Fact]
    public void Portals_become_lio_directory_names()
    {
        Assert.Equal("0.0.0.0:3260", LioLayout.PortalDirectory("0.0.0.0:3260"));
        Assert.Equal("10.0.0.5:3260", LioLayout.PortalDirectory("10.0.0.5"));
        Assert.Equal("[::]:3260", LioLayout.PortalDirectory("[::0]:3260"));
        Assert.Equal("[fd00::1]:3260", LioLayout.PortalDirectory("FD00::1"));
        Assert.Null(LioLayout.TryCanonicalPortal("10.0.0.5:99999"));
        Assert.Throws<StatusException>(() => LioLayout.PortalDirectory("[fd00::1"));
        Assert.Equal(("iblock", 12), LioLayout.ParseHba("iblock_12"));
        Assert.Equal(("rd_mcp", 0), LioLayout.ParseHba("rd_mcp_0"));
        Assert.Null(LioLayout.ParseHba("alua"));
    }
}
