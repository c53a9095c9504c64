using CsiScst.Initiator.Devices;
using CsiScst.Initiator.Mounts;

namespace CsiScst.Tests.NodePlugin;

public sealed class MountInfoTests
{
    [Fact]
    public async Task Every_line_of_this_machines_mountinfo_parses()
    {
        var text = await File.ReadAllTextAsync(MountInfo.SelfPath);
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var entries = MountInfo.Parse(text);
        Assert.Equal(lines.Length, entries.Count);
        var root = Assert.Single(entries, e => e.MountPoint == "/" && e.Id == entries.Where(x => x.MountPoint == "/").Max(x => x.Id));
        Assert.NotEmpty(root.FsType);
        Assert.Contains(entries, e => e.MountPoint == "/proc" && e.FsType == "proc");
    }

    [Fact]
    public void Octal_escapes_are_decoded()
    {
        Assert.Equal("/var/lib/kubelet/pods/a b/vol\tx\\y", MountInfo.Unescape(@"/var/lib/kubelet/pods/a\040b/vol\011x\134y"));
        Assert.Equal("/plain", MountInfo.Unescape("/plain"));
        Assert.Equal(@"/odd\04", MountInfo.Unescape(@"/odd\04"));   // truncated escape stays as is
    }

    [Fact]
    public void Optional_fields_and_super_options_are_separated()
    {
        // proc(5)'s own example line.
        Assert.True(MountInfo.TryParseLine("36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue", out var entry));
        Assert.Equal(36, entry.Id);
        Assert.Equal(35, entry.ParentId);
        Assert.Equal(new DeviceNumber(98, 0), entry.Device);
        Assert.Equal("/mnt1", entry.Root);
        Assert.Equal("/mnt2", entry.MountPoint);
        Assert.Equal(["rw", "noatime"], entry.MountOptions);
        Assert.Equal("ext3", entry.FsType);
        Assert.Equal("/dev/root", entry.Source);
        Assert.Equal(["rw", "errors=continue"], entry.SuperOptions);
        Assert.False(entry.IsReadOnly);
        Assert.False(entry.IsSuperblockReadOnly);

        Assert.True(MountInfo.TryParseLine("40 35 8:16 / /stage rw,relatime - ext4 /dev/sdb ro,emergency_ro", out var failed));
        Assert.True(failed.IsSuperblockReadOnly);
        Assert.False(MountInfo.TryParseLine("garbage", out _));
    }

    [Fact]
    public void The_top_most_mount_of_a_path_wins()
    {
        var mounts = MountInfo.Parse(
            "30 1 8:1 / /data rw - ext4 /dev/sda1 rw\n" +
            "31 30 8:16 / /data rw - xfs /dev/sdb rw\n");
        Assert.Equal("xfs", Mounter.MountAt(mounts, "/data/")!.FsType);
        Assert.Null(Mounter.MountAt(mounts, "/data/sub"));
    }
}
