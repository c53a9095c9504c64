using CsiScst.Initiator;
using CsiScst.Initiator.Devices;
using CsiScst.Initiator.Iscsi;
using CsiScst.Initiator.Mounts;
using Microsoft.Extensions.Logging.Abstractions;

namespace CsiScst.Tests.NodePlugin;

/// <summary>
/// The teardown of a volume's disks when the target fenced this node: the disk can no longer be opened, so
/// blockdev --flushbufs fails (ENXIO, seen in the VM scenario 50-e2e-access); the disk is deleted, the
/// session logged out and the records removed all the same.
/// </summary>
public sealed class DetachTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "csi-scst-detach-" + Guid.NewGuid().ToString("N")[..12]);

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public async Task A_disk_that_cannot_be_flushed_is_still_deleted_and_the_records_removed()
    {
        Directory.CreateDirectory(Path.Join(_root, "sys", "class", "block", "sda", "device"));
        Directory.CreateDirectory(Path.Join(_root, "dev"));
        await File.WriteAllTextAsync(Path.Join(_root, "dev", "sda"), "");
        var runner = new RecordingToolRunner(c => c.FileName.EndsWith("blockdev", StringComparison.Ordinal)
            ? (1, "") // blockdev: cannot open /dev/sda: No such device or address
            : c.Arguments.Contains("session") ? (IscsiExitCodes.NoObjectsFound, "") : (0, ""));
        var deviceOptions = new DeviceOptions { SysfsRoot = Path.Join(_root, "sys"), DevDir = Path.Join(_root, "dev") };
        var devices = new SysfsBlockDevices(deviceOptions);
        var host = new HostTools(new HostToolOptions());
        var volumes = new IscsiVolumes(
            new IscsiAdm(runner, host, new IscsiOptions(), NullLogger<IscsiAdm>.Instance), devices,
            new Multipath(runner, host, devices, deviceOptions, NullLogger<Multipath>.Instance),
            new Filesystems(runner, new MountOptions(), NullLogger<Filesystems>.Instance), deviceOptions, NullLogger<IscsiVolumes>.Instance);

        await volumes.DetachAsync("iqn.2026-11.io.csi-scst:unit.00000000000000aa", ["sda"], CancellationToken.None);

        Assert.Contains(runner.Commands, c => c.FileName.EndsWith("blockdev", StringComparison.Ordinal));
        Assert.Equal("1", await File.ReadAllTextAsync(Path.Join(_root, "sys", "class", "block", "sda", "device", "delete")));
        Assert.Contains(runner.Commands, c => c.Arguments.SequenceEqual(["-m", "node", "-T", "iqn.2026-11.io.csi-scst:unit.00000000000000aa", "-I", "default", "-o", "delete"]));
    }
}
