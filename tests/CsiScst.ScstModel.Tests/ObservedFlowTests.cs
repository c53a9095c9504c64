using CsiScst.ScstModel.Tests.Infrastructure;

namespace CsiScst.ScstModel.Tests;

/// <summary>interfaces.md F: the flow seen on a real SCST, end to end.</summary>
public sealed class ObservedFlowTests : ModelTest
{
    [Fact]
    public void F_publish_and_teardown_flow_works_write_by_write()
    {
        const string tgt = ModelHarness.Target;
        const string ini = ModelHarness.Initiator;
        string t = $"targets/iscsi/{tgt}";
        string img = M.Image(32 << 20);

        // add_device (vdisk_blockio) → add_target → create GRP → add NAME 0 → add INITIATOR → enabled → driver enabled
        M.Ok("handlers/vdisk_blockio/mgmt", $"add_device csi_csi_0123456789abcdef filename={img}\n");
        M.Ok("targets/iscsi/mgmt", $"add_target {tgt}\n");
        M.Ok($"{t}/ini_groups/mgmt", "create ini_0011223344556677\n");
        M.Ok($"{t}/ini_groups/ini_0011223344556677/luns/mgmt", "add csi_csi_0123456789abcdef 0\n");
        M.Ok($"{t}/ini_groups/ini_0011223344556677/initiators/mgmt", $"add {ini}\n");
        M.Ok($"{t}/enabled", "1\n");
        M.Ok("targets/iscsi/enabled", "1\n");
        Assert.Equal("0\n", M.R("last_sysfs_mgmt_res"));

        // The initiator logs in and sees LUN 0 of its group.
        Assert.Equal(0, M.Login());
        Assert.True(M.Exists($"{t}/sessions/{ini}/lun0"));
        Assert.Equal($"{img}\n[key]\n", M.R("devices/csi_csi_0123456789abcdef/filename"));
        Assert.Equal($"{32 << 20}\n[key]\n", M.R("devices/csi_csi_0123456789abcdef/size"));
        Assert.Equal("1\n[key]\n", M.R($"{t}/rel_tgt_id"));

        // Teardown in reverse: initiators del, luns del 0, ini_groups del GRP, del_target, del_device.
        Assert.Equal(0, M.Control("logout", $"{tgt} {ini}\n"));
        M.Ok($"{t}/ini_groups/ini_0011223344556677/initiators/mgmt", $"del {ini}\n");
        M.Ok($"{t}/ini_groups/ini_0011223344556677/luns/mgmt", "del 0\n");
        M.Ok($"{t}/ini_groups/mgmt", "del ini_0011223344556677\n");
        M.Ok("targets/iscsi/mgmt", $"del_target {tgt}\n");
        M.Ok("handlers/vdisk_blockio/mgmt", "del_device csi_csi_0123456789abcdef\n");

        Assert.False(M.Exists(t));
        Assert.False(M.Exists("devices/csi_csi_0123456789abcdef"));
        Assert.Equal("0\n", M.R("last_sysfs_mgmt_res"));

        // Every write of the flow was accepted.
        string[] ops = M.Ops.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(12, ops.Length);
        Assert.All(ops, line => Assert.EndsWith("\t0", line));
    }

    [Fact]
    public void F_listing_devices_skips_entries_without_a_handler_link()
    {
        M.AddFileDevice("d1");
        Assert.Equal(0, M.Control("scsi_disk", "2:0:0:0\n"));
        string[] ours = Directory.GetDirectories(M.P("devices"))
            .Where(d => Path.Exists(Path.Combine(d, "handler")))
            .Select(Path.GetFileName)
            .ToArray()!;
        Assert.Equal(["d1"], ours);
    }
}
