using CsiScst.Core.Errors;
using CsiScst.Initiator;
using CsiScst.Initiator.Devices;
using CsiScst.Initiator.Iscsi;
using Microsoft.Extensions.Logging.Abstractions;

namespace CsiScst.Tests.NodePlugin;

/// <summary>
/// Parsers against iscsiadm and sysfs as the real kernel initiator reported them in the test VM
/// (tests/fixtures/capture-node.sh vm): two targets on LIO, one of them logged in twice, through the
/// default iface and through a second iface with its own initiator name.
/// </summary>
public sealed class VmCaptureTests
{
    private const string Prefix = "iqn.2026-11.io.csi-scst:csi.";
    private const string NodeB = "iqn.2026-11.io.csi-scst.capture:node-b";
    private static readonly Portal Local = Portal.Parse("127.0.0.1:3260");

    [Fact]
    public void Session_tree_with_three_sessions_through_two_ifaces()
    {
        var sessions = SessionParser.ParseTree(Captures.Vm("session-P3-three").Stdout);
        Assert.Equal(3, sessions.Count);

        var (a, b, c) = (sessions[0], sessions[1], sessions[2]);
        Assert.Equal(Prefix + "1111111111111111", a.Target);
        Assert.Equal(Prefix + "2222222222222222", b.Target);
        // The third session is printed under the second's Target and portal lines.
        Assert.Equal(Prefix + "2222222222222222", c.Target);
        Assert.All(sessions, s => Assert.Equal(Local, s.PersistentPortal));
        Assert.All(sessions, s => Assert.Equal(Local, s.CurrentPortal));
        Assert.Equal(["default", "default", "csi-node-b"], sessions.Select(s => s.Iface));
        Assert.Equal(NodeB, c.InitiatorName);
        Assert.NotEqual(NodeB, a.InitiatorName);
        Assert.All(sessions, s => Assert.True(s.IsLoggedIn));
        Assert.All(sessions, s => Assert.Equal("LOGGED IN", s.ConnectionState));
        Assert.Equal(["sda", "sdb", "sdc"], sessions.Select(s => Assert.Single(s.Luns).Disk));
        Assert.All(sessions, s => Assert.Equal(0, s.Luns[0].Lun));
        Assert.All(sessions, s => Assert.Equal("running", s.Luns[0].State));
        Assert.Equal([2, 3, 4], sessions.Select(s => s.HostNumber ?? -1));
        Assert.Equal(sessions.Select(s => s.HostNumber), sessions.Select(s => (int?)s.Luns[0].Host));

        // The flat listing names the same sessions.
        var flat = SessionParser.ParseFlat(Captures.Vm("session-flat-three").Stdout);
        Assert.Equal(sessions.Select(s => (s.Sid, s.Target)), flat.Select(s => (s.Sid, s.Target)));
        // -P 1 has the same sessions without devices.
        var p1 = SessionParser.ParseTree(Captures.Vm("session-P1-three").Stdout);
        Assert.Equal(sessions.Select(s => (s.Sid, s.Target, s.Iface)), p1.Select(s => (s.Sid, s.Target, s.Iface)));
        Assert.All(p1, s => Assert.Empty(s.Luns));
    }

    [Fact]
    public void An_offline_disk_is_seen_in_the_session_tree()
    {
        var sessions = SessionParser.ParseTree(Captures.Vm("session-P3-offline").Stdout);
        Assert.Equal("offline", sessions.Single(s => s.Target == Prefix + "1111111111111111").Luns[0].State);
        Assert.All(sessions.Where(s => s.Target != Prefix + "1111111111111111"), s => Assert.Equal("running", s.Luns[0].State));
    }

    [Fact]
    public async Task Sessions_of_a_target_are_those_of_our_iface()
    {
        var capture = Captures.Vm("session-P3-three");
        var replay = (string iface) => new IscsiAdm(
            new ReplayToolRunner(capture with { Command = "iscsiadm -m session -P 3" }),
            new HostTools(new HostToolOptions()), new IscsiOptions { Iface = iface }, NullLogger<IscsiAdm>.Instance);
        var mine = await replay("default").SessionsOfAsync(Prefix + "2222222222222222", CancellationToken.None);
        Assert.Equal("sdb", Assert.Single(mine).Luns[0].Disk);
        var theirs = await replay("csi-node-b").SessionsOfAsync(Prefix + "2222222222222222", CancellationToken.None);
        Assert.Equal("sdc", Assert.Single(theirs).Luns[0].Disk);
    }

    [Fact]
    public async Task Login_to_an_existing_session_and_logout_of_a_gone_one_succeed()
    {
        var login = Captures.Vm("login-again");
        Assert.Equal(15, login.ExitCode);
        var runner = new ReplayToolRunner(login with { Command = $"iscsiadm -m node -T {Prefix}1111111111111111 -p 127.0.0.1:3260 -I default --login" });
        await new IscsiAdm(runner, new HostTools(new HostToolOptions()), new IscsiOptions(), NullLogger<IscsiAdm>.Instance)
            .LoginAsync(Prefix + "1111111111111111", Local, CancellationToken.None);

        var logout = Captures.Vm("logout-sid-again");
        var after = Captures.Vm("session-after-logout");
        var sid = int.Parse(logout.Command.Split(' ')[4], System.Globalization.CultureInfo.InvariantCulture);
        Assert.DoesNotContain(SessionParser.ParseTree(after.Stdout), s => s.Sid == sid);
        var logoutRunner = new ReplayToolRunner(logout, after with { Command = "iscsiadm -m session -P 3" });
        await new IscsiAdm(logoutRunner, new HostTools(new HostToolOptions()), new IscsiOptions(), NullLogger<IscsiAdm>.Instance)
            .LogoutSessionAsync(sid, CancellationToken.None);
        Assert.Equal(0, logoutRunner.Remaining);
    }

    [Fact]
    public async Task Logout_that_fails_while_the_session_still_exists_is_an_error()
    {
        var logout = Captures.Vm("logout-sid-again");
        var sid = int.Parse(logout.Command.Split(' ')[4], System.Globalization.CultureInfo.InvariantCulture);
        // Pretend the session is still listed: the listing from before the logout.
        var before = Captures.Vm("session-P3-three");
        Assert.Contains(SessionParser.ParseTree(before.Stdout), s => s.Sid == sid);
        var runner = new ReplayToolRunner(logout, before with { Command = "iscsiadm -m session -P 3" });
        var e = await Assert.ThrowsAsync<StatusException>(() =>
            new IscsiAdm(runner, new HostTools(new HostToolOptions()), new IscsiOptions(), NullLogger<IscsiAdm>.Instance).LogoutSessionAsync(sid, CancellationToken.None));
        Assert.Contains($"session {sid}", e.Message);
    }

    [Fact]
    public void By_path_names_are_the_ones_udev_made()
    {
        var listing = Captures.Vm("ls-by-path").Stdout;
        foreach (var key in new[] { "1111111111111111", "2222222222222222" })
        {
            Assert.Contains(ByPath.LinkName(Local, Prefix + key, 0) + " -> ../../sd", listing);
        }
        // One link for two sessions of one target: by-path alone cannot tell two ifaces apart.
        Assert.Single(listing.Split('\n'), l => l.Contains("csi.2222222222222222-lun-0"));
    }

    [Fact]
    public void The_unit_serial_page_the_kernel_exposes()
    {
        Assert.Equal("CS1111111111111111", Vpd.ParseUnitSerial(Captures.VmBytes("vpd_pg80-1111111111111111.bin")));
    }

    [Fact]
    public void Iface_record_with_its_own_initiator_name()
    {
        Assert.Equal(NodeB, IfaceParser.InitiatorName(Captures.Vm("iface-show").Stdout));
    }

    [Fact]
    public void Sysfs_links_have_the_shape_the_fake_tree_uses()
    {
        // SysfsBlockDevicesTests builds its tree with these shapes.
        Assert.Matches(@"^\.\./\.\./devices/platform/host\d+/session\d+/target\d+:0:0/\d+:0:0:0/block/sd[a-z]+$", Captures.Vm("sysfs-block-link").Stdout.Trim());
        Assert.Equal("../../../2:0:0:0", Captures.Vm("sysfs-device-link").Stdout.Trim());
        Assert.Equal("running", Captures.Vm("sysfs-device-state").Stdout.Trim());
        Assert.Equal("LOGGED_IN", Captures.Vm("sysfs-session-state").Stdout.Trim());
    }
}
