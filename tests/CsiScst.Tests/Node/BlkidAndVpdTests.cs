using CsiScst.Initiator.Devices;
using CsiScst.Initiator.Mounts;

namespace CsiScst.Tests.NodePlugin;

public sealed class BlkidAndVpdTests
{
    [Fact]
    public void Blkid_export_output_is_read_from_real_runs()
    {
        var ext4 = Filesystems.ParseExport(Captures.Host("blkid-ext4").Stdout);
        Assert.Equal("ext4", ext4.Type);
        Assert.Equal("filesystem", ext4.Usage);
        Assert.False(ext4.IsBlank);
        Assert.NotNull(ext4.Uuid);

        var xfs = Filesystems.ParseExport(Captures.Host("blkid-xfs").Stdout);
        Assert.Equal("xfs", xfs.Type);

        var table = Filesystems.ParseExport(Captures.Host("blkid-dos-table").Stdout);
        Assert.Null(table.Type);
        Assert.Equal("dos", table.PartitionTable);
        Assert.False(table.IsBlank);
        Assert.Contains("partition table", table.ToString());

        var blank = Captures.Host("blkid-blank");
        Assert.Equal(2, blank.ExitCode);   // blkid says "nothing found" with exit 2 and no output
        Assert.Equal("", blank.Stdout);
    }

    [Fact]
    public void Unit_serial_page_layout()
    {
        // SPC-4 7.8.19: byte 1 = 0x80, bytes 2-3 = page length, then the serial (targets pad with spaces).
        byte[] page = [0x00, 0x80, 0x00, 0x14, .. "CS0123456789abcdef  "u8];
        Assert.Equal("CS0123456789abcdef", Vpd.ParseUnitSerial(page));
        Assert.Null(Vpd.ParseUnitSerial([0x00, 0x83, 0x00, 0x00]));
        Assert.Null(Vpd.ParseUnitSerial([0x00]));
        // A length longer than the bytes present reads what is there.
        Assert.Equal("CS01", Vpd.ParseUnitSerial([0x00, 0x80, 0x00, 0x40, .. "CS01"u8]));
    }
}
