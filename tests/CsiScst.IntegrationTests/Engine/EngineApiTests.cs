using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using CsiScst.Core.Grpc;
using CsiScst.Core.Tls;
using CsiScst.Engine.V1;
using CsiScst.IntegrationTests.Tgt;
using Grpc.Core;
using Grpc.Net.Client;

namespace CsiScst.IntegrationTests.Engine;

/// <summary>
/// The real <c>csi-scst target</c> process (tgt engine, file pool) driven over TCP with mutual TLS, checked
/// from the outside: the iSCSI initiator's view, tgtd's view, the files, /metrics.
/// </summary>
public sealed class EngineApiTests : IAsyncLifetime
{
    private const string NodeA = "worker-a/iqn.2026-01.io.csi-scst.test:worker-a";
    private const string IqnA = "iqn.2026-01.io.csi-scst.test:worker-a";
    private const string NodeB = "worker-b/iqn.2026-01.io.csi-scst.test:worker-b";
    private const string IqnB = "iqn.2026-01.io.csi-scst.test:worker-b";

    private EngineHarness _harness = null!;

    public async Task InitializeAsync() => _harness = await EngineHarness.CreateAsync();

    public async Task DisposeAsync() => await _harness.DisposeAsync();

    private EnsureVolumeRequest Volume(string name, long bytes = 32L << 20) => new()
    {
        Key = _harness.Names.VolumeKey(name),
        Name = name,
        Pool = "files",
        RequiredBytes = bytes,
    };

    [Fact]
    public async Task File_volume_is_created_exported_published_grown_revoked_and_deleted_end_to_end()
    {
        await using var engine = await _harness.StartAsync();
        using var client = _harness.Client();
        var api = client.Api;

        var info = await api.GetEngineInfoAsync(new GetEngineInfoRequest());
        Assert.Equal("1", info.ApiVersion);
        Assert.Equal("tgt", info.EngineKind);
        Assert.Equal(_harness.NodeId, info.NodeId);
        Assert.Equal(_harness.InstanceId, info.InstanceId);
        Assert.Equal([_harness.Tgtd.Portal], info.Portals);
        Assert.True(info.Ready, info.NotReadyReason);
        var pool = Assert.Single(info.Pools);
        Assert.Equal(("files", "file"), (pool.Name, pool.Backend));
        Assert.True(pool.TotalBytes > 0 && pool.AvailableBytes > 0 && pool.GranularityBytes > 0);

        // 30 MiB + 1 byte is rounded up to the pool's granularity.
        var request = Volume("pvc-slice", (30L << 20) + 1);
        var created = (await api.EnsureVolumeAsync(request)).Volume;
        Assert.Equal(0, created.CapacityBytes % pool.GranularityBytes);
        Assert.True(created.CapacityBytes > 30L << 20);
        Assert.Equal(_harness.Names.TargetIqn(request.Key), created.TargetIqn);
        Assert.Equal(1, created.Lun);
        Assert.Equal("CS" + request.Key, created.Serial);
        Assert.False(created.Condition.Abnormal);
        var file = Assert.Single(_harness.PoolFiles());
        Assert.Equal($"csi-{_harness.InstanceId}-{request.Key}.img", file);

        // Same request again: same volume. Incompatible: ALREADY_EXISTS.
        Assert.Equal(created.CapacityBytes, (await api.EnsureVolumeAsync(request)).Volume.CapacityBytes);
        var bigger = request.Clone();
        bigger.RequiredBytes = 1L << 30;
        Assert.Equal(StatusCode.AlreadyExists, (await Assert.ThrowsAsync<RpcException>(() => api.EnsureVolumeAsync(bigger).ResponseAsync)).StatusCode);

        // Nobody is allowed before EnsureAccess.
        var initiatorA = new IscsiInitiator(IqnA);
        Assert.False((await initiatorA.LoginAsync(_harness.Tgtd.Portal, created.TargetIqn, 1)).Ok);
        var published = (await api.EnsureAccessAsync(new EnsureAccessRequest { Key = request.Key, Pool = "files", NodeId = NodeA, InitiatorIqn = IqnA, Exclusive = true })).Volume;
        Assert.Equal(NodeA, Assert.Single(published.Access).NodeId);
        Assert.Equal((created.CapacityBytes, 512), await initiatorA.CapacityAsync(_harness.Tgtd.Portal, created.TargetIqn, 1));
        Assert.Equal(created.Serial, (await initiatorA.SerialAsync(_harness.Tgtd.Portal, created.TargetIqn, 1)).Serial);
        var io = await initiatorA.QemuIoAsync(_harness.Tgtd.Portal, created.TargetIqn, 1, _harness.ScratchDirectory, "write -P 0x3c 0 1048576", "read -P 0x3c 0 1048576");
        Assert.True(io.ExitCode == 0 && !io.All.Contains("Pattern verification failed", StringComparison.Ordinal), io.All);
        Assert.False((await new IscsiInitiator(IqnB).LoginAsync(_harness.Tgtd.Portal, created.TargetIqn, 1)).Ok);

        // Single-node access: a second node is refused, naming the node that has it.
        var second = await Assert.ThrowsAsync<RpcException>(() => api.EnsureAccessAsync(new EnsureAccessRequest
        { Key = request.Key, Pool = "files", NodeId = NodeB, InitiatorIqn = IqnB, Exclusive = true }).ResponseAsync);
        Assert.Equal(StatusCode.FailedPrecondition, second.StatusCode);
        Assert.Contains("worker-a", second.Status.Detail);

        // Grow: the initiator sees the new size, data stays.
        var grown = await api.ExpandVolumeAsync(new ExpandVolumeRequest { Key = request.Key, Pool = "files", RequiredBytes = 96L << 20 });
        Assert.True(grown.CapacityBytes >= 96L << 20);
        Assert.Equal(grown.CapacityBytes, (await initiatorA.CapacityAsync(_harness.Tgtd.Portal, created.TargetIqn, 1))?.Bytes);
        io = await initiatorA.QemuIoAsync(_harness.Tgtd.Portal, created.TargetIqn, 1, _harness.ScratchDirectory, "read -P 0x3c 0 1048576");
        Assert.True(io.ExitCode == 0 && !io.All.Contains("Pattern verification failed", StringComparison.Ordinal), io.All);

        // Deleting a published volume is refused; revoke, then delete.
        Assert.Equal(StatusCode.FailedPrecondition,
            (await Assert.ThrowsAsync<RpcException>(() => api.DeleteVolumeAsync(new DeleteVolumeRequest { Key = request.Key, Pool = "files" }).ResponseAsync)).StatusCode);
        await api.RevokeAccessAsync(new RevokeAccessRequest { Key = request.Key, Pool = "files", NodeId = NodeA });
        Assert.False((await initiatorA.LoginAsync(_harness.Tgtd.Portal, created.TargetIqn, 1)).Ok);
        await api.DeleteVolumeAsync(new DeleteVolumeRequest { Key = request.Key, Pool = "files" });
        await api.DeleteVolumeAsync(new DeleteVolumeRequest { Key = request.Key, Pool = "files" });

        Assert.Empty(_harness.PoolFiles());
        Assert.Empty(await _harness.Tgtd.TargetsAsync());
        Assert.Empty(await _harness.Tgtd.AccountsAsync());
        Assert.DoesNotContain(_harness.StateFiles(), f => f.StartsWith("volumes/", StringComparison.Ordinal));
        Assert.Equal(StatusCode.NotFound,
            (await Assert.ThrowsAsync<RpcException>(() => api.GetVolumeAsync(new GetVolumeRequest { Key = request.Key }).ResponseAsync)).StatusCode);
    }

    [Fact]
    public async Task Engine_api_refuses_clients_without_a_valid_client_certificate()
    {
        await using var engine = await _harness.StartAsync();
        var endpoint = _harness.Endpoint;
        var ca = Path.Combine(_harness.TlsDirectory, "ca.crt");

        // The right client certificate works.
        using (var good = _harness.Client())
        {
            Assert.Equal("1", (await good.Api.GetEngineInfoAsync(new GetEngineInfoRequest())).ApiVersion);
        }

        // No client certificate at all (the server certificate is still checked against our CA).
        var tls = _harness.ClientTls();
        await AssertRefusedAsync(endpoint, new SslClientAuthenticationOptions
        {
            RemoteCertificateValidationCallback = (_, c, _, _) => tls.ValidateServer(c),
        });

        // A client certificate from another CA.
        var foreign = Path.Combine(_harness.Root, "foreign-tls");
        MutualTls.GenerateFiles(foreign, ["127.0.0.1"], TimeSpan.FromDays(1));
        var foreignClient = MutualTls.Load(Path.Combine(foreign, "ca.crt"), Path.Combine(foreign, "client.crt"), Path.Combine(foreign, "client.key"));
        await AssertRefusedAsync(endpoint, new SslClientAuthenticationOptions
        {
            ClientCertificates = [foreignClient.Certificate],
            LocalCertificateSelectionCallback = (_, _, _, _, _) => foreignClient.Certificate,
            RemoteCertificateValidationCallback = (_, c, _, _) => tls.ValidateServer(c),
        });

        // Our own CA, but a server-only certificate (no clientAuth usage) offered as a client certificate.
        var serverOnly = MutualTls.Load(ca, Path.Combine(_harness.TlsDirectory, "server.crt"), Path.Combine(_harness.TlsDirectory, "server.key"));
        await AssertRefusedAsync(endpoint, new SslClientAuthenticationOptions
        {
            ClientCertificates = [serverOnly.Certificate],
            LocalCertificateSelectionCallback = (_, _, _, _, _) => serverOnly.Certificate,
            RemoteCertificateValidationCallback = (_, c, _, _) => tls.ValidateServer(c),
        });
    }

    private static async Task AssertRefusedAsync(EndpointAddress endpoint, SslClientAuthenticationOptions options)
    {
        using var channel = Channels.For(endpoint, options, new GrpcChannelOptions());
        var api = new TargetEngine.TargetEngineClient(channel);
        var e = await Assert.ThrowsAsync<RpcException>(() => api.GetEngineInfoAsync(new GetEngineInfoRequest(), deadline: DateTime.UtcNow.AddSeconds(20)).ResponseAsync);
        // The handshake fails (TLS 1.2) or the server drops the connection right after it (TLS 1.3): either way no call is served.
        Assert.Contains(e.StatusCode, new[] { StatusCode.Unavailable, StatusCode.Internal });
        Assert.DoesNotContain("api_version", e.Status.Detail);
    }

    [Fact]
    public async Task Chap_secrets_reach_tgt_but_never_an_answer_a_log_or_an_error()
    {
        await using var engine = await _harness.StartAsync();
        using var client = _harness.Client();
        var request = Volume("pvc-chap");
        var chap = new ChapCredentials
        {
            User = _harness.Names.TgtIncomingAccount(request.Key),
            Secret = "SuperSecret-Initiator-1",
            MutualUser = _harness.Names.TgtOutgoingAccount(request.Key),
            MutualSecret = "SuperSecret-Target-22",
        };
        request.Options = new ExportOptions { Chap = chap, ThinProvisioned = true };
        var volume = (await client.Api.EnsureVolumeAsync(request)).Volume;
        Assert.True(volume.ChapEnabled && volume.MutualChapEnabled);
        volume = (await client.Api.EnsureAccessAsync(new EnsureAccessRequest { Key = request.Key, Pool = "files", NodeId = NodeA, InitiatorIqn = IqnA })).Volume;

        var initiator = new IscsiInitiator(IqnA, chap.User, chap.Secret, chap.MutualUser, chap.MutualSecret);
        Assert.True((await initiator.LoginAsync(_harness.Tgtd.Portal, volume.TargetIqn, 1)).Ok);
        Assert.False((await new IscsiInitiator(IqnA, chap.User, "wrong-secret-123").LoginAsync(_harness.Tgtd.Portal, volume.TargetIqn, 1)).Ok);

        // A retry with another secret is incompatible, and the error does not echo either secret.
        var rotated = request.Clone();
        rotated.Options.Chap.Secret = "Another-Secret-333";
        var e = await Assert.ThrowsAsync<RpcException>(() => client.Api.EnsureVolumeAsync(rotated).ResponseAsync);
        Assert.Equal(StatusCode.AlreadyExists, e.StatusCode);

        var everything = string.Join('\n', volume.ToString(), (await client.Api.ListVolumesAsync(new ListVolumesRequest())).ToString(),
            (await client.Api.GetVolumeAsync(new GetVolumeRequest { Key = request.Key })).ToString(), e.Status.Detail, engine.Output, await _harness.MetricsAsync());
        foreach (var secret in new[] { chap.Secret, chap.MutualSecret, "Another-Secret-333" })
        {
            Assert.DoesNotContain(secret, everything);
        }
        // The state file keeps them (reconcile needs them), readable by root only.
        var stateFile = Path.Combine(_harness.StateDirectory, "volumes", request.Key + ".json");
        Assert.Contains(chap.Secret, await File.ReadAllTextAsync(stateFile));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(stateFile));
    }

    [Fact]
    public async Task Stopping_the_engine_leaves_exports_serving_and_a_restart_reconciles_a_restarted_tgtd()
    {
        var engine = await _harness.StartAsync();
        using var client = _harness.Client();
        var volumes = new List<VolumeInfo>();
        foreach (var name in new[] { "pvc-keep-1", "pvc-keep-2" })
        {
            var request = Volume(name);
            await client.Api.EnsureVolumeAsync(request);
            var volume = (await client.Api.EnsureAccessAsync(new EnsureAccessRequest { Key = request.Key, Pool = "files", NodeId = NodeA, InitiatorIqn = IqnA })).Volume;
            var io = await new IscsiInitiator(IqnA).QemuIoAsync(_harness.Tgtd.Portal, volume.TargetIqn, 1, _harness.ScratchDirectory, "write -P 0x42 4096 8192");
            Assert.True(io.ExitCode == 0, io.All);
            volumes.Add(volume);
        }

        // SIGTERM: graceful stop, and the exports keep serving.
        Assert.Equal(0, await engine.TerminateAsync());
        foreach (var volume in volumes)
        {
            Assert.True((await new IscsiInitiator(IqnA).LoginAsync(_harness.Tgtd.Portal, volume.TargetIqn, 1)).Ok);
        }

        // tgtd crashes while the engine is down; the engine's start-up reconcile brings everything back.
        await _harness.Tgtd.KillAsync();
        await _harness.Tgtd.StartAsync();
        Assert.Empty(await _harness.Tgtd.TargetsAsync());
        await using var restarted = await _harness.StartAsync();
        await Run.EventuallyAsync(async () => (await _harness.Tgtd.TargetsAsync()).Count == 2, "the start-up reconcile restoring both targets");
        foreach (var volume in volumes)
        {
            var initiator = new IscsiInitiator(IqnA);
            Assert.Equal(volume.Serial, (await initiator.SerialAsync(_harness.Tgtd.Portal, volume.TargetIqn, 1)).Serial);
            var io = await initiator.QemuIoAsync(_harness.Tgtd.Portal, volume.TargetIqn, 1, _harness.ScratchDirectory, "read -P 0x42 4096 8192");
            Assert.True(io.ExitCode == 0 && !io.All.Contains("Pattern verification failed", StringComparison.Ordinal), io.All);
            Assert.False((await new IscsiInitiator(IqnB).LoginAsync(_harness.Tgtd.Portal, volume.TargetIqn, 1)).Ok);
        }

        // Targets deleted behind the engine's back come back on the Reconcile RPC; an orphan of ours goes.
        var tid = (await _harness.Tgtd.TargetsAsync())[0].Tid;
        await _harness.Tgtd.AdmAsync(["--mode", "target", "--op", "delete", "--force", "--tid", tid.ToString()]);
        var orphanIqn = _harness.Names.TargetIqn(_harness.Names.VolumeKey("nobody-wants-me"));
        await _harness.Tgtd.AdmAsync(["--mode", "target", "--op", "new", "--tid", "500", "--targetname", orphanIqn]);
        var report = await client.Api.ReconcileAsync(new ReconcileRequest());
        Assert.Empty(report.Errors);
        Assert.Equal(2, report.ExportsChecked);
        Assert.Equal(1, report.ExportsRepaired);
        Assert.Equal(1, report.OrphansRemoved);
        Assert.Equal(volumes.Select(v => v.TargetIqn).Order(), (await _harness.Tgtd.TargetsAsync()).Select(t => t.Name).Order());
    }

    [Fact]
    public async Task Metrics_and_readiness_reflect_real_calls()
    {
        await using var engine = await _harness.StartAsync();
        using var client = _harness.Client();
        var request = Volume("pvc-metrics");
        await client.Api.EnsureVolumeAsync(request);
        await client.Api.EnsureAccessAsync(new EnsureAccessRequest { Key = request.Key, Pool = "files", NodeId = NodeA, InitiatorIqn = IqnA });
        await client.Api.ReconcileAsync(new ReconcileRequest());
        await Assert.ThrowsAsync<RpcException>(() => client.Api.GetVolumeAsync(new GetVolumeRequest { Key = "0000000000000000" }).ResponseAsync);
        await using var session = new IscsiInitiator(IqnA).Session(_harness.Tgtd.Portal, _harness.Names.TargetIqn(request.Key), 1, _harness.ScratchDirectory);
        await Run.EventuallyAsync(async () => (await _harness.Tgtd.ShowAsync()).Contains("Initiator: " + IqnA, StringComparison.Ordinal), "a session");

        var metrics = await _harness.MetricsAsync();
        Assert.Contains("csi_scst_engine_operation_duration_seconds_count{operation=\"ensure_volume\",outcome=\"ok\"} 1", metrics);
        Assert.Contains("csi_scst_engine_operation_duration_seconds_count{operation=\"ensure_access\",outcome=\"ok\"} 1", metrics);
        Assert.Contains("csi_scst_engine_reconcile_runs_total{trigger=\"rpc\"} 1", metrics);
        Assert.Contains("csi_scst_engine_reconcile_runs_total{trigger=\"startup\"} 1", metrics);
        Assert.Contains("csi_scst_engine_exports 1", metrics);
        Assert.Contains("csi_scst_engine_volumes{phase=\"Ready\"} 1", metrics);
        Assert.Contains("csi_scst_engine_sessions 1", metrics);
        Assert.Contains($"csi_scst_engine_export_sessions{{volume=\"{request.Key}\"}} 1", metrics);
        Assert.Contains("csi_scst_rpc_requests_total{service=\"csiscst.engine.v1.TargetEngine\",method=\"GetVolume\",code=\"NotFound\"} 1", metrics);
        Assert.Contains("csi_scst_tool_runs_total{tool=\"tgtadm\",outcome=\"success\"}", metrics);

        var (status, body) = await _harness.ReadyzAsync();
        Assert.True(status == 200, body);
        await _harness.Tgtd.StopAsync();
        (status, body) = await _harness.ReadyzAsync();
        Assert.Equal(503, status);
        Assert.Contains("tgt", body);
        Assert.False((await client.Api.GetEngineInfoAsync(new GetEngineInfoRequest())).Ready);
    }

    [Fact]
    public async Task Volumes_page_with_opaque_tokens_and_a_bad_token_is_aborted()
    {
        await using var engine = await _harness.StartAsync();
        using var client = _harness.Client();
        var keys = new List<string>();
        for (var i = 0; i < 5; i++)
        {
            var request = Volume($"pvc-page-{i}", 4L << 20);
            await client.Api.EnsureVolumeAsync(request);
            keys.Add(request.Key);
        }
        var seen = new List<string>();
        var token = "";
        do
        {
            var page = await client.Api.ListVolumesAsync(new ListVolumesRequest { MaxEntries = 2, StartingToken = token });
            Assert.True(page.Volumes.Count <= 2);
            seen.AddRange(page.Volumes.Select(v => v.Key));
            token = page.NextToken;
        }
        while (token.Length > 0);
        Assert.Equal(keys.Order(StringComparer.Ordinal), seen);
        var e = await Assert.ThrowsAsync<RpcException>(() => client.Api.ListVolumesAsync(new ListVolumesRequest { StartingToken = "not-a-token" }).ResponseAsync);
        Assert.Equal(StatusCode.Aborted, e.StatusCode);
    }

    [Fact]
    public async Task Volumes_restored_from_a_snapshot_or_cloned_hold_the_source_data_as_an_initiator_reads_it()
    {
        await using var engine = await _harness.StartAsync();
        using var client = _harness.Client();
        var api = client.Api;
        var portal = _harness.Tgtd.Portal;
        var initiator = new IscsiInitiator(IqnA);

        var source = Volume("pvc-source", 16L << 20);
        var sourceVolume = (await api.EnsureVolumeAsync(source)).Volume;
        await api.EnsureAccessAsync(new EnsureAccessRequest { Key = source.Key, Pool = "files", NodeId = NodeA, InitiatorIqn = IqnA });
        var io = await initiator.QemuIoAsync(portal, sourceVolume.TargetIqn, 1, _harness.ScratchDirectory, "write -P 0xa1 0 1048576");
        Assert.True(io.ExitCode == 0, io.All);

        var snapshotKey = _harness.Names.SnapshotKey("snap-1");
        var snapshot = (await api.EnsureSnapshotAsync(new EnsureSnapshotRequest { VolumeKey = source.Key, Pool = "files", SnapshotKey = snapshotKey, Name = "snap-1" })).Snapshot;
        Assert.True(snapshot.ReadyToUse);
        Assert.Equal(sourceVolume.CapacityBytes, snapshot.SizeBytes);
        // Later writes to the source do not reach the snapshot.
        io = await initiator.QemuIoAsync(portal, sourceVolume.TargetIqn, 1, _harness.ScratchDirectory, "write -P 0xb2 0 1048576");
        Assert.True(io.ExitCode == 0, io.All);

        var restoredRequest = Volume("pvc-restored", 8L << 20);
        restoredRequest.Source = new ContentSource { Snapshot = new ContentSource.Types.FromSnapshot { VolumeKey = source.Key, SnapshotKey = snapshotKey } };
        var restored = (await api.EnsureVolumeAsync(restoredRequest)).Volume;
        Assert.Equal(sourceVolume.CapacityBytes, restored.CapacityBytes); // grown to the snapshot's size
        var cloneRequest = Volume("pvc-clone", 16L << 20);
        cloneRequest.Source = new ContentSource { Volume = new ContentSource.Types.FromVolume { VolumeKey = source.Key } };
        var clone = (await api.EnsureVolumeAsync(cloneRequest)).Volume;

        foreach (var (volume, pattern) in new[] { (restored, "0xa1"), (clone, "0xb2") })
        {
            await api.EnsureAccessAsync(new EnsureAccessRequest { Key = volume.Key, Pool = "files", NodeId = NodeA, InitiatorIqn = IqnA });
            io = await initiator.QemuIoAsync(portal, volume.TargetIqn, 1, _harness.ScratchDirectory, $"read -P {pattern} 0 1048576");
            Assert.True(io.ExitCode == 0 && !io.All.Contains("Pattern verification failed", StringComparison.Ordinal), $"{volume.Name}: {io.All}");
        }

        var listed = (await api.ListSnapshotsAsync(new ListSnapshotsRequest { VolumeKey = source.Key })).Snapshots;
        Assert.Equal(snapshotKey, Assert.Single(listed).SnapshotKey);
        await api.DeleteSnapshotAsync(new DeleteSnapshotRequest { VolumeKey = source.Key, Pool = "files", SnapshotKey = snapshotKey });
        Assert.Empty((await api.ListSnapshotsAsync(new ListSnapshotsRequest())).Snapshots);
        Assert.DoesNotContain(_harness.PoolFiles(), f => f.Contains(snapshotKey, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Engine_started_with_tgt_start_daemon_brings_up_tgtd_that_outlives_it()
    {
        await using var harness = await EngineHarness.CreateAsync(startTgtd: false);
        var engine = await harness.StartAsync(startDaemon: true);
        using var client = harness.Client();
        var request = new EnsureVolumeRequest { Key = harness.Names.VolumeKey("pvc-daemon"), Name = "pvc-daemon", Pool = "files", RequiredBytes = 8L << 20 };
        var volume = (await client.Api.EnsureVolumeAsync(request)).Volume;
        await client.Api.EnsureAccessAsync(new EnsureAccessRequest { Key = request.Key, Pool = "files", NodeId = NodeA, InitiatorIqn = IqnA });
        Assert.True((await new IscsiInitiator(IqnA).LoginAsync(harness.Tgtd.Portal, volume.TargetIqn, 1)).Ok);
        await engine.DisposeAsync(); // SIGKILL
        Assert.True((await new IscsiInitiator(IqnA).LoginAsync(harness.Tgtd.Portal, volume.TargetIqn, 1)).Ok);
    }
}
