using CsiScst.Core.Grpc;
using CsiScst.Core.Tls;
using CsiScst.Engine.Api;
using CsiScst.Engine.V1;
using CsiScst.IntegrationTests.Tgt;

namespace CsiScst.IntegrationTests.Engine;

/// <summary>The real binary's command line: start-up refusals, and the target half of standalone.</summary>
public sealed class TargetCommandTests
{
    [Fact]
    public async Task Start_up_refuses_bad_configurations_with_a_message_naming_the_problem()
    {
        await using var harness = await EngineHarness.CreateAsync(startTgtd: false);
        var args = harness.Arguments().ToList();

        async Task<RunResult> RunWith(Func<List<string>, List<string>> change) =>
            await Run.ToolAsync(EngineProcess.BinaryPath, change([.. args]), timeout: TimeSpan.FromMinutes(1));

        var unknownEngine = await RunWith(a => Replace(a, "--engine", "iet"));
        Assert.Equal(2, unknownEngine.ExitCode);
        Assert.Contains("iet", unknownEngine.Stderr);

        var noPool = await RunWith(a => Remove(a, "--pool"));
        Assert.Equal(2, noPool.ExitCode);
        Assert.Contains("--pool", noPool.Stderr);

        var noPortal = await RunWith(a => Remove(a, "--portal"));
        Assert.Equal(2, noPortal.ExitCode);
        Assert.Contains("--portal", noPortal.Stderr);

        var badPortal = await RunWith(a => Replace(a, "--portal", "somewhere"));
        Assert.Equal(2, badPortal.ExitCode);
        Assert.Contains("'somewhere'", badPortal.Stderr);

        var noTls = await RunWith(a => Remove(a, "--tls-ca"));
        Assert.Equal(2, noTls.ExitCode);
        Assert.Contains("--tls-ca", noTls.Stderr);

        var unixListen = await RunWith(a => Replace(a, "--listen", "unix:///tmp/engine.sock"));
        Assert.Equal(2, unixListen.ExitCode);
        Assert.Contains("mutual TLS", unixListen.Stderr);

        var badPool = await RunWith(a => Replace(a, "--pool", "name=files,backend=zfs"));
        Assert.Equal(2, badPool.ExitCode);
        Assert.Contains("backend", badPool.Stderr);

        var missingCert = await RunWith(a => Replace(a, "--tls-cert", "/nonexistent/server.crt"));
        Assert.Equal(2, missingCert.ExitCode);
        Assert.Contains("/nonexistent/server.crt", missingCert.Stderr);

        // Nothing was created by any of these.
        Assert.False(Directory.Exists(harness.StateDirectory));
    }

    [Fact]
    public async Task Pools_and_portals_can_come_from_a_json_config_file()
    {
        await using var harness = await EngineHarness.CreateAsync();
        var config = Path.Combine(harness.Root, "engine.json");
        await File.WriteAllTextAsync(config, $$"""
            { "pools": [ { "name": "fromconfig", "backend": "file", "path": "{{harness.PoolDirectory}}" } ],
              "portals": [ "{{harness.Tgtd.Portal}}" ] }
            """);
        var args = Remove(Remove(harness.Arguments().ToList(), "--pool"), "--portal");
        args.AddRange(["--config", config]);
        await using var process = new EngineProcess(args, null);
        using var client = harness.Client();
        await Run.EventuallyAsync(async () =>
        {
            Assert.False(process.Exited, process.Output);
            try
            {
                var info = await client.Api.GetEngineInfoAsync(new GetEngineInfoRequest());
                Assert.Equal("fromconfig", Assert.Single(info.Pools).Name);
                Assert.Equal([harness.Tgtd.Portal], info.Portals);
                return true;
            }
            catch (Grpc.Core.RpcException)
            {
                return false;
            }
        }, "the engine answering");
    }

    [Fact]
    public async Task Standalone_generates_its_certificates_starts_tgtd_and_serves_the_engine_api_over_mutual_tls_on_loopback()
    {
        var tgtd = await TgtdInstance.CreateAsync(start: false);
        await using (tgtd)
        {
            var dataDir = Path.Combine(Path.GetTempPath(), "csi-scst-standalone-" + Run.RandomSuffix());
            var port = Ports.Free();
            try
            {
                var socket = Path.Combine(dataDir, "csi.sock");
                await using var process = new EngineProcess(
                [
                    "standalone",
                    "--endpoint", "unix://" + socket,
                    "--data-dir", dataDir,
                    "--engine-api-port", port.ToString(),
                    "--portal", tgtd.Portal,
                    "--tgt-control-port", tgtd.ControlPort.ToString(),
                    "--node-id", "standalone-node",
                    "--instance-id", "s" + Run.RandomSuffix(5),
                    "--initiator-name", "iqn.2026-01.io.csi-scst.test:standalone",
                ], null);
                var tls = Path.Combine(dataDir, "tls");
                await Run.EventuallyAsync(() => Task.FromResult(File.Exists(Path.Combine(tls, "client.key")) || process.Exited), "certificates generated");
                Assert.False(process.Exited, process.Output);
                var clientTls = MutualTls.Load(Path.Combine(tls, "ca.crt"), Path.Combine(tls, "client.crt"), Path.Combine(tls, "client.key"));
                using var client = new EngineClient(EndpointAddress.Tcp("127.0.0.1", port), clientTls);
                EngineInfo? info = null;
                await Run.EventuallyAsync(async () =>
                {
                    Assert.False(process.Exited, process.Output);
                    try
                    {
                        info = await client.Api.GetEngineInfoAsync(new GetEngineInfoRequest());
                        return info.Ready;
                    }
                    catch (Grpc.Core.RpcException)
                    {
                        return false;
                    }
                }, "the standalone engine API answering and ready", TimeSpan.FromSeconds(60));
                Assert.Equal("tgt", info!.EngineKind);
                Assert.Equal("standalone-node", info.NodeId);
                Assert.Equal(("files", "file"), (info.Pools[0].Name, info.Pools[0].Backend));
                Assert.True(await tgtd.AnswersAsync(), "standalone starts tgtd when none runs");
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(tls, "client.key")));
                Assert.True(Directory.Exists(Path.Combine(dataDir, "state", "volumes")));
                Assert.True(File.Exists(socket), "the CSI socket is served too");
                await process.TerminateAsync();
            }
            finally
            {
                Directory.Delete(dataDir, recursive: true);
            }
        }
    }

    private static List<string> Replace(List<string> args, string option, string value)
    {
        args[args.IndexOf(option) + 1] = value;
        return args;
    }

    private static List<string> Remove(List<string> args, string option)
    {
        var index = args.IndexOf(option);
        args.RemoveRange(index, 2);
        return args;
    }
}
