using System.Globalization;
using CsiScst.Core.Errors;
using CsiScst.Initiator.Devices;
using CsiScst.Initiator.Mounts;
using Grpc.Core;

namespace CsiScst.IntegrationTests.NodePlugin;

/// <summary>
/// The Mounts/ code on real loop devices with real ext4 and xfs: probing, formatting, mounting with
/// flags, bind mounts, mountinfo parsing, online growth, statfs and group ownership. Verified with
/// util-linux (findmnt, mountpoint, blkid, stat) rather than with our own parsers.
/// </summary>
public sealed class MountsTests : IDisposable
{
    private const long MiB = 1024 * 1024;
    private readonly Scratch _scratch = new();
    private readonly Components _c = new();

    public void Dispose() => _scratch.Dispose();

    [Fact]
    public async Task Probe_reports_blank_then_the_filesystem_mkfs_created()
    {
        var loop = _scratch.Loop(64 * MiB);
        var blank = await _c.Filesystems.ProbeAsync(loop.Device, CancellationToken.None);
        Assert.True(blank.IsBlank);

        await _c.Filesystems.FormatAsync(loop.Device, "ext4", CancellationToken.None);
        var content = await _c.Filesystems.ProbeAsync(loop.Device, CancellationToken.None);
        Assert.False(content.IsBlank);
        Assert.Equal("ext4", content.Type);
        Assert.Equal("filesystem", content.Usage);
        // Cross-check with blkid's own value lookup.
        Assert.Equal(Host.Run("blkid", "-p", "-s", "UUID", "-o", "value", loop.Device).Trim(), content.Uuid);
    }

    [Fact]
    public async Task Probe_sees_a_partition_table_as_not_blank()
    {
        var loop = _scratch.Loop(64 * MiB);
        // A DOS partition table with one Linux partition from sector 2048, written by hand.
        var mbr = new byte[512];
        mbr[446 + 4] = 0x83;
        BitConverter.GetBytes(2048u).CopyTo(mbr, 446 + 8);
        BitConverter.GetBytes(4096u).CopyTo(mbr, 446 + 12);
        mbr[510] = 0x55;
        mbr[511] = 0xAA;
        using (var device = new FileStream(loop.Device, FileMode.Open, FileAccess.Write))
        {
            device.Write(mbr);
        }
        var content = await _c.Filesystems.ProbeAsync(loop.Device, CancellationToken.None);
        Assert.False(content.IsBlank);
        Assert.NotNull(content.PartitionTable);
    }

    [Fact]
    public async Task Xfs_format_never_overwrites_an_existing_filesystem()
    {
        var loop = _scratch.Loop(320 * MiB);
        await _c.Filesystems.FormatAsync(loop.Device, "ext4", CancellationToken.None);
        var uuid = Host.Run("blkid", "-p", "-s", "UUID", "-o", "value", loop.Device).Trim();

        var e = await Assert.ThrowsAsync<StatusException>(() => _c.Filesystems.FormatAsync(loop.Device, "xfs", CancellationToken.None));
        Assert.Contains("mkfs.xfs", e.Message);
        Assert.Equal(uuid, Host.Run("blkid", "-p", "-s", "UUID", "-o", "value", loop.Device).Trim());
    }

    [Theory]
    [InlineData("ext4", 64)]
    [InlineData("xfs", 320)]
    public async Task Mount_with_flags_bind_read_only_and_unmount(string fsType, int mib)
    {
        var loop = _scratch.Loop(mib * MiB);
        await _c.Filesystems.FormatAsync(loop.Device, fsType, CancellationToken.None);
        var staging = _scratch.Path("staging");
        var target = _scratch.Path("pod target");   // a space: mountinfo escapes it as \040
        Directory.CreateDirectory(staging);
        Directory.CreateDirectory(target);

        await _c.Mounter.MountAsync(loop.Device, staging, fsType, ["noatime"], CancellationToken.None);
        var findmnt = Host.FindMnt(staging);
        Assert.Contains(fsType, findmnt);
        Assert.Contains("noatime", findmnt);

        await _c.Mounter.BindAsync(staging, target, readOnly: true, CancellationToken.None);
        Assert.StartsWith("ro,", Host.Run("findmnt", "-n", "-o", "OPTIONS", "--mountpoint", target).Trim());
        Assert.True(Host.IsMountPoint(target));
        Assert.Throws<IOException>(() => File.WriteAllText(Path.Join(target, "x"), "no"));
        File.WriteAllText(Path.Join(staging, "y"), "yes");
        Assert.Equal("yes", File.ReadAllText(Path.Join(target, "y")));

        var mounts = await _c.Mounter.ReadMountsAsync(CancellationToken.None);
        var stagingEntry = Mounter.MountAt(mounts, staging);
        var targetEntry = Mounter.MountAt(mounts, target);
        Assert.NotNull(stagingEntry);
        Assert.NotNull(targetEntry);
        Assert.Equal(fsType, stagingEntry.FsType);
        Assert.Equal(loop.Device, stagingEntry.Source);
        Assert.Equal(stagingEntry.Device, targetEntry.Device);
        Assert.Equal(_c.Devices.NumberOf(loop.Name), stagingEntry.Device);
        Assert.True(targetEntry.IsReadOnly);
        Assert.False(stagingEntry.IsReadOnly);
        Assert.False(targetEntry.IsSuperblockReadOnly);

        await _c.Mounter.UnmountAsync(target, CancellationToken.None);
        await _c.Mounter.UnmountAsync(staging, CancellationToken.None);
        Assert.False(Host.IsMountPoint(target));
        Assert.False(Host.IsMountPoint(staging));
        Assert.Null(Mounter.MountAt(await _c.Mounter.ReadMountsAsync(CancellationToken.None), staging));
    }

    [Fact]
    public async Task Mount_failure_is_reported_with_the_tool_message()
    {
        var loop = _scratch.Loop(64 * MiB);   // blank: nothing to mount
        var staging = _scratch.Path("staging");
        Directory.CreateDirectory(staging);
        var e = await Assert.ThrowsAsync<StatusException>(() => _c.Mounter.MountAsync(loop.Device, staging, "ext4", [], CancellationToken.None));
        Assert.Equal(StatusCode.Internal, e.Code);
        Assert.Contains(loop.Device, e.Message);
        Assert.False(Host.IsMountPoint(staging));
    }

    [Theory]
    [InlineData("ext4", 64, 128)]
    [InlineData("xfs", 320, 640)]
    public async Task Grow_extends_a_mounted_filesystem_online(string fsType, int fromMib, int toMib)
    {
        var loop = _scratch.Loop(fromMib * MiB);
        await _c.Filesystems.FormatAsync(loop.Device, fsType, CancellationToken.None);
        var staging = _scratch.Path("staging");
        Directory.CreateDirectory(staging);
        await _c.Mounter.MountAsync(loop.Device, staging, fsType, [], CancellationToken.None);
        File.WriteAllText(Path.Join(staging, "data"), "kept");
        var before = Native.StatFs(staging).TotalBytes;

        loop.Grow(toMib * MiB);
        Assert.Equal(toMib * MiB, _c.Devices.SizeBytes(loop.Name));
        if (fsType == "ext4" && !Capabilities.HasSysResource())
        {
            // ext4's online resize ioctl needs CAP_SYS_RESOURCE; some sandboxes drop it. Then the
            // failure must reach the caller with resize2fs's own words (the VM scenario grows ext4).
            var e = await Assert.ThrowsAsync<StatusException>(() => _c.Filesystems.GrowAsync(loop.Device, staging, fsType, CancellationToken.None));
            Assert.Contains("Permission denied to resize filesystem", e.Message);
            return;
        }
        await _c.Filesystems.GrowAsync(loop.Device, staging, fsType, CancellationToken.None);

        var after = Native.StatFs(staging).TotalBytes;
        Assert.True(after > before + (toMib - fromMib) * MiB / 2, $"{fsType} grew from {before} to {after} bytes only");
        Assert.Equal("kept", File.ReadAllText(Path.Join(staging, "data")));
        // Our statvfs agrees with coreutils' stat -f.
        var fields = Host.Run("stat", "-f", "-c", "%b %S %a %c %d", staging).Split(' ', StringSplitOptions.TrimEntries);
        var stats = Native.StatFs(staging);
        Assert.Equal(long.Parse(fields[0], CultureInfo.InvariantCulture) * long.Parse(fields[1], CultureInfo.InvariantCulture), stats.TotalBytes);
        Assert.Equal(long.Parse(fields[2], CultureInfo.InvariantCulture) * long.Parse(fields[1], CultureInfo.InvariantCulture), stats.AvailableBytes);
        Assert.Equal(long.Parse(fields[3], CultureInfo.InvariantCulture), stats.TotalInodes);
        Assert.Equal(long.Parse(fields[4], CultureInfo.InvariantCulture), stats.FreeInodes);
    }

    [Fact]
    public async Task Flush_writes_dirty_buffers_of_a_device()
    {
        var loop = _scratch.Loop(64 * MiB);
        await _c.Filesystems.FlushAsync(loop.Device, CancellationToken.None);
        var e = await Assert.ThrowsAsync<StatusException>(() => _c.Filesystems.FlushAsync(_scratch.Path("no-such-device"), CancellationToken.None));
        Assert.Contains("blockdev", e.Message);
    }

    [Fact]
    public async Task Volume_group_ownership_is_applied_recursively_then_skipped_when_the_root_matches()
    {
        var loop = _scratch.Loop(64 * MiB);
        await _c.Filesystems.FormatAsync(loop.Device, "ext4", CancellationToken.None);
        var root = _scratch.Path("vol");
        Directory.CreateDirectory(root);
        await _c.Mounter.MountAsync(loop.Device, root, "ext4", [], CancellationToken.None);
        Directory.CreateDirectory(Path.Join(root, "dir", "sub"));
        File.WriteAllText(Path.Join(root, "dir", "file"), "x");
        File.SetUnixFileMode(Path.Join(root, "dir", "file"), UnixFileMode.UserRead | UnixFileMode.UserWrite);
        File.CreateSymbolicLink(Path.Join(root, "link"), "/etc/hostname");

        var changed = await _c.Ownership.ApplyAsync(root, 4242, CancellationToken.None);
        Assert.True(changed >= 5, $"changed {changed}");   // root, lost+found, dir, sub, file, link
        foreach (var path in new[] { root, Path.Join(root, "dir"), Path.Join(root, "dir", "sub"), Path.Join(root, "dir", "file") })
        {
            Assert.Equal("4242", Host.Run("stat", "-c", "%g", path).Trim());
        }
        Assert.Equal("4242", Host.Run("stat", "-c", "%g", Path.Join(root, "link")).Trim());
        Assert.NotEqual("4242", Host.Run("stat", "-L", "-c", "%g", "/etc/hostname").Trim());   // symlink not followed
        Assert.Equal("2775", Host.Run("stat", "-c", "%a", Path.Join(root, "dir")).Trim());
        Assert.Equal("660", Host.Run("stat", "-c", "%a", Path.Join(root, "dir", "file")).Trim());

        File.WriteAllText(Path.Join(root, "dir", "later"), "y");
        Assert.Equal(0, await _c.Ownership.ApplyAsync(root, 4242, CancellationToken.None));
        // setgid directories hand the group to new files.
        Assert.Equal("4242", Host.Run("stat", "-c", "%g", Path.Join(root, "dir", "later")).Trim());
    }

    [Fact]
    public async Task Block_device_bind_mount_is_found_through_statx()
    {
        var loop = _scratch.Loop(64 * MiB);
        var file = _scratch.Path("device");
        File.WriteAllBytes(file, []);
        await _c.Mounter.BindAsync(loop.Device, file, readOnly: false, CancellationToken.None);

        var status = Native.Stat(file);
        Assert.NotNull(status);
        Assert.True(status.IsBlockDevice);
        Assert.Equal(_c.Devices.NumberOf(loop.Name), new DeviceNumber(status.RdevMajor, status.RdevMinor));
        Assert.Equal(loop.Name, _c.Devices.NameOf(new DeviceNumber(status.RdevMajor, status.RdevMinor)));
        Assert.Null(Native.Stat(_scratch.Path("missing")));
    }
}
