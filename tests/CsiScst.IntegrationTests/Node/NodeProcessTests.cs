using System.Globalization;
using Csi.V1;
using CsiScst.Initiator.Mounts;
using Grpc.Core;
using static Csi.V1.VolumeCapability.Types;
using static Csi.V1.VolumeCapability.Types.AccessMode.Types;

namespace CsiScst.IntegrationTests.NodePlugin;

/// <summary>
/// The node plugin as kubelet drives it: a real <c>csi-scst node</c> process over its Unix socket,
/// with loop devices standing in for iSCSI disks (this host's kernel has no iSCSI initiator; the VM
/// scenario runs the same calls with real logins). The staging step the iSCSI login would do is set up
/// by hand, exactly as a previous plugin process would have left it, so these tests also prove that
/// publish, stats, expand, unpublish and unstage work from the system's state alone.
/// </summary>
public sealed class NodeProcessTests : IDisposable
{
    private const long MiB = 1024 * 1024;
    private readonly Scratch _scratch = new();
    private readonly Components _c = new();
    private readonly string _instance = "it" + Guid.NewGuid().ToString("N")[..6];

    public void Dispose() => _scratch.Dispose();

    private string VolumeId => $"v1:{_instance}:storage-1:file:pool1:0123456789abcdef";

    private static VolumeCapability Mount(string fsType = "", Mode mode = Mode.SingleNodeWriter, string group = "") => new()
    {
        AccessMode = new AccessMode { Mode = mode },
        Mount = new MountVolume { FsType = fsType, VolumeMountGroup = group },
    };

    private static VolumeCapability Block(Mode mode = Mode.SingleNodeWriter) => new()
    {
        AccessMode = new AccessMode { Mode = mode },
        Block = new BlockVolume(),
    };

    /// <summary>What NodeStageVolume leaves for a filesystem volume: the filesystem mounted on the staging path.</summary>
    private async Task<(LoopDevice Loop, string Staging)> StagedFilesystemAsync(string fsType, long bytes, params string[] options)
    {
        var loop = _scratch.Loop(bytes);
        await _c.Filesystems.FormatAsync(loop.Device, fsType, CancellationToken.None);
        var staging = _scratch.Path("plugins", "pv", "globalmount");
        Directory.CreateDirectory(staging);
        await _c.Mounter.MountAsync(loop.Device, staging, fsType, options, CancellationToken.None);
        return (loop, staging);
    }

    private NodePublishVolumeRequest Publish(string staging, string target, VolumeCapability capability, bool readOnly = false) => new()
    {
        VolumeId = VolumeId,
        StagingTargetPath = staging,
        TargetPath = target,
        VolumeCapability = capability,
        Readonly = readOnly,
    };

    [Fact]
    public async Task Filesystem_volume_publish_stats_expand_unpublish_unstage()
    {
        var (loop, staging) = await StagedFilesystemAsync("xfs", 320 * MiB);
        using var node = await NodeProcess.StartAsync(_scratch.Root, _instance);
        var client = node.Client;
        var pods = _scratch.Path("pods");
        Directory.CreateDirectory(pods);
        var t1 = Path.Join(pods, "pod-1", "mount");
        var t2 = Path.Join(pods, "pod-2", "mount");
        Directory.CreateDirectory(Path.GetDirectoryName(t1)!);
        Directory.CreateDirectory(Path.GetDirectoryName(t2)!);

        await client.NodePublishVolumeAsync(Publish(staging, t1, Mount("xfs")));
        await client.NodePublishVolumeAsync(Publish(staging, t1, Mount("xfs")));   // same again: OK
        Assert.True(Host.IsMountPoint(t1));
        Assert.StartsWith(loop.Device + " xfs rw,", Host.FindMnt(t1));
        var conflict = await Assert.ThrowsAsync<RpcException>(() => client.NodePublishVolumeAsync(Publish(staging, t1, Mount("xfs"), readOnly: true)).ResponseAsync);
        Assert.Equal(StatusCode.AlreadyExists, conflict.StatusCode);

        await client.NodePublishVolumeAsync(Publish(staging, t2, Mount("xfs", Mode.SingleNodeReaderOnly)));
        Assert.StartsWith(loop.Device + " xfs ro,", Host.FindMnt(t2));
        File.WriteAllText(Path.Join(t1, "written-by-pod-1"), "hello");
        Assert.Equal("hello", File.ReadAllText(Path.Join(t2, "written-by-pod-1")));

        var stats = await client.NodeGetVolumeStatsAsync(new NodeGetVolumeStatsRequest { VolumeId = VolumeId, VolumePath = t1 });
        var statfs = Native.StatFs(staging);
        var bytes = stats.Usage.Single(u => u.Unit == VolumeUsage.Types.Unit.Bytes);
        var inodes = stats.Usage.Single(u => u.Unit == VolumeUsage.Types.Unit.Inodes);
        Assert.Equal(statfs.TotalBytes, bytes.Total);
        Assert.Equal(statfs.TotalInodes, inodes.Total);
        Assert.Equal(long.Parse(Host.Run("stat", "-f", "-c", "%c", t1).Trim(), CultureInfo.InvariantCulture), inodes.Total);
        Assert.False(stats.VolumeCondition.Abnormal, stats.VolumeCondition.Message);

        var busy = await Assert.ThrowsAsync<RpcException>(() => client.NodeUnstageVolumeAsync(new NodeUnstageVolumeRequest { VolumeId = VolumeId, StagingTargetPath = staging }).ResponseAsync);
        Assert.Equal(StatusCode.FailedPrecondition, busy.StatusCode);
        Assert.Contains(t1, busy.Status.Detail);
        Assert.True(Host.IsMountPoint(staging));

        var before = Native.StatFs(t1).TotalBytes;
        loop.Grow(640 * MiB);
        var expanded = await client.NodeExpandVolumeAsync(new NodeExpandVolumeRequest
        {
            VolumeId = VolumeId,
            VolumePath = t1,
            StagingTargetPath = staging,
            CapacityRange = new CapacityRange { RequiredBytes = 640 * MiB },
        });
        Assert.Equal(640 * MiB, expanded.CapacityBytes);
        Assert.True(Native.StatFs(t1).TotalBytes > before + 250 * MiB, $"xfs grew from {before} to {Native.StatFs(t1).TotalBytes} bytes only");
        var tooBig = await Assert.ThrowsAsync<RpcException>(() => client.NodeExpandVolumeAsync(new NodeExpandVolumeRequest
        {
            VolumeId = VolumeId,
            VolumePath = t1,
            CapacityRange = new CapacityRange { RequiredBytes = 1024 * MiB },
        }).ResponseAsync);
        Assert.Contains("less than the", tooBig.Status.Detail);

        await client.NodeUnpublishVolumeAsync(new NodeUnpublishVolumeRequest { VolumeId = VolumeId, TargetPath = t1 });
        await client.NodeUnpublishVolumeAsync(new NodeUnpublishVolumeRequest { VolumeId = VolumeId, TargetPath = t2 });
        await client.NodeUnpublishVolumeAsync(new NodeUnpublishVolumeRequest { VolumeId = VolumeId, TargetPath = t2 });   // again: OK
        Assert.False(Directory.Exists(t1));
        Assert.False(Directory.Exists(t2));
        Assert.True(Host.IsMountPoint(staging));

        await client.NodeUnstageVolumeAsync(new NodeUnstageVolumeRequest { VolumeId = VolumeId, StagingTargetPath = staging });
        await client.NodeUnstageVolumeAsync(new NodeUnstageVolumeRequest { VolumeId = VolumeId, StagingTargetPath = staging });   // again: OK
        Assert.False(Host.IsMountPoint(staging));
        Assert.Equal("", Host.Try("findmnt", "-n", "--source", loop.Device).Stdout.Trim());

        var notFound = await Assert.ThrowsAsync<RpcException>(() => client.NodeGetVolumeStatsAsync(new NodeGetVolumeStatsRequest { VolumeId = VolumeId, VolumePath = t1 }).ResponseAsync);
        Assert.Equal(StatusCode.NotFound, notFound.StatusCode);

        var metrics = await node.MetricsAsync();
        Assert.Contains("csi_scst_node_operations_total{operation=\"publish\",code=\"OK\"} 3", metrics);
        Assert.Contains("csi_scst_node_operations_total{operation=\"publish\",code=\"AlreadyExists\"} 1", metrics);
        Assert.Contains("csi_scst_node_operations_total{operation=\"unpublish\",code=\"OK\"} 3", metrics);
        Assert.Contains("csi_scst_node_operations_total{operation=\"unstage\",code=\"FailedPrecondition\"} 1", metrics);
        Assert.Contains("csi_scst_node_operations_total{operation=\"unstage\",code=\"OK\"} 2", metrics);
        Assert.Contains("csi_scst_node_operations_total{operation=\"expand\",code=\"OK\"} 1", metrics);
        Assert.Contains("csi_scst_node_operations_total{operation=\"stats\",code=\"NotFound\"} 1", metrics);
        Assert.Contains("csi_scst_node_operation_duration_seconds_count{operation=\"publish\",code=\"OK\"} 3", metrics);
    }

    [Fact]
    public async Task Block_volume_publish_stats_expand_unpublish_unstage()
    {
        var loop = _scratch.Loop(64 * MiB);
        var staging = _scratch.Path("plugins", "volumeDevices", "staging", "pv");
        Directory.CreateDirectory(staging);
        var deviceFile = Path.Join(staging, "device");
        File.WriteAllBytes(deviceFile, []);
        await _c.Mounter.BindAsync(loop.Device, deviceFile, readOnly: false, CancellationToken.None);

        using var node = await NodeProcess.StartAsync(_scratch.Root, _instance);
        var client = node.Client;
        var publishDir = _scratch.Path("plugins", "volumeDevices", "publish", "pv");
        Directory.CreateDirectory(publishDir);
        var target = Path.Join(publishDir, "pod-uid");

        var wrongKind = await Assert.ThrowsAsync<RpcException>(() => client.NodePublishVolumeAsync(Publish(staging, target, Mount())).ResponseAsync);
        Assert.Equal(StatusCode.FailedPrecondition, wrongKind.StatusCode);

        await client.NodePublishVolumeAsync(Publish(staging, target, Block()));
        await client.NodePublishVolumeAsync(Publish(staging, target, Block()));   // same again: OK
        var status = Native.Stat(target)!;
        Assert.True(status.IsBlockDevice);
        Assert.Equal(_c.Devices.NumberOf(loop.Name), new CsiScst.Initiator.Devices.DeviceNumber(status.RdevMajor, status.RdevMinor));
        // Data written through the published file lands on the device.
        var payload = new byte[4096];
        Random.Shared.NextBytes(payload);
        using (var stream = new FileStream(target, FileMode.Open, FileAccess.Write))
        {
            stream.Write(payload);
        }
        Host.Run("sync");
        var back = new byte[4096];
        using (var stream = new FileStream(loop.Device, FileMode.Open, FileAccess.Read))
        {
            stream.ReadExactly(back);
        }
        Assert.Equal(payload, back);

        var stats = await client.NodeGetVolumeStatsAsync(new NodeGetVolumeStatsRequest { VolumeId = VolumeId, VolumePath = target });
        Assert.Equal(64 * MiB, stats.Usage.Single().Total);
        Assert.Equal(VolumeUsage.Types.Unit.Bytes, stats.Usage.Single().Unit);
        Assert.False(stats.VolumeCondition.Abnormal);

        // kubelet's pod device path is a symlink to the published file.
        var podLink = _scratch.Path("pods", "uid", "volumeDevices", "pv");
        Directory.CreateDirectory(Path.GetDirectoryName(podLink)!);
        File.CreateSymbolicLink(podLink, target);
        loop.Grow(96 * MiB);
        var expanded = await client.NodeExpandVolumeAsync(new NodeExpandVolumeRequest { VolumeId = VolumeId, VolumePath = podLink });
        Assert.Equal(96 * MiB, expanded.CapacityBytes);
        Assert.Equal(96 * MiB, (await client.NodeGetVolumeStatsAsync(new NodeGetVolumeStatsRequest { VolumeId = VolumeId, VolumePath = podLink })).Usage.Single().Total);

        var busy = await Assert.ThrowsAsync<RpcException>(() => client.NodeUnstageVolumeAsync(new NodeUnstageVolumeRequest { VolumeId = VolumeId, StagingTargetPath = staging }).ResponseAsync);
        Assert.Equal(StatusCode.FailedPrecondition, busy.StatusCode);
        Assert.Contains(target, busy.Status.Detail);

        await client.NodeUnpublishVolumeAsync(new NodeUnpublishVolumeRequest { VolumeId = VolumeId, TargetPath = target });
        Assert.False(File.Exists(target));
        await client.NodeUnstageVolumeAsync(new NodeUnstageVolumeRequest { VolumeId = VolumeId, StagingTargetPath = staging });
        Assert.False(Host.IsMountPoint(deviceFile));
        Assert.False(File.Exists(deviceFile));
        Assert.True(Directory.Exists(staging));   // the CO's directory stays for the CO to remove
    }

    [Fact]
    public async Task A_killed_plugin_is_replaced_and_the_new_one_cleans_up_what_the_old_one_published()
    {
        var (loop, staging) = await StagedFilesystemAsync("ext4", 64 * MiB);
        var target = _scratch.Path("pods", "p", "mount");
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        using (var first = await NodeProcess.StartAsync(_scratch.Root, _instance))
        {
            await first.Client.NodePublishVolumeAsync(Publish(staging, target, Mount("ext4")));
            first.Kill();
        }
        Assert.True(Host.IsMountPoint(target));
        File.WriteAllText(Path.Join(target, "survives"), "yes");   // the pod keeps working meanwhile

        using var second = await NodeProcess.StartAsync(_scratch.Root, _instance);
        await second.Client.NodePublishVolumeAsync(Publish(staging, target, Mount("ext4")));   // kubelet retries: OK
        var stats = await second.Client.NodeGetVolumeStatsAsync(new NodeGetVolumeStatsRequest { VolumeId = VolumeId, VolumePath = target });
        Assert.False(stats.VolumeCondition.Abnormal);
        await second.Client.NodeUnpublishVolumeAsync(new NodeUnpublishVolumeRequest { VolumeId = VolumeId, TargetPath = target });
        await second.Client.NodeUnstageVolumeAsync(new NodeUnstageVolumeRequest { VolumeId = VolumeId, StagingTargetPath = staging });
        Assert.False(Host.IsMountPoint(target));
        Assert.False(Host.IsMountPoint(staging));
        Assert.Equal("", Host.Try("findmnt", "-n", "--source", loop.Device).Stdout.Trim());
    }

    [Fact]
    public async Task Volume_condition_reports_an_ext4_remounted_read_only_after_an_error()
    {
        var (loop, staging) = await StagedFilesystemAsync("ext4", 64 * MiB, "errors=remount-ro");
        var target = _scratch.Path("pods", "p", "mount");
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        using var node = await NodeProcess.StartAsync(_scratch.Root, _instance);
        await node.Client.NodePublishVolumeAsync(Publish(staging, target, Mount("ext4")));
        var healthy = await node.Client.NodeGetVolumeStatsAsync(new NodeGetVolumeStatsRequest { VolumeId = VolumeId, VolumePath = target });
        Assert.False(healthy.VolumeCondition.Abnormal, healthy.VolumeCondition.Message);

        // A real ext4 error, raised by the kernel's own test hook.
        File.WriteAllText($"/sys/fs/ext4/{loop.Name}/trigger_fs_error", "1");

        var sick = await node.Client.NodeGetVolumeStatsAsync(new NodeGetVolumeStatsRequest { VolumeId = VolumeId, VolumePath = target });
        Assert.True(sick.VolumeCondition.Abnormal);
        Assert.Contains("remounted read-only", sick.VolumeCondition.Message);
        Assert.Contains("recorded 1 error", sick.VolumeCondition.Message);
        Assert.Throws<IOException>(() => File.WriteAllText(Path.Join(target, "x"), "x"));
    }

    [Fact]
    public async Task Volume_condition_reports_a_shut_down_xfs()
    {
        var (_, staging) = await StagedFilesystemAsync("xfs", 320 * MiB);
        var target = _scratch.Path("pods", "p", "mount");
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        using var node = await NodeProcess.StartAsync(_scratch.Root, _instance);
        await node.Client.NodePublishVolumeAsync(Publish(staging, target, Mount("xfs")));

        Host.Run("xfs_io", "-x", "-c", "shutdown", staging);

        var sick = await node.Client.NodeGetVolumeStatsAsync(new NodeGetVolumeStatsRequest { VolumeId = VolumeId, VolumePath = target });
        Assert.True(sick.VolumeCondition.Abnormal);
        Assert.Contains("shut down", sick.VolumeCondition.Message);
        // Cleanup still works on a dead filesystem.
        await node.Client.NodeUnpublishVolumeAsync(new NodeUnpublishVolumeRequest { VolumeId = VolumeId, TargetPath = target });
        await node.Client.NodeUnstageVolumeAsync(new NodeUnstageVolumeRequest { VolumeId = VolumeId, StagingTargetPath = staging });
        Assert.False(Host.IsMountPoint(staging));
    }

    [Fact]
    public async Task Volume_mount_group_gives_the_group_the_volume()
    {
        var (_, staging) = await StagedFilesystemAsync("ext4", 64 * MiB);
        var target = _scratch.Path("pods", "p", "mount");
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        using var node = await NodeProcess.StartAsync(_scratch.Root, _instance);
        await node.Client.NodePublishVolumeAsync(Publish(staging, target, Mount("ext4", group: "3456")));
        Assert.Equal("3456", Host.Run("stat", "-c", "%g", target).Trim());
        Assert.Equal("2775", Host.Run("stat", "-c", "%a", target).Trim());
    }

    [Fact]
    public async Task Stage_refuses_bad_contexts_and_a_staging_path_holding_another_device()
    {
        var (_, staging) = await StagedFilesystemAsync("ext4", 64 * MiB);
        using var node = await NodeProcess.StartAsync(_scratch.Root, _instance);
        var request = new NodeStageVolumeRequest
        {
            VolumeId = VolumeId,
            StagingTargetPath = staging,
            VolumeCapability = Mount("ext4"),
        };
        var noPortals = await Assert.ThrowsAsync<RpcException>(() => node.Client.NodeStageVolumeAsync(request).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, noPortals.StatusCode);
        Assert.Contains("csi-scst.io/portals", noPortals.Status.Detail);

        request.PublishContext.Add("csi-scst.io/portals", "127.0.0.1:3260");
        request.PublishContext.Add("csi-scst.io/lun", "0");
        request.Secrets.Add("username", "only-a-user");
        var halfChap = await Assert.ThrowsAsync<RpcException>(() => node.Client.NodeStageVolumeAsync(request).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, halfChap.StatusCode);
        Assert.DoesNotContain("only-a-user", halfChap.Status.Detail);

        request.Secrets.Clear();
        // The staging path is a mount of a loop device: not this volume (no SCSI serial CS0123456789abcdef).
        var occupied = await Assert.ThrowsAsync<RpcException>(() => node.Client.NodeStageVolumeAsync(request).ResponseAsync);
        Assert.Equal(StatusCode.AlreadyExists, occupied.StatusCode);
        Assert.Contains("CS0123456789abcdef", occupied.Status.Detail);
        Assert.True(Host.IsMountPoint(staging));
    }

    [Fact]
    public async Task Stage_without_iscsid_fails_clearly_and_unstage_removes_the_node_record_it_wrote()
    {
        using var node = await NodeProcess.StartAsync(_scratch.Root, _instance);
        var staging = _scratch.Path("plugins", "pv2", "globalmount");
        var iqn = $"iqn.2026-11.io.csi-scst:{_instance}.0123456789abcdef";
        var request = new NodeStageVolumeRequest
        {
            VolumeId = VolumeId,
            StagingTargetPath = staging,
            VolumeCapability = Mount("ext4"),
        };
        request.PublishContext.Add("csi-scst.io/portals", "127.0.0.1:3260");
        request.PublishContext.Add("csi-scst.io/iqn", iqn);
        request.PublishContext.Add("csi-scst.io/lun", "0");
        request.Secrets.Add("username", "chap-user");
        request.Secrets.Add("password", "chap-secret-never-shown");
        try
        {
            var e = await Assert.ThrowsAsync<RpcException>(() => node.Client.NodeStageVolumeAsync(request).ResponseAsync);
            // This host has no iSCSI kernel initiator: iscsiadm cannot reach iscsid.
            Assert.Equal(StatusCode.FailedPrecondition, e.StatusCode);
            Assert.Contains("iscsid", e.Status.Detail);
            Assert.Contains(iqn, e.Status.Detail);
            Assert.DoesNotContain("chap-secret-never-shown", e.Status.Detail);
            Assert.DoesNotContain("chap-secret-never-shown", node.Log);
            // The record was written with our settings (and CHAP) before the login.
            var record = Host.Run("iscsiadm", "-m", "node", "-T", iqn, "-p", "127.0.0.1:3260", "-I", "default");
            Assert.Contains("node.startup = manual", record);
            Assert.Contains("node.session.timeo.replacement_timeout = 120", record);
            Assert.Contains("node.session.auth.authmethod = CHAP", record);
            Assert.Contains("node.session.auth.username = chap-user", record);
        }
        finally
        {
            await node.Client.NodeUnstageVolumeAsync(new NodeUnstageVolumeRequest { VolumeId = VolumeId, StagingTargetPath = staging });
        }
        Assert.Equal(21, Host.Try("iscsiadm", "-m", "node", "-T", iqn).ExitCode);   // no records left
    }

    [Fact]
    public async Task Node_id_carries_the_initiator_name_from_the_file_generated_with_iscsi_iname_when_missing()
    {
        var file = _scratch.Path("etc-iscsi", "initiatorname.iscsi");
        using (var node = await NodeProcess.StartAsync(_scratch.Root, _instance, initiatorName: null, "--initiator-name-file", file))
        {
            var id = (await node.Client.NodeGetInfoAsync(new NodeGetInfoRequest())).NodeId;
            var iqn = File.ReadAllLines(file).Single(l => l.StartsWith("InitiatorName=", StringComparison.Ordinal))["InitiatorName=".Length..];
            Assert.StartsWith("iqn.", iqn);
            Assert.Equal("it-node/" + iqn, id);
        }
        // A second start reads the same name back.
        using var again = await NodeProcess.StartAsync(_scratch.Root, _instance, initiatorName: null, "--initiator-name-file", file);
        var second = (await again.Client.NodeGetInfoAsync(new NodeGetInfoRequest())).NodeId;
        Assert.Equal("it-node/" + File.ReadAllLines(file).Single()["InitiatorName=".Length..], second);
    }
}
