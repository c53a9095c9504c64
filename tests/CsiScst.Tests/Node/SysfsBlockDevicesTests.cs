using CsiScst.Initiator;
using CsiScst.Initiator.Devices;
using Microsoft.Extensions.Logging.Abstractions;

namespace CsiScst.Tests.NodePlugin;

/// <summary>
/// The sysfs walks on a small tree laid out like the kernel's (two iSCSI paths of one LUN under a
/// dm-multipath map). The same walks run against the real sysfs in the VM scenario.
/// </summary>
public sealed class SysfsBlockDevicesTests : IDisposable
{
    private readonly string _root = Path.Join(Path.GetTempPath(), "csi-scst-sysfs-" + Guid.NewGuid().ToString("N")[..8]);
    private readonly SysfsBlockDevices _devices;

    public SysfsBlockDevicesTests()
    {
        Disk("sdb", host: 2, session: 1, lun: 0, "8:16", serial: "CS0123456789abcdef");
        Disk("sdc", host: 3, session: 2, lun: 0, "8:32", serial: "CS0123456789abcdef");
        var dm = Dir("devices/virtual/block/dm-0");
        Write(Path.Join(dm, "dev"), "253:0\n");
        Write(Path.Join(dm, "size"), "131072\n");
        Write(Path.Join(dm, "dm/name"), "mpatha\n");
        Write(Path.Join(dm, "dm/uuid"), "mpath-36001405cs0123456789abcdef\n");
        Link("class/block/dm-0", "../../devices/virtual/block/dm-0");
        Link("dev/block/253:0", "../../devices/virtual/block/dm-0");
        foreach (var sd in new[] { "sdb", "sdc" })
        {
            Link($"devices/virtual/block/dm-0/slaves/{sd}", $"../../../../../{BlockDir(sd)}");
            Link($"{BlockDir(sd)}/holders/dm-0", "../../../../../../../../virtual/block/dm-0");
        }
        Directory.CreateDirectory(Path.Join(_root, "dev-dir"));
        _devices = new SysfsBlockDevices(new DeviceOptions { SysfsRoot = _root, DevDir = Path.Join(_root, "dev-dir") });
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private static string BlockDir(string name) => name switch
    {
        "sdb" => "devices/platform/host2/session1/target2:0:0/2:0:0:0/block/sdb",
        _ => "devices/platform/host3/session2/target3:0:0/3:0:0:0/block/sdc",
    };

    private void Disk(string name, int host, int session, int lun, string number, string serial)
    {
        var scsi = Dir($"devices/platform/host{host}/session{session}/target{host}:0:0/{host}:0:0:{lun}");
        Write(Path.Join(scsi, "state"), "running\n");
        File.WriteAllBytes(Path.Join(scsi, "vpd_pg80"), [0x00, 0x80, 0x00, (byte)serial.Length, .. System.Text.Encoding.ASCII.GetBytes(serial)]);
        Directory.CreateDirectory(Path.Join(scsi, "scsi_disk", $"{host}:0:0:{lun}"));
        var block = Dir(BlockDir(name));
        Write(Path.Join(block, "dev"), number + "\n");
        Write(Path.Join(block, "size"), "131072\n");
        Directory.CreateDirectory(Path.Join(block, "holders"));
        Link($"{BlockDir(name)}/device", "../../../" + $"{host}:0:0:{lun}");
        Link($"class/block/{name}", "../../" + BlockDir(name));
        Link($"dev/block/{number}", "../../" + BlockDir(name));
        var sessionDir = Dir($"devices/platform/host{host}/session{session}/iscsi_session/session{session}");
        Write(Path.Join(sessionDir, "state"), "LOGGED_IN\n");
        Link($"devices/platform/host{host}/session{session}/iscsi_session/session{session}/device", "../../../session" + session);
        Link($"class/iscsi_session/session{session}", $"../../devices/platform/host{host}/session{session}/iscsi_session/session{session}");
    }

    private string Dir(string relative)
    {
        var path = Path.Join(_root, relative);
        Directory.CreateDirectory(path);
        return path;
    }

    private static void Write(string path, string text)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, text);
    }

    private void Link(string relative, string target)
    {
        var path = Path.Join(_root, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.CreateSymbolicLink(path, target);
    }

    [Fact]
    public void Names_numbers_sizes_and_serials()
    {
        Assert.Equal("sdb", _devices.NameOf(new DeviceNumber(8, 16)));
        Assert.Equal("dm-0", _devices.NameOf(new DeviceNumber(253, 0)));
        Assert.Null(_devices.NameOf(new DeviceNumber(8, 48)));
        Assert.Equal(new DeviceNumber(8, 32), _devices.NumberOf("sdc"));
        Assert.Equal(64L * 1024 * 1024, _devices.SizeBytes("dm-0"));
        Assert.Equal("CS0123456789abcdef", _devices.ReadSerial("sdb"));
        Assert.Null(_devices.ReadSerial("dm-0"));
        Assert.Equal("running", _devices.ScsiState("sdc"));
        Assert.True(_devices.IsScsiDisk("sdb"));
        Assert.False(_devices.IsScsiDisk("dm-0"));
    }

    [Fact]
    public void The_multipath_stack_is_walked_both_ways()
    {
        Assert.Equal(["sdb", "sdc"], _devices.Disks("dm-0"));
        Assert.Equal(["sdb"], _devices.Disks("sdb"));
        Assert.Equal(["dm-0"], _devices.Holders("sdb"));
        Assert.True(_devices.IsMultipath("dm-0"));
        Assert.Equal("mpatha", _devices.DmName("dm-0"));

        var multipath = new Multipath(new RecordingToolRunner(), new HostTools(new HostToolOptions()), _devices, new DeviceOptions(), NullLogger<Multipath>.Instance);
        Assert.Equal("dm-0", multipath.FindMap(["sdb", "sdc"]));
        Assert.Equal("dm-0", multipath.FindMap(["sdb"]));
    }

    [Fact]
    public void Disks_are_tied_to_their_iscsi_session()
    {
        Assert.Equal(1, _devices.IscsiSessionOf("sdb"));
        Assert.Equal(2, _devices.IscsiSessionOf("sdc"));
        Assert.Null(_devices.IscsiSessionOf("dm-0"));
        Assert.Equal("sdb", _devices.FindIscsiDisk(1, 0));
        Assert.Equal("sdc", _devices.FindIscsiDisk(2, 0));
        Assert.Null(_devices.FindIscsiDisk(1, 1));
        Assert.Null(_devices.FindIscsiDisk(9, 0));
        Assert.Equal("LOGGED_IN", _devices.IscsiSessionState(2));
    }

    [Fact]
    public void By_path_links_resolve_to_kernel_names()
    {
        var byPath = Path.Join(_root, "dev-dir", "disk", "by-path");
        Directory.CreateDirectory(byPath);
        File.WriteAllText(Path.Join(_root, "dev-dir", "sdb"), "");
        var link = Path.Join(byPath, "ip-10.0.0.5:3260-iscsi-iqn.2026-11.io.csi-scst:csi.0123456789abcdef-lun-0");
        File.CreateSymbolicLink(link, "../../sdb");
        Assert.Equal("sdb", _devices.NameOfPath(link));
        Assert.Null(_devices.NameOfPath(Path.Join(byPath, "missing")));
    }

    [Fact]
    public async Task Rescan_and_delete_write_1_to_the_scsi_device()
    {
        await _devices.RescanAsync("sdb", CancellationToken.None);
        await _devices.DeleteAsync("sdc", CancellationToken.None);
        Assert.Equal("1", File.ReadAllText(Path.Join(_root, "devices/platform/host2/session1/target2:0:0/2:0:0:0/rescan")));
        Assert.Equal("1", File.ReadAllText(Path.Join(_root, "devices/platform/host3/session2/target3:0:0/3:0:0:0/delete")));
    }
}
