using CsiScst.ScstModel.Tests.Infrastructure;

namespace CsiScst.ScstModel.Tests;

/// <summary>interfaces.md A.6 (how a session finds its LUNs, listing sessions) and F (access control).</summary>
public sealed class SessionTests : ModelTest
{
    private const string Ini = ModelHarness.Initiator;

    private string Sessions => $"{M.T()}/sessions";

    [Fact]
    public void A6_a_session_directory_shows_initiator_luns_link_and_connection()
    {
        M.Export("d1");
        Assert.Equal(0, M.Login(ip: "10.0.0.9"));
        string s = $"{Sessions}/{Ini}";
        Assert.Equal($"{Ini}\n", M.R($"{s}/initiator_name"));
        Assert.Equal("../../ini_groups/grp1/luns", new FileInfo(M.P($"{s}/luns")).LinkTarget);
        Assert.True(M.Exists($"{s}/lun0"));
        Assert.Equal("10.0.0.9\n", M.R($"{s}/10.0.0.9/ip"));
        Assert.True(M.Exists($"{s}/10.0.0.9/cid"));
        Assert.True(M.Exists($"{s}/10.0.0.9/state"));
        Assert.Equal("None\n", M.R($"{s}/HeaderDigest"));
    }

    [Fact]
    public void A2_a_second_session_of_the_same_initiator_gets_a_numbered_directory()
    {
        M.Export("d1");
        Assert.Equal(0, M.Login(ip: "10.0.0.9"));
        Assert.Equal(0, M.Login(ip: "10.0.0.10"));
        Assert.Equal(0, M.Login(ip: "10.0.0.11"));
        Assert.True(M.Exists($"{Sessions}/{Ini}"));
        Assert.True(M.Exists($"{Sessions}/{Ini}_1/10.0.0.10"));
        Assert.True(M.Exists($"{Sessions}/{Ini}_2/10.0.0.11"));
    }

    [Fact]
    public void A6_force_close_closes_the_session()
    {
        M.Export("d1");
        Assert.Equal(0, M.Login());
        Assert.Equal(Sys.EACCES, M.ReadErrno($"{Sessions}/{Ini}/force_close", out _));
        M.Ok($"{Sessions}/{Ini}/force_close", "1\n");
        Assert.False(M.Exists($"{Sessions}/{Ini}"));
    }

    [Fact]
    public void F_an_initiator_in_no_group_of_a_target_with_an_empty_default_lun_set_is_refused()
    {
        M.Export("d1");
        Assert.Equal(Sys.EACCES, M.Login(initiator: "iqn.1993-08.org.debian:01:stranger"));
        Assert.Contains("target not found (02/03)", M.Dmesg);
        Assert.Empty(Directory.GetDirectories(M.P(Sessions)));
    }

    [Fact]
    public void A6_an_initiator_in_no_group_uses_the_default_luns()
    {
        M.AddFileDevice("d1");
        M.AddTarget();
        M.Ok($"{M.T()}/luns/mgmt", "add d1 0\n");
        M.Ok($"{M.T()}/enabled", "1\n");
        M.Ok("targets/iscsi/enabled", "1\n");
        Assert.Equal(0, M.Login(initiator: "iqn.anyone"));
        Assert.Equal("../../luns", new FileInfo(M.P($"{Sessions}/iqn.anyone/luns")).LinkTarget);
    }

    [Fact]
    public void A6_every_lun_set_must_contain_lun_0_or_initiators_see_nothing()
    {
        M.AddFileDevice("d1");
        M.AddTarget();
        M.Ok($"{M.T()}/ini_groups/mgmt", "create g1\n");
        M.Ok($"{M.T()}/ini_groups/g1/luns/mgmt", "add d1 1\n");
        M.Ok($"{M.T()}/ini_groups/g1/initiators/mgmt", $"add {Ini}\n");
        M.Ok($"{M.T()}/enabled", "1\n");
        M.Ok("targets/iscsi/enabled", "1\n");
        Assert.Equal(Sys.EACCES, M.Login());
        Assert.Contains("has no LUN 0", M.Dmesg);
    }

    [Fact]
    public void A5_a_disabled_target_refuses_logins()
    {
        M.Export("d1");
        M.Ok($"{M.T()}/enabled", "0\n");
        Assert.Equal(Sys.EACCES, M.Login());
        Assert.Contains($"Connect from {Ini} to disabled target {ModelHarness.Target} refused", M.Dmesg);
        M.Ok($"{M.T()}/enabled", "1\n");
        M.Ok("targets/iscsi/enabled", "0\n");
        Assert.Equal(Sys.EACCES, M.Login());
        Assert.Contains($"Connect from {Ini} to disabled iSCSI-SCST refused", M.Dmesg);
    }

    [Fact]
    public void A6_initiator_names_are_matched_with_star_question_mark_and_leading_bang()
    {
        M.AddFileDevice("d1");
        M.AddFileDevice("d2");
        M.AddFileDevice("d3");
        M.AddTarget();
        string g = $"{M.T()}/ini_groups";
        M.Ok($"{g}/mgmt", "create star\n");
        M.Ok($"{g}/star/luns/mgmt", "add d1 0\n");
        M.Ok($"{g}/star/initiators/mgmt", "add iqn.1993-08.org.debian:01:*\n");
        M.Ok($"{g}/mgmt", "create qmark\n");
        M.Ok($"{g}/qmark/luns/mgmt", "add d2 0\n");
        M.Ok($"{g}/qmark/initiators/mgmt", "add iqn.host-?\n");
        M.Ok($"{g}/mgmt", "create bang\n");
        M.Ok($"{g}/bang/luns/mgmt", "add d3 0\n");
        M.Ok($"{g}/bang/initiators/mgmt", "add !iqn.host-*\n");
        M.Ok($"{M.T()}/enabled", "1\n");
        M.Ok("targets/iscsi/enabled", "1\n");

        Assert.Equal(0, M.Login(initiator: "iqn.1993-08.org.debian:01:xyz"));
        Assert.Equal(0, M.Login(initiator: "IQN.HOST-7"));
        Assert.Equal(0, M.Login(initiator: "iqn.other"));
        Assert.Equal(Sys.EACCES, M.Login(initiator: "iqn.host-77")); // no group: default set is empty
        Assert.EndsWith("ini_groups/star/luns", new FileInfo(M.P($"{Sessions}/iqn.1993-08.org.debian:01:xyz/luns")).LinkTarget);
        Assert.EndsWith("ini_groups/qmark/luns", new FileInfo(M.P($"{Sessions}/IQN.HOST-7/luns")).LinkTarget);
        Assert.EndsWith("ini_groups/bang/luns", new FileInfo(M.P($"{Sessions}/iqn.other/luns")).LinkTarget);
    }

    [Fact]
    public void A6_adding_or_removing_an_initiator_re_evaluates_existing_sessions()
    {
        M.AddFileDevice("d1");
        M.AddFileDevice("d2");
        M.AddTarget();
        M.Ok($"{M.T()}/luns/mgmt", "add d1 0\n");
        M.Ok($"{M.T()}/ini_groups/mgmt", "create g1\n");
        M.Ok($"{M.T()}/ini_groups/g1/luns/mgmt", "add d2 0\n");
        M.Ok($"{M.T()}/ini_groups/g1/luns/mgmt", "add d1 1\n");
        M.Ok($"{M.T()}/enabled", "1\n");
        M.Ok("targets/iscsi/enabled", "1\n");
        Assert.Equal(0, M.Login());
        string s = $"{Sessions}/{Ini}";
        Assert.Equal("../../luns", new FileInfo(M.P($"{s}/luns")).LinkTarget);
        Assert.False(M.Exists($"{s}/lun1"));

        M.Ok($"{M.T()}/ini_groups/g1/initiators/mgmt", $"add {Ini}\n");
        Assert.Equal("../../ini_groups/g1/luns", new FileInfo(M.P($"{s}/luns")).LinkTarget);
        Assert.True(M.Exists($"{s}/lun1"));

        M.Ok($"{M.T()}/ini_groups/g1/initiators/mgmt", $"del {Ini}\n");
        Assert.Equal("../../luns", new FileInfo(M.P($"{s}/luns")).LinkTarget);
    }

    [Fact]
    public void A5_a_target_with_an_incoming_user_requires_chap()
    {
        M.Export("d1");
        M.Ok("targets/iscsi/mgmt", $"add_target_attribute {ModelHarness.Target} IncomingUser alice 12charsecret!\n");
        Assert.Equal(Sys.EACCES, M.Login());
        Assert.Equal(Sys.EACCES, M.Login(extra: " user=alice secret=wrongsecret!"));
        Assert.Equal(0, M.Login(extra: " user=alice secret=12charsecret!"));
    }

    [Fact]
    public void A5_allowed_portal_limits_the_portals_a_target_is_reached_on()
    {
        M.Export("d1");
        M.Ok("targets/iscsi/mgmt", $"add_target_attribute {ModelHarness.Target} allowed_portal 10.0.0.*\n");
        Assert.Equal(Sys.EACCES, M.Login(extra: " portal=192.168.1.1"));
        Assert.Equal(0, M.Login(extra: " portal=10.0.0.5"));
    }

    [Fact]
    public void A2_per_portal_acl_matches_initiators_as_iqn_hash_portal()
    {
        M.AddFileDevice("d1");
        M.AddTarget();
        M.Ok($"{M.T()}/per_portal_acl", "1\n");
        M.Ok($"{M.T()}/ini_groups/mgmt", "create g1\n");
        M.Ok($"{M.T()}/ini_groups/g1/luns/mgmt", "add d1 0\n");
        M.Ok($"{M.T()}/ini_groups/g1/initiators/mgmt", $"add {Ini}#10.0.0.5\n");
        M.Ok($"{M.T()}/enabled", "1\n");
        M.Ok("targets/iscsi/enabled", "1\n");
        Assert.Equal(Sys.EACCES, M.Login(extra: " portal=10.0.0.6"));
        Assert.Equal(0, M.Login(extra: " portal=10.0.0.5"));
    }

    [Fact]
    public void A5_session_parameters_only_affect_sessions_created_afterwards()
    {
        M.Export("d1");
        Assert.Equal(0, M.Login(ip: "10.0.0.1"));
        M.Ok($"{M.T()}/HeaderDigest", "CRC32C\n");
        Assert.Equal(0, M.Login(ip: "10.0.0.2"));
        Assert.Equal("None\n", M.R($"{Sessions}/{Ini}/HeaderDigest"));
        Assert.Equal("CRC32C\n", M.R($"{Sessions}/{Ini}_1/HeaderDigest"));
    }

    [Fact]
    public void A5_del_target_tears_down_its_sessions()
    {
        M.Export("d1");
        Assert.Equal(0, M.Login());
        M.Ok("targets/iscsi/mgmt", $"del_target {ModelHarness.Target}\n");
        Assert.False(M.Exists(M.T()));
        Assert.Contains("closed: target deleted", M.Dmesg);

        // Only the copy manager's LUN still exports the device.
        Assert.Single(Directory.GetFileSystemEntries(M.P("devices/d1/exported")));
    }

    [Fact]
    public void F_del_device_with_a_logged_in_session_succeeds_and_removes_its_luns()
    {
        M.Export("d1");
        Assert.Equal(0, M.Login());
        M.Ok("handlers/vdisk_fileio/mgmt", "del_device d1\n");
        Assert.False(M.Exists($"{M.T()}/ini_groups/grp1/luns/0"));
        Assert.True(M.Exists($"{Sessions}/{Ini}"));
        Assert.False(M.Exists($"{Sessions}/{Ini}/lun0"));
    }

    [Fact]
    public void A6_logout_removes_the_session()
    {
        M.Export("d1");
        Assert.Equal(0, M.Login());
        Assert.Equal(0, M.Control("logout", $"{ModelHarness.Target} {Ini}\n"));
        Assert.False(M.Exists($"{Sessions}/{Ini}"));
        Assert.Equal(Sys.ENOENT, M.Control("logout", $"{ModelHarness.Target} {Ini}\n"));
    }

    [Fact]
    public void A5_MaxSessions_limits_the_number_of_sessions()
    {
        M.Export("d1");
        M.Ok($"{M.T()}/MaxSessions", "1\n");
        Assert.Equal(0, M.Login(ip: "10.0.0.1"));
        Assert.Equal(Sys.EACCES, M.Login(ip: "10.0.0.2"));
    }
}
