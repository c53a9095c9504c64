using CsiScst.ScstModel.Tests.Infrastructure;

namespace CsiScst.ScstModel.Tests;

/// <summary>Reboot, iscsi-scstd going away (A.1) and the copy manager (A.2).</summary>
public sealed class LifecycleTests : ModelTest
{
    [Fact]
    public void A2_reboot_wipes_the_configuration_and_the_copy_manager_comes_back()
    {
        M.Export("d1");
        Assert.Equal(0, M.Login());
        M.Ok("setup_id", "0x99\n");
        Assert.Equal(0, M.Control("reboot", "1\n"));

        Assert.Empty(Directory.GetDirectories(M.P("devices")));
        Assert.False(M.Exists(M.T()));
        Assert.True(M.Exists("targets/copy_manager/copy_manager_tgt/luns/mgmt"));
        Assert.Empty(Directory.GetDirectories(M.P("targets/copy_manager/copy_manager_tgt/luns")));
        Assert.Equal("0x0\n\n", M.R("setup_id"));
        Assert.Equal("open\n", M.R("targets/iscsi/open_state"));
        Assert.Equal("0\n\n", M.R("targets/iscsi/enabled"));
        Assert.Equal("1\n", M.ReadControl("reboot"));

        // Names are free again.
        M.Export("d1");
    }

    [Fact]
    public void A1_without_iscsi_scstd_iscsi_commands_fail_with_EPERM()
    {
        Assert.Equal(0, M.Control("iscsi_scstd", "stop\n"));
        Assert.Equal("stopped\n", M.ReadControl("iscsi_scstd"));
        Assert.Equal("closed\n", M.R("targets/iscsi/open_state"));
        Assert.Equal(Sys.EPERM, M.W("targets/iscsi/mgmt", $"add_target {ModelHarness.Target}\n"));
        Assert.Contains("User space process is not connected. Is iscsi-scstd running?", M.Dmesg);
        Assert.Equal(Sys.EPERM, M.W("targets/iscsi/mgmt", "add_attribute IncomingUser disc 12charsecret\n"));
        Assert.Equal("-1\n", M.R("last_sysfs_mgmt_res"));

        // The kernel looks a name up before it asks the daemon.
        Assert.Equal(Sys.ENOENT, M.W("targets/iscsi/mgmt", "del_target iqn.nope\n"));

        // Device handlers do not need the daemon.
        M.Ok("handlers/vdisk_nullio/mgmt", "add_device n1\n");
    }

    [Fact]
    public void A1_the_daemons_attributes_exist_only_while_it_runs()
    {
        M.Ok("targets/iscsi/mgmt", "add_attribute IncomingUser disc 12charsecret\n");
        Assert.True(M.Exists("targets/iscsi/enabled"));
        Assert.True(M.Exists("targets/iscsi/IncomingUser"));
        Assert.Equal(0, M.Control("iscsi_scstd", "stop\n"));
        Assert.False(M.Exists("targets/iscsi/enabled"));
        Assert.False(M.Exists("targets/iscsi/iSNSServer"));
        Assert.False(M.Exists("targets/iscsi/IncomingUser"));
        Assert.True(M.Exists("targets/iscsi/mgmt"));
        Assert.True(M.Exists("targets/iscsi/open_state"));

        Assert.Equal(0, M.Control("iscsi_scstd", "start\n"));
        Assert.Equal("open\n", M.R("targets/iscsi/open_state"));
        Assert.Equal("0\n\n", M.R("targets/iscsi/enabled"));
        Assert.False(M.Exists("targets/iscsi/IncomingUser"));
    }

    [Fact]
    public void A1_when_iscsi_scstd_stops_the_kernel_deletes_every_iscsi_target()
    {
        // iscsi-scst kernel/config.c: release() of the daemon's control device calls target_del_all().
        M.Export("d1");
        Assert.Equal(0, M.Login());
        Assert.Equal(0, M.Control("iscsi_scstd", "stop\n"));
        Assert.False(M.Exists(M.T()));
        Assert.True(M.Exists("devices/d1"));
        Assert.Equal(Sys.EACCES, M.Login());
        Assert.Equal(0, M.Control("iscsi_scstd", "start\n"));
        Assert.False(M.Exists(M.T()));
    }

    [Fact]
    public void A2_the_copy_manager_target_cannot_be_deleted()
    {
        Assert.True(M.Exists("targets/copy_manager/copy_manager_tgt"));
        Assert.False(M.Exists("targets/copy_manager/mgmt"));
        Assert.Equal(Sys.ENOENT, M.W("targets/iscsi/mgmt", "del_target copy_manager_tgt\n"));
        Assert.True(M.Exists("targets/copy_manager/copy_manager_tgt"));
        Assert.False(M.Exists("targets/copy_manager/copy_manager_tgt/enabled"));
    }
}
