using CsiScst.Core.Errors;
using CsiScst.Core.Ids;
using CsiScst.Targets;
using Grpc.Core;
using Xunit.Abstractions;

namespace CsiScst.IntegrationTests.Scst;

/// <summary>
/// Per-initiator LUN masking, read-only access, CHAP, portals and fencing, checked with the model's simulated
/// iSCSI logins (accepted or refused as iscsi-scstd would).
/// </summary>
public sealed class ScstAccessTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const int EACCES = 13;
    private ScstTestTarget _scst = null!;

    public async Task InitializeAsync() => _scst = await ScstTestTarget.StartAsync(output);

    public async Task DisposeAsync() => await _scst.DisposeAsync();

    [ModelFact]
    public async Task Only_published_initiators_log_in_and_a_read_only_one_gets_a_read_only_lun()
    {
        var engine = _scst.CreateEngine();
        var spec = _scst.Spec("pvc-mask", new InitiatorAccess(ScstTestTarget.Initiator1, false), new InitiatorAccess(ScstTestTarget.Initiator2, true));
        await engine.EnsureExportAsync(spec, CancellationToken.None);

        Assert.Equal(0, _scst.Login(spec.TargetIqn, ScstTestTarget.Initiator1, "192.0.2.11"));
        Assert.Equal(0, _scst.Login(spec.TargetIqn, ScstTestTarget.Initiator2, "192.0.2.12"));
        Assert.Equal(EACCES, _scst.Login(spec.TargetIqn, "iqn.1993-08.org.debian:01:stranger", "192.0.2.13"));

        var sessions = $"targets/iscsi/{spec.TargetIqn}/sessions";
        var readWrite = ObjectNames.InitiatorGroup(ScstTestTarget.Initiator1);
        var readOnly = ObjectNames.InitiatorGroup(ScstTestTarget.Initiator2);
        Assert.Equal(readWrite, GroupOfLunsLink($"{sessions}/{ScstTestTarget.Initiator1}/luns"));
        Assert.Equal(readOnly, GroupOfLunsLink($"{sessions}/{ScstTestTarget.Initiator2}/luns"));
        Assert.Equal("0", _scst.Attr($"{sessions}/{ScstTestTarget.Initiator1}/luns/0/read_only"));
        Assert.Equal("1", _scst.Attr($"{sessions}/{ScstTestTarget.Initiator2}/luns/0/read_only"));

        var listed = await engine.ListSessionsAsync(CancellationToken.None);
        Assert.Equal(2, listed.Count);
        Assert.Contains(new SessionInfo(spec.Key, spec.TargetIqn, ScstTestTarget.Initiator1, "192.0.2.11"), listed);
        Assert.Contains(new SessionInfo(spec.Key, spec.TargetIqn, ScstTestTarget.Initiator2, "192.0.2.12"), listed);

        var stats = Assert.Single(await engine.GetStatsAsync(CancellationToken.None));
        Assert.Equal(spec.Key, stats.Key);
        Assert.Equal(2, stats.Sessions);
    }

    [ModelFact]
    public async Task Switching_an_initiator_to_read_only_replaces_its_lun()
    {
        var engine = _scst.CreateEngine();
        var spec = _scst.Spec("pvc-ro", new InitiatorAccess(ScstTestTarget.Initiator1, false));
        await engine.EnsureExportAsync(spec, CancellationToken.None);
        await engine.EnsureExportAsync(spec with { Initiators = [new InitiatorAccess(ScstTestTarget.Initiator1, true)] }, CancellationToken.None);

        var group = ObjectNames.InitiatorGroup(ScstTestTarget.Initiator1);
        Assert.Equal("1", _scst.Attr($"targets/iscsi/{spec.TargetIqn}/ini_groups/{group}/luns/0/read_only"));
        Assert.Equal(spec.DeviceName, _scst.LinkName($"targets/iscsi/{spec.TargetIqn}/ini_groups/{group}/luns/0/device"));
        Assert.Equal([new InitiatorAccess(ScstTestTarget.Initiator1, true)], Assert.Single(await engine.ListExportsAsync(CancellationToken.None)).Initiators);
    }

    [ModelFact]
    public async Task Revoking_an_initiator_closes_all_its_sessions_at_once_and_refuses_it_afterwards()
    {
        var engine = _scst.CreateEngine();
        var both = _scst.Spec("pvc-fence", new InitiatorAccess(ScstTestTarget.Initiator1, false), new InitiatorAccess(ScstTestTarget.Initiator2, false));
        await engine.EnsureExportAsync(both, CancellationToken.None);
        Assert.Equal(0, _scst.Login(both.TargetIqn, ScstTestTarget.Initiator1, "192.0.2.11"));
        Assert.Equal(0, _scst.Login(both.TargetIqn, ScstTestTarget.Initiator1, "192.0.2.21"));
        Assert.Equal(0, _scst.Login(both.TargetIqn, ScstTestTarget.Initiator2, "192.0.2.12"));
        var sessions = $"targets/iscsi/{both.TargetIqn}/sessions";
        Assert.Equal([ScstTestTarget.Initiator1, ScstTestTarget.Initiator1 + "_1", ScstTestTarget.Initiator2], _scst.Dirs(sessions));

        await engine.EnsureExportAsync(both with { Initiators = [new InitiatorAccess(ScstTestTarget.Initiator2, false)] }, CancellationToken.None);

        Assert.Equal([ScstTestTarget.Initiator2], _scst.Dirs(sessions));
        Assert.Equal([ObjectNames.InitiatorGroup(ScstTestTarget.Initiator2)], _scst.Dirs($"targets/iscsi/{both.TargetIqn}/ini_groups"));
        Assert.Equal(EACCES, _scst.Login(both.TargetIqn, ScstTestTarget.Initiator1, "192.0.2.11"));
        Assert.Contains("force_close", _scst.ReadControl("dmesg"));
    }

    [ModelFact]
    public async Task A_session_of_an_initiator_without_access_is_closed_on_ensure()
    {
        var engine = _scst.CreateEngine();
        var spec = _scst.Spec("pvc-stray", new InitiatorAccess(ScstTestTarget.Initiator1, false));
        await engine.EnsureExportAsync(spec, CancellationToken.None);
        // An operator let a whole domain in by hand; its session must go when the engine converges.
        var group = ObjectNames.InitiatorGroup(ScstTestTarget.Initiator1);
        Assert.Equal(0, _scst.Write($"targets/iscsi/{spec.TargetIqn}/ini_groups/{group}/initiators/mgmt", "add iqn.1993-08.org.debian:01:*"));
        Assert.Equal(0, _scst.Login(spec.TargetIqn, "iqn.1993-08.org.debian:01:other", "192.0.2.30"));

        await engine.EnsureExportAsync(spec, CancellationToken.None);

        Assert.Empty(_scst.Dirs($"targets/iscsi/{spec.TargetIqn}/sessions"));
        Assert.Equal([ScstTestTarget.Initiator1], _scst.Files($"targets/iscsi/{spec.TargetIqn}/ini_groups/{group}/initiators"));
    }

    [ModelFact]
    public async Task Chap_is_required_once_set_and_secrets_rotate_without_an_open_window()
    {
        var engine = _scst.CreateEngine();
        var spec = _scst.Spec("pvc-chap", new InitiatorAccess(ScstTestTarget.Initiator1, false)) with
        {
            Chap = new ChapSpec("node-user", "secret-0123456789", "target-user", "mutual-9876543210"),
        };
        await engine.EnsureExportAsync(spec, CancellationToken.None);

        var tgt = $"targets/iscsi/{spec.TargetIqn}";
        Assert.Equal("node-user secret-0123456789", _scst.Attr($"{tgt}/IncomingUser"));
        Assert.Equal("target-user mutual-9876543210", _scst.Attr($"{tgt}/OutgoingUser"));
        Assert.True(Assert.Single(await engine.ListExportsAsync(CancellationToken.None)).ChapEnabled);
        Assert.Equal(EACCES, _scst.Login(spec.TargetIqn, ScstTestTarget.Initiator1));
        Assert.Equal(EACCES, _scst.Login(spec.TargetIqn, ScstTestTarget.Initiator1, user: "node-user", secret: "wrong-secret-000"));
        Assert.Equal(0, _scst.Login(spec.TargetIqn, ScstTestTarget.Initiator1, user: "node-user", secret: "secret-0123456789"));

        var rotated = spec with { Chap = new ChapSpec("node-user", "secret-rotated-42") };
        await engine.EnsureExportAsync(rotated, CancellationToken.None);
        Assert.Equal(["IncomingUser"], _scst.Files(tgt).Where(f => f.StartsWith("IncomingUser", StringComparison.Ordinal)));
        Assert.Equal("node-user secret-rotated-42", _scst.Attr($"{tgt}/IncomingUser"));
        Assert.True(string.IsNullOrEmpty(_scst.Exists($"{tgt}/OutgoingUser") ? _scst.Attr($"{tgt}/OutgoingUser").Trim() : ""));

        Assert.Equal(0, _scst.Control("ops", "clear"));
        var renamed = spec with { Chap = new ChapSpec("other-user", "secret-other-0042") };
        await engine.EnsureExportAsync(renamed, CancellationToken.None);
        var users = _scst.Files(tgt).Where(f => f.StartsWith("IncomingUser", StringComparison.Ordinal)).Select(f => _scst.Attr($"{tgt}/{f}")).Where(v => v.Length > 0).ToList();
        Assert.Equal(["other-user secret-other-0042"], users);
        // The new user went in before the old one went out: CHAP stayed required throughout.
        var ops = _scst.ReadControl("ops").Split('\n').Where(l => l.StartsWith("targets/iscsi/mgmt", StringComparison.Ordinal)).ToList();
        var added = ops.FindIndex(l => l.Contains($"add_target_attribute {spec.TargetIqn} IncomingUser other-user", StringComparison.Ordinal));
        var removed = ops.FindIndex(l => l.Contains($"del_target_attribute {spec.TargetIqn} IncomingUser node-user", StringComparison.Ordinal));
        Assert.True(added >= 0 && removed > added, string.Join("\n", ops));

        await engine.EnsureExportAsync(spec with { Chap = null }, CancellationToken.None);
        Assert.False(Assert.Single(await engine.ListExportsAsync(CancellationToken.None)).ChapEnabled);
        Assert.Equal(0, _scst.Login(spec.TargetIqn, ScstTestTarget.Initiator1, "192.0.2.50"));
    }

    [Theory]
    [InlineData("short-123", "12-255 characters")]
    [InlineData("has space in it!", "character SCST cannot carry")]
    [InlineData("has=equals-sign1", "character SCST cannot carry")]
    [InlineData("has;semicolon-12", "character SCST cannot carry")]
    [InlineData("has#hash-sign-12", "character SCST cannot carry")]
    [InlineData("has\"quote-sign12", "character SCST cannot carry")]
    public async Task Unusable_chap_secrets_are_refused_without_echoing_them(string secret, string expected)
    {
        var engine = _scst.CreateEngine();
        var spec = _scst.Spec("pvc-badchap") with { Chap = new ChapSpec("user", secret) };
        var error = await Assert.ThrowsAsync<StatusException>(() => engine.EnsureExportAsync(spec, CancellationToken.None));
        Assert.Equal(StatusCode.InvalidArgument, error.Code);
        Assert.Contains(expected, error.Message);
        Assert.DoesNotContain(secret, error.Message);
        Assert.False(_scst.Exists($"targets/iscsi/{spec.TargetIqn}"));
    }

    [ModelFact]
    public async Task Allowed_portals_restrict_where_the_target_answers()
    {
        var engine = _scst.CreateEngine();
        var spec = _scst.Spec("pvc-portal", new InitiatorAccess(ScstTestTarget.Initiator1, false)) with { Portals = ["198.51.100.7:3260"] };
        await engine.EnsureExportAsync(spec, CancellationToken.None);

        Assert.Equal("198.51.100.7", _scst.Attr($"targets/iscsi/{spec.TargetIqn}/allowed_portal"));
        Assert.Equal(EACCES, _scst.Login(spec.TargetIqn, ScstTestTarget.Initiator1, portal: "198.51.100.8"));
        Assert.Equal(0, _scst.Login(spec.TargetIqn, ScstTestTarget.Initiator1, portal: "198.51.100.7"));

        await engine.EnsureExportAsync(spec with { Portals = ["198.51.100.9:3260"] }, CancellationToken.None);
        var portals = _scst.Files($"targets/iscsi/{spec.TargetIqn}").Where(f => f.StartsWith("allowed_portal", StringComparison.Ordinal))
            .Select(f => _scst.Attr($"targets/iscsi/{spec.TargetIqn}/{f}")).Where(v => v.Length > 0).ToList();
        Assert.Equal(["198.51.100.9"], portals);

        // A wildcard portal lifts the restriction.
        await engine.EnsureExportAsync(spec with { Portals = ["0.0.0.0:3260"] }, CancellationToken.None);
        Assert.Equal(0, _scst.Login(spec.TargetIqn, ScstTestTarget.Initiator1, "192.0.2.77", portal: "203.0.113.1"));
    }

    private string? GroupOfLunsLink(string relative)
    {
        // sessions/X/luns → ../../ini_groups/GRP/luns (or ../../luns for the default set)
        var target = new FileInfo(_scst.PathOf(relative)).LinkTarget!;
        var parts = target.Split('/');
        var index = Array.IndexOf(parts, "ini_groups");
        return index >= 0 ? parts[index + 1] : null;
    }
}
