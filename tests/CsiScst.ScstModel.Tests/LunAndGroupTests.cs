using CsiScst.ScstModel.Tests.Infrastructure;

namespace CsiScst.ScstModel.Tests;

/// <summary>interfaces.md A.6: luns/mgmt, ini_groups/mgmt and initiators/mgmt.</summary>
public sealed class LunAndGroupTests : ModelTest
{
    private string Luns => $"{M.T()}/luns/mgmt";

    private void Setup()
    {
        M.AddFileDevice("d1");
        M.AddFileDevice("d2");
        M.AddTarget();
    }

    [Fact]
    public void A6_add_creates_the_lun_with_a_device_link_and_read_only()
    {
        Setup();
        M.Ok(Luns, "add d1 0\n");
        M.Ok(Luns, "add d2 1 read_only=1\n");
        Assert.Equal("0\n", M.R($"{M.T()}/luns/0/read_only"));
        Assert.Equal("1\n[key]\n", M.R($"{M.T()}/luns/1/read_only"));
        Assert.Equal("../../../../../devices/d2", new FileInfo(M.P($"{M.T()}/luns/1/device")).LinkTarget);
    }

    [Fact]
    public void A6_lun_numbers_run_from_0_to_16383()
    {
        Setup();
        M.Ok(Luns, "add d1 16383\n");
        Assert.True(M.Exists($"{M.T()}/luns/16383"));
        Assert.Equal(Sys.EINVAL, M.W(Luns, "add d2 16384\n"));
        Assert.Equal(Sys.EINVAL, M.W(Luns, "add d2 -1\n"));
        Assert.Equal(Sys.EINVAL, M.W(Luns, "add d2\n"));
    }

    [Fact]
    public void A6_a_lun_already_used_in_the_group_is_EEXIST_and_F_logged()
    {
        Setup();
        M.Ok($"{M.T()}/ini_groups/mgmt", "create allowed\n");
        M.Ok($"{M.T()}/ini_groups/allowed/luns/mgmt", "add d1 0\n");
        Assert.Equal(Sys.EEXIST, M.W($"{M.T()}/ini_groups/allowed/luns/mgmt", "add d2 0\n"));
        Assert.Contains("virt lun 0 already exists in group allowed", M.Dmesg);

        // The same number in another LUN set is fine.
        M.Ok(Luns, "add d2 0\n");
    }

    [Fact]
    public void A6_an_unknown_device_is_EINVAL()
    {
        Setup();
        Assert.Equal(Sys.EINVAL, M.W(Luns, "add nodev 0\n"));
        Assert.Contains("Device 'nodev' not found", M.Dmesg);
    }

    [Fact]
    public void A6_del_of_a_missing_lun_is_EINVAL()
    {
        Setup();
        Assert.Equal(Sys.EINVAL, M.W(Luns, "del 4\n"));
        M.Ok(Luns, "add d1 4\n");
        M.Ok(Luns, "del 4\n");
        Assert.False(M.Exists($"{M.T()}/luns/4"));
    }

    [Fact]
    public void A6_replace_and_replace_no_ua_swap_the_device_and_clear_empties_the_set()
    {
        Setup();
        M.Ok(Luns, "add d1 0\n");
        M.Ok(Luns, "replace d2 0\n");
        Assert.EndsWith("/devices/d2", new FileInfo(M.P($"{M.T()}/luns/0/device")).LinkTarget);
        M.Ok(Luns, "replace_no_ua d1 0 read_only=1\n");
        Assert.EndsWith("/devices/d1", new FileInfo(M.P($"{M.T()}/luns/0/device")).LinkTarget);
        Assert.Equal("1\n[key]\n", M.R($"{M.T()}/luns/0/read_only"));

        // replace of a free number just adds.
        M.Ok(Luns, "replace d2 9\n");
        M.Ok(Luns, "clear\n");
        Assert.Empty(Directory.GetDirectories(M.P($"{M.T()}/luns")));
        Assert.Contains($"Removed all devices from group {ModelHarness.Target}", M.Dmesg);
    }

    [Fact]
    public void A6_unknown_lun_actions_and_parameters_are_EINVAL()
    {
        Setup();
        Assert.Equal(Sys.EINVAL, M.W(Luns, "attach d1 0\n"));
        Assert.Equal(Sys.EINVAL, M.W(Luns, "add d1 0 write_only=1\n"));
        Assert.Equal(Sys.EINVAL, M.W(Luns, "clear now\n"));
    }

    [Fact]
    public void A6_create_of_an_existing_group_is_EEXIST_and_del_of_an_unknown_one_EINVAL()
    {
        Setup();
        M.Ok($"{M.T()}/ini_groups/mgmt", "create g1\n");
        Assert.Equal(Sys.EEXIST, M.W($"{M.T()}/ini_groups/mgmt", "create g1\n"));
        Assert.Equal(Sys.EINVAL, M.W($"{M.T()}/ini_groups/mgmt", "del g2\n"));
        Assert.Equal(Sys.EINVAL, M.W($"{M.T()}/ini_groups/mgmt", "create\n"));
        Assert.Equal(Sys.EINVAL, M.W($"{M.T()}/ini_groups/mgmt", "make g3\n"));
        M.Ok($"{M.T()}/ini_groups/mgmt", "del g1\n");
        Assert.False(M.Exists($"{M.T()}/ini_groups/g1"));
    }

    [Fact]
    public void A2_a_group_has_its_documented_entries()
    {
        Setup();
        M.Ok($"{M.T()}/ini_groups/mgmt", "create g1\n");
        foreach (string f in new[] { "initiators/mgmt", "luns/mgmt", "addr_method", "io_grouping_type", "cpu_mask", "black_hole", "per_sess_dedicated_tgt_threads" })
        {
            Assert.True(M.Exists($"{M.T()}/ini_groups/g1/{f}"), f);
        }
    }

    [Fact]
    public void A6_initiators_add_del_move_clear()
    {
        Setup();
        string ini = $"{M.T()}/ini_groups/g1/initiators";
        M.Ok($"{M.T()}/ini_groups/mgmt", "create g1\n");
        M.Ok($"{M.T()}/ini_groups/mgmt", "create g2\n");
        M.Ok($"{ini}/mgmt", $"add {ModelHarness.Initiator}\n");
        Assert.Equal($"{ModelHarness.Initiator}\n", M.R($"{ini}/{ModelHarness.Initiator}"));
        Assert.Equal(Sys.EEXIST, M.W($"{ini}/mgmt", $"add {ModelHarness.Initiator}\n"));
        Assert.Equal(Sys.EINVAL, M.W($"{ini}/mgmt", "del iqn.not.there\n"));

        M.Ok($"{ini}/mgmt", $"move {ModelHarness.Initiator} g2\n");
        Assert.False(M.Exists($"{ini}/{ModelHarness.Initiator}"));
        Assert.True(M.Exists($"{M.T()}/ini_groups/g2/initiators/{ModelHarness.Initiator}"));
        Assert.Equal(Sys.EINVAL, M.W($"{ini}/mgmt", $"move {ModelHarness.Initiator} g2\n"));
        Assert.Equal(Sys.EINVAL, M.W($"{M.T()}/ini_groups/g2/initiators/mgmt", $"move {ModelHarness.Initiator} nogroup\n"));

        // Moving into a group that already has the name is EEXIST.
        M.Ok($"{ini}/mgmt", $"add {ModelHarness.Initiator}\n");
        Assert.Equal(Sys.EEXIST, M.W($"{ini}/mgmt", $"move {ModelHarness.Initiator} g2\n"));

        M.Ok($"{M.T()}/ini_groups/g2/initiators/mgmt", "add iqn.x\n");
        M.Ok($"{M.T()}/ini_groups/g2/initiators/mgmt", "clear\n");
        Assert.Single(Directory.GetFiles(M.P($"{M.T()}/ini_groups/g2/initiators")));
    }

    [Fact]
    public void A6_the_initiators_verb_is_required()
    {
        // "The README example that writes a bare IQN into initiators/mgmt would fail ("Unknown action")."
        Setup();
        M.Ok($"{M.T()}/ini_groups/mgmt", "create g1\n");
        Assert.Equal(Sys.EINVAL, M.W($"{M.T()}/ini_groups/g1/initiators/mgmt", $"{ModelHarness.Initiator}\n"));
        Assert.Contains($"Unknown action \"{ModelHarness.Initiator}\"", M.Dmesg);
        Assert.Equal(Sys.EINVAL, M.W($"{M.T()}/ini_groups/g1/initiators/mgmt", "add\n"));
    }

    [Fact]
    public void A6_del_of_a_group_with_attached_sessions_is_EBUSY()
    {
        M.Export("d1");
        Assert.Equal(0, M.Login());
        Assert.Equal(Sys.EBUSY, M.W($"{M.T()}/ini_groups/mgmt", "del grp1\n"));
        Assert.Contains("Group grp1 is not empty", M.Dmesg);
        Assert.True(M.Exists($"{M.T()}/ini_groups/grp1"));
    }

    [Fact]
    public void A6_with_forcibly_close_sessions_del_of_a_busy_group_closes_its_sessions()
    {
        M.Export("d1");
        Assert.Equal(0, M.Login());
        Assert.Equal(0, M.Control("forcibly_close_sessions", "1\n"));
        M.Ok($"{M.T()}/ini_groups/mgmt", "del grp1\n");
        Assert.False(M.Exists($"{M.T()}/ini_groups/grp1"));
        Assert.Empty(Directory.GetDirectories(M.P($"{M.T()}/sessions")));
    }

    [Fact]
    public void A6_copy_manager_target_gets_a_lun_for_every_device()
    {
        // A.2: targets/copy_manager/copy_manager_tgt/luns/... (created automatically).
        M.AddFileDevice("d1");
        M.AddFileDevice("d2");
        Assert.EndsWith("/devices/d1", new FileInfo(M.P("targets/copy_manager/copy_manager_tgt/luns/0/device")).LinkTarget);
        Assert.EndsWith("/devices/d2", new FileInfo(M.P("targets/copy_manager/copy_manager_tgt/luns/1/device")).LinkTarget);
    }
}
