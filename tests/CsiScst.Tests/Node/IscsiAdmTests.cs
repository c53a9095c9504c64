using CsiScst.Core.Errors;
using CsiScst.Initiator;
using CsiScst.Initiator.Iscsi;
using Grpc.Core;
using Microsoft.Extensions.Logging.Abstractions;

namespace CsiScst.Tests.NodePlugin;

/// <summary>The iscsiadm wrapper against real iscsiadm runs recorded by tests/fixtures/capture-node.sh.</summary>
public sealed class IscsiAdmTests
{
    private const string Target = "iqn.2026-11.io.csi-scst:capture.0123456789abcdef";
    private static readonly Portal Local = Portal.Parse("127.0.0.1:3260");

    private static IscsiAdm Create(Core.Exec.IToolRunner tools, string? iface = null, string? hostRoot = null) =>
        new(tools, new HostTools(new HostToolOptions { HostRoot = hostRoot }), new IscsiOptions { Iface = iface }, NullLogger<IscsiAdm>.Instance);

    [Fact]
    public async Task Login_without_iscsid_is_a_failed_precondition_naming_iscsid()
    {
        var replay = new ReplayToolRunner(Captures.Host("login-without-iscsid"));
        var e = await Assert.ThrowsAsync<StatusException>(() => Create(replay).LoginAsync(Target, Local, CancellationToken.None));
        Assert.Equal(StatusCode.FailedPrecondition, e.Code);
        Assert.Contains("iscsid is not running", e.Message);
        Assert.Contains("could not connect to iscsid", e.Message);   // iscsiadm's own words are kept
        Assert.Contains(Target, e.Message);
    }

    [Fact]
    public async Task Login_without_a_record_is_internal()
    {
        var replay = new ReplayToolRunner(Captures.Host("login-no-record"));
        var e = await Assert.ThrowsAsync<StatusException>(() => Create(replay).LoginAsync(Target, Local, CancellationToken.None));
        Assert.Equal(StatusCode.Internal, e.Code);
        Assert.Contains("No records found", e.Message);
    }

    [Theory]
    [InlineData(15, null)]
    [InlineData(24, StatusCode.PermissionDenied)]
    [InlineData(19, StatusCode.FailedPrecondition)]
    [InlineData(8, StatusCode.Unavailable)]
    [InlineData(12, StatusCode.FailedPrecondition)]
    public async Task Login_exit_codes_map_to_csi_codes(int exitCode, StatusCode? expected)
    {
        var runner = new RecordingToolRunner(_ => (exitCode, ""));
        var login = Create(runner).LoginAsync(Target, Local, CancellationToken.None);
        if (expected is null)
        {
            await login;   // 15: a session already exists, which is what we wanted
        }
        else
        {
            Assert.Equal(expected, (await Assert.ThrowsAsync<StatusException>(() => login)).Code);
        }
    }

    [Fact]
    public async Task No_sessions_is_an_empty_list()
    {
        var replay = new ReplayToolRunner(Captures.Host("session-P3-none"));
        Assert.Empty(await Create(replay).ListSessionsAsync(CancellationToken.None));
    }

    [Fact]
    public async Task Deleting_records_that_are_gone_succeeds()
    {
        var replay = new ReplayToolRunner(Captures.Host("node-delete-target-iface"), Captures.Host("node-delete-none"));
        var iscsiadm = Create(replay);
        await iscsiadm.DeleteNodeRecordsAsync(Target, CancellationToken.None);
        await iscsiadm.DeleteNodeRecordsAsync(Target, CancellationToken.None);
        Assert.Equal(0, replay.Remaining);
    }

    [Fact]
    public async Task Logging_out_of_a_session_that_is_gone_succeeds_after_checking_the_session_list()
    {
        var replay = new ReplayToolRunner(Captures.Host("session-logout-missing"), Captures.Host("session-P3-none"));
        await Create(replay).LogoutSessionAsync(999, CancellationToken.None);
        Assert.Equal(0, replay.Remaining);
    }

    [Fact]
    public async Task Rescan_of_a_missing_session_fails_with_iscsiadm_words()
    {
        var replay = new ReplayToolRunner(Captures.Host("session-rescan-missing"));
        var e = await Assert.ThrowsAsync<StatusException>(() => Create(replay).RescanSessionAsync(999, CancellationToken.None));
        Assert.Contains("Could not get session info for sid 999", e.Message);
    }

    [Fact]
    public async Task Node_record_is_written_with_new_then_one_update_per_setting_and_secrets_redacted()
    {
        var runner = new RecordingToolRunner();
        var settings = new NodeRecordSettings(ReplacementTimeout: 120, LoginTimeout: 15, LoginRetries: 2, NoopOutInterval: 5, NoopOutTimeout: 5);
        await Create(runner).WriteNodeRecordAsync(Target, Local, settings, new ChapCredentials("user", "s3cret-password", "tuser", "mutual-s3cret"), CancellationToken.None);

        var lines = runner.Commands.Select(ReplayToolRunner.Line).ToArray();
        // The same command lines the capture script ran for real.
        Assert.Equal(Captures.Host("node-new").Command, lines[0]);
        Assert.Equal(Captures.Host("node-update-startup").Command, lines[1]);
        var updates = runner.Commands.Skip(1).Select(c => (Name: c.Arguments[c.Arguments.Count - 3], Value: c.Arguments[^1])).ToArray();
        Assert.Equal(
            [
                ("node.startup", "manual"),
                ("node.session.timeo.replacement_timeout", "120"),
                ("node.conn[0].timeo.login_timeout", "15"),
                ("node.session.initial_login_retry_max", "2"),
                ("node.conn[0].timeo.noop_out_interval", "5"),
                ("node.conn[0].timeo.noop_out_timeout", "5"),
                ("node.session.auth.authmethod", "CHAP"),
                ("node.session.auth.username", "user"),
                ("node.session.auth.password", "s3cret-password"),
                ("node.session.auth.username_in", "tuser"),
                ("node.session.auth.password_in", "mutual-s3cret"),
            ],
            updates);
        foreach (var command in runner.Commands)
        {
            Assert.DoesNotContain("s3cret", command.Display());
        }
        Assert.Contains("s3cret-password", runner.Commands[9].Secrets);
    }

    [Fact]
    public async Task Without_chap_the_record_says_authmethod_none()
    {
        var runner = new RecordingToolRunner();
        await Create(runner).WriteNodeRecordAsync(Target, Local, new NodeRecordSettings(120, 15, 2, 5, 5), null, CancellationToken.None);
        Assert.Equal("None", runner.Commands[^1].Arguments[^1]);
        Assert.Equal("node.session.auth.authmethod", runner.Commands[^1].Arguments[^3]);
    }

    [Fact]
    public async Task Every_node_command_names_the_iface_and_ipv6_portals_use_brackets()
    {
        var runner = new RecordingToolRunner();
        var iscsiadm = Create(runner, iface: "node-b");
        await iscsiadm.LoginAsync(Target, Portal.Parse("[fd00::5]:3260"), CancellationToken.None);
        await iscsiadm.DeleteNodeRecordsAsync(Target, CancellationToken.None);
        Assert.Equal($"iscsiadm -m node -T {Target} -p [fd00::5]:3260 -I node-b --login", ReplayToolRunner.Line(runner.Commands[0]));
        Assert.Equal($"iscsiadm -m node -T {Target} -I node-b -o delete", ReplayToolRunner.Line(runner.Commands[1]));
        // The capture shows iscsiadm stores an IPv6 portal in brackets too.
        Assert.Contains("[fd00::5]:3260,", Captures.Host("node-list-ipv6").Stdout);
    }

    [Fact]
    public async Task With_a_host_root_iscsiadm_runs_in_the_host_mount_namespace_and_is_counted_as_iscsiadm()
    {
        var runner = new RecordingToolRunner();
        await Create(runner, hostRoot: "/host").RescanSessionAsync(3, CancellationToken.None);
        var command = runner.Commands.Single();
        Assert.Equal("nsenter", command.FileName);
        Assert.Equal(["--mount=/host/proc/1/ns/mnt", "--", "iscsiadm", "-m", "session", "-r", "3", "--rescan"], command.Arguments);
        Assert.Equal("iscsiadm", command.ToolName);
    }

    [Fact]
    public void Iface_initiator_name_is_read_from_the_record()
    {
        Assert.Null(IfaceParser.InitiatorName(Captures.Host("iface-default").Stdout));   // "<empty>": iscsid's default name
        Assert.Equal("default", Captures.Host("iface-default").Stdout.Split('\n').First(l => l.StartsWith("iface.iscsi_ifacename")).Split('=')[1].Trim());
    }

    [Fact]
    public async Task Ensure_iface_creates_a_missing_iface_and_reports_a_failed_update()
    {
        // On the capture host the update failed: no iscsi_tcp transport to bind the iface to.
        var replay = new ReplayToolRunner(Captures.Host("iface-missing"), Captures.Host("iface-new"), Captures.Host("iface-update-initiatorname"));
        var e = await Assert.ThrowsAsync<StatusException>(() =>
            Create(replay).EnsureIfaceAsync("csi-capture", "iqn.2026-11.io.csi-scst.capture:node-b", CancellationToken.None));
        Assert.Contains("setting the initiator name of iface csi-capture", e.Message);
        Assert.Contains("locate transport", e.Message);
        Assert.Equal(0, replay.Remaining);
    }
}
