using CsiScst.ScstModel.Tests.Infrastructure;

namespace CsiScst.ScstModel.Tests;

/// <summary>interfaces.md A.5: targets/iscsi/mgmt and the per-target iSCSI attributes.</summary>
public sealed class IscsiTargetTests : ModelTest
{
    private const string Mgmt = "targets/iscsi/mgmt";
    private const string Tgt = ModelHarness.Target;

    [Fact]
    public void A5_add_target_of_an_existing_name_is_EEXIST_and_F_nothing_is_logged()
    {
        M.AddTarget();
        string before = M.Dmesg;
        Assert.Equal(Sys.EEXIST, M.W(Mgmt, $"add_target {Tgt}\n"));
        Assert.Equal(before, M.Dmesg);
    }

    [Fact]
    public void A5_del_target_of_an_unknown_name_is_ENOENT()
    {
        Assert.Equal(Sys.ENOENT, M.W(Mgmt, "del_target iqn.2026-01.io.example:nope\n"));
    }

    [Fact]
    public void A5_target_names_can_have_up_to_255_characters()
    {
        string name255 = "iqn.2026-01.io.example:" + new string('x', 255 - 23);
        M.Ok(Mgmt, $"add_target {name255}\n");
        Assert.True(M.Exists($"targets/iscsi/{name255}"));
        Assert.Equal(Sys.EINVAL, M.W(Mgmt, $"add_target {name255}y\n"));
    }

    [Fact]
    public void A2_a_new_target_has_its_core_and_iscsi_attributes()
    {
        M.AddTarget();
        foreach (string f in new[] { "enabled", "rel_tgt_id", "addr_method", "io_grouping_type", "cpu_mask", "black_hole", "comment", "tid", "alias", "redirect", "per_portal_acl", "luns/mgmt", "ini_groups/mgmt", "sessions" })
        {
            Assert.True(M.Exists($"{M.T()}/{f}"), f);
        }

        Assert.Equal("0\n", M.R($"{M.T()}/enabled"));
        Assert.Equal("0\n", M.R($"{M.T()}/rel_tgt_id"));
        Assert.Equal("1\n", M.R($"{M.T()}/tid"));
    }

    [Fact]
    public void A5_iscsi_parameters_have_the_documented_defaults()
    {
        M.AddTarget();
        Assert.Equal("32\n", M.R($"{M.T()}/QueuedCommands"));
        Assert.Equal("0\n", M.R($"{M.T()}/MaxSessions"));
        Assert.Equal("30\n", M.R($"{M.T()}/NopInInterval"));
        Assert.Equal("30\n", M.R($"{M.T()}/NopInTimeout"));
        Assert.Equal("90\n", M.R($"{M.T()}/RspTimeout"));
        Assert.Equal("No\n", M.R($"{M.T()}/InitialR2T"));
        Assert.Equal("Yes\n", M.R($"{M.T()}/ImmediateData"));
        Assert.Equal("65536\n", M.R($"{M.T()}/FirstBurstLength"));
        Assert.Equal("32\n", M.R($"{M.T()}/MaxOutstandingR2T"));
        Assert.Equal("None\n", M.R($"{M.T()}/HeaderDigest"));
        Assert.Equal("None\n", M.R($"{M.T()}/DataDigest"));
    }

    [Fact]
    public void A5_writing_an_iscsi_parameter_sets_it_and_marks_it_as_key()
    {
        M.AddTarget();
        M.Ok($"{M.T()}/QueuedCommands", "8\n");
        Assert.Equal("8\n[key]\n\n", M.R($"{M.T()}/QueuedCommands"));
        M.Ok($"{M.T()}/HeaderDigest", "CRC32C,None\n");
        Assert.Equal("None,CRC32C\n[key]\n\n", M.R($"{M.T()}/HeaderDigest"));
        M.Ok($"{M.T()}/ImmediateData", "No\n");
        Assert.Equal("No\n[key]\n\n", M.R($"{M.T()}/ImmediateData"));

        // Yes/No are matched exactly; ranges are checked; minimum 512 for the data lengths.
        Assert.Equal(Sys.EINVAL, M.W($"{M.T()}/ImmediateData", "yes\n"));
        Assert.Equal(Sys.EINVAL, M.W($"{M.T()}/MaxRecvDataSegmentLength", "511\n"));
        Assert.Equal(Sys.EINVAL, M.W($"{M.T()}/MaxSessions", "65536\n"));
        Assert.Equal(Sys.EINVAL, M.W($"{M.T()}/DataDigest", "MD5\n"));
        Assert.Equal(Sys.EINVAL, M.W($"{M.T()}/QueuedCommands", "8 9\n"));
    }

    [Fact]
    public void A5_add_target_takes_iscsi_parameters_too()
    {
        M.Ok(Mgmt, $"add_target {Tgt} QueuedCommands=8;HeaderDigest=CRC32C\n");
        Assert.Equal("8\n[key]\n\n", M.R($"{M.T()}/QueuedCommands"));
        Assert.Equal("CRC32C\n[key]\n\n", M.R($"{M.T()}/HeaderDigest"));
        Assert.Equal(Sys.EINVAL, M.W(Mgmt, "add_target iqn.2026-01.io.example:bad NoSuchKey=1\n"));
        Assert.False(M.Exists("targets/iscsi/iqn.2026-01.io.example:bad"));
    }

    [Fact]
    public void A5_incoming_users_get_numbered_files_with_user_secret_and_key()
    {
        M.AddTarget();
        M.Ok(Mgmt, $"add_target_attribute {Tgt} IncomingUser alice 12charsecret!\n");
        M.Ok(Mgmt, $"add_target_attribute {Tgt} IncomingUser bob 12charsecret2\n");
        Assert.Equal("alice 12charsecret!\n[key]\n\n", M.R($"{M.T()}/IncomingUser"));
        Assert.Equal("bob 12charsecret2\n[key]\n\n", M.R($"{M.T()}/IncomingUser1"));

        // Writing "user secret" into an existing file replaces that entry.
        M.Ok($"{M.T()}/IncomingUser1", "carol anothersecret\n");
        Assert.Equal("carol anothersecret\n[key]\n\n", M.R($"{M.T()}/IncomingUser1"));

        // del_target_attribute takes the user name.
        M.Ok(Mgmt, $"del_target_attribute {Tgt} IncomingUser alice\n");
        Assert.False(M.Exists($"{M.T()}/IncomingUser"));
        Assert.Equal(Sys.ENOENT, M.W(Mgmt, $"del_target_attribute {Tgt} IncomingUser alice\n"));
    }

    [Fact]
    public void A5_a_secret_shorter_than_12_characters_is_EINVAL()
    {
        M.AddTarget();
        Assert.Equal(Sys.EINVAL, M.W(Mgmt, $"add_target_attribute {Tgt} IncomingUser alice 11charsecre\n"));
        Assert.Equal(Sys.EINVAL, M.W(Mgmt, "add_attribute IncomingUser disc short\n"));
        Assert.Contains("Secret for user alice is too short", M.Dmesg);
        Assert.False(M.Exists($"{M.T()}/IncomingUser"));
    }

    [Fact]
    public void A5_only_one_outgoing_user_is_kept()
    {
        M.AddTarget();
        M.Ok(Mgmt, $"add_target_attribute {Tgt} OutgoingUser tgtuser 12charsecret2\n");
        M.Ok(Mgmt, $"add_target_attribute {Tgt} OutgoingUser tgtuser2 12charsecret3\n");
        Assert.Equal("tgtuser2 12charsecret3\n[key]\n\n", M.R($"{M.T()}/OutgoingUser"));
        Assert.False(M.Exists($"{M.T()}/OutgoingUser1"));
    }

    [Fact]
    public void A5_allowed_portal_entries_are_numbered_and_deleted_by_value()
    {
        M.AddTarget();
        M.Ok(Mgmt, $"add_target_attribute {Tgt} allowed_portal 10.0.0.5\n");
        M.Ok(Mgmt, $"add_target_attribute {Tgt} allowed_portal 10.0.1.*\n");
        Assert.Equal("10.0.0.5\n[key]\n\n", M.R($"{M.T()}/allowed_portal"));
        Assert.Equal("10.0.1.*\n[key]\n\n", M.R($"{M.T()}/allowed_portal1"));
        M.Ok(Mgmt, $"del_target_attribute {Tgt} allowed_portal 10.0.0.5\n");
        Assert.False(M.Exists($"{M.T()}/allowed_portal"));
        Assert.Equal(Sys.EINVAL, M.W(Mgmt, $"del_target_attribute {Tgt} allowed_portal 10.9.9.9\n"));
    }

    [Fact]
    public void A5_add_attribute_sets_discovery_chap_on_the_driver()
    {
        M.Ok(Mgmt, "add_attribute IncomingUser disc 12charsecret\n");
        Assert.Equal("disc 12charsecret\n[key]\n\n", M.R("targets/iscsi/IncomingUser"));
        M.Ok(Mgmt, "del_attribute IncomingUser disc\n");
        Assert.False(M.Exists("targets/iscsi/IncomingUser"));

        // allowed_portal belongs to a target.
        Assert.Equal(Sys.EINVAL, M.W(Mgmt, "add_attribute allowed_portal 10.0.0.5\n"));
    }

    [Fact]
    public void A5_target_attributes_of_an_unknown_target_are_ENOENT()
    {
        Assert.Equal(Sys.ENOENT, M.W(Mgmt, "add_target_attribute iqn.nope IncomingUser a 12charsecret\n"));
    }

    [Fact]
    public void A5_an_unknown_mgmt_command_goes_to_the_daemon_and_is_EINVAL()
    {
        Assert.Equal(Sys.EINVAL, M.W(Mgmt, "rename_target a b\n"));
        Assert.Contains("Syntax error at rename_target", M.Dmesg);
        Assert.Equal(Sys.EINVAL, M.W(Mgmt, "add_target\n"));
        Assert.Contains("Target name required", M.Dmesg);
    }

    [Fact]
    public void A5_enabled_takes_a_value_whose_first_character_is_0_or_1()
    {
        M.AddTarget();
        Assert.Equal(Sys.EINVAL, M.W($"{M.T()}/enabled", "yes\n"));
        Assert.Equal(Sys.EINVAL, M.W($"{M.T()}/enabled", "2\n"));
        M.Ok($"{M.T()}/enabled", "1 whatever\n");
        Assert.Equal("1\n", M.R($"{M.T()}/enabled"));
        M.Ok($"{M.T()}/enabled", "0\n");
        Assert.Equal("0\n", M.R($"{M.T()}/enabled"));
    }

    [Fact]
    public void A5_enabling_generates_a_rel_tgt_id_when_it_is_0()
    {
        M.AddTarget();
        M.AddTarget("iqn.2026-01.io.example:vol2");
        M.Ok($"{M.T()}/enabled", "1\n");
        M.Ok("targets/iscsi/iqn.2026-01.io.example:vol2/enabled", "1\n");
        Assert.Equal("1\n[key]\n", M.R($"{M.T()}/rel_tgt_id"));
        Assert.Equal("2\n[key]\n", M.R("targets/iscsi/iqn.2026-01.io.example:vol2/rel_tgt_id"));
        Assert.Contains($"Using autogenerated relative target id 1 for target {Tgt}", M.Dmesg);
    }

    [Fact]
    public void A5_enabling_with_a_rel_tgt_id_another_target_uses_is_EBADSLT()
    {
        M.AddTarget();
        M.AddTarget("iqn.2026-01.io.example:vol2");
        M.Ok($"{M.T()}/rel_tgt_id", "7\n");
        M.Ok("targets/iscsi/iqn.2026-01.io.example:vol2/rel_tgt_id", "7\n"); // both disabled: not checked yet
        M.Ok($"{M.T()}/enabled", "1\n");
        Assert.Equal(Sys.EBADSLT, M.W("targets/iscsi/iqn.2026-01.io.example:vol2/enabled", "1\n"));
        Assert.Equal("0\n", M.R("targets/iscsi/iqn.2026-01.io.example:vol2/enabled"));

        // Writing its own id again is no change; an enabled target cannot take a used id, nor 0.
        M.Ok($"{M.T()}/rel_tgt_id", "0x7\n");
        M.Ok("targets/iscsi/iqn.2026-01.io.example:vol2/rel_tgt_id", "8\n");
        M.Ok("targets/iscsi/iqn.2026-01.io.example:vol2/enabled", "1\n");
        Assert.Equal(Sys.EBADSLT, M.W("targets/iscsi/iqn.2026-01.io.example:vol2/rel_tgt_id", "7\n"));
        Assert.Equal(Sys.EINVAL, M.W("targets/iscsi/iqn.2026-01.io.example:vol2/rel_tgt_id", "70000\n"));

        // 0 is taken by copy_manager_tgt, which SCST always counts (it has no is_target_enabled), and the
        // uniqueness check comes before the range check.
        Assert.Equal(Sys.EBADSLT, M.W("targets/iscsi/iqn.2026-01.io.example:vol2/rel_tgt_id", "0\n"));
    }

    [Fact]
    public void A5_redirect_takes_an_address_and_a_type_and_empty_removes_it()
    {
        M.AddTarget();
        M.Ok($"{M.T()}/redirect", "10.0.0.7:3261 temp\n");
        Assert.Equal("10.0.0.7:3261 temp\n[key]\n\n", M.R($"{M.T()}/redirect"));
        Assert.Equal(Sys.EINVAL, M.W($"{M.T()}/redirect", "10.0.0.7 sideways\n"));
        Assert.Equal(Sys.EINVAL, M.W($"{M.T()}/redirect", "not-an-ip perm\n"));
        M.Ok($"{M.T()}/redirect", "\n");
        Assert.Equal("\n", M.R($"{M.T()}/redirect"));
    }

    [Fact]
    public void A5_per_portal_acl_is_0_or_1()
    {
        M.AddTarget();
        Assert.Equal("0\n\n", M.R($"{M.T()}/per_portal_acl"));
        M.Ok($"{M.T()}/per_portal_acl", "1\n");
        Assert.Equal("1\n[key]\n\n", M.R($"{M.T()}/per_portal_acl"));
        Assert.Equal(Sys.EINVAL, M.W($"{M.T()}/per_portal_acl", "2\n"));
    }

    [Fact]
    public void A5_tid_is_read_only()
    {
        M.AddTarget();
        Assert.Equal(Sys.EACCES, M.W($"{M.T()}/tid", "5\n"));
    }

    [Fact]
    public void F_a_deleted_target_name_can_be_reused_at_once()
    {
        M.AddTarget();
        M.Ok(Mgmt, $"del_target {Tgt}\n");
        Assert.False(M.Exists(M.T()));
        M.AddTarget();
        Assert.True(M.Exists(M.T()));
    }
}
