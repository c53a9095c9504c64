using System.Diagnostics;
using System.Text.RegularExpressions;
using Csi.V1;
using CsiScst.Core.Tls;
using CsiScst.IntegrationTests.Backends;
using CsiScst.IntegrationTests.Infrastructure;
using Grpc.Net.Client;

namespace CsiScst.IntegrationTests.CsiController;

/// <summary>
/// One storage node on this machine: a private tgtd (own control port and portal), a loop-mounted ext4
/// filesystem as its file pool, and the real `csi-scst target` process serving the engine API over mTLS.
/// </summary>
public sealed partial class StorageNode : IAsyncDisposable
{
    private readonly string _tlsDirectory;
    private LoopFilesystem? _filesystem;
    private Process? _tgtd;

    private StorageNode(string nodeId, string directory, string tlsDirectory)
    {
        NodeId = nodeId;
        Directory = directory;
        _tlsDirectory = tlsDirectory;
        StateDirectory = Path.Combine(directory, "state");
        ApiPort = Ports.Free();
        PortalPort = Ports.Free();
        ControlPort = Random.Shared.Next(10000, 32700);
        // tgtd takes -C 0..32767; a lock file in use means another tgtd owns that port.
        while (File.Exists($"/var/run/tgtd/socket.{ControlPort}"))
        {
            ControlPort = Random.Shared.Next(10000, 32700);
        }
    }

    public string NodeId { get; }
    public string Directory { get; }
    public string StateDirectory { get; }
    public string PoolDirectory => _filesystem!.MountPoint;
    public int ApiPort { get; }
    public int PortalPort { get; }
    public int ControlPort { get; }
    public DriverProcess? Target { get; private set; }
    public string EngineFlag => $"{NodeId}=tcp://127.0.0.1:{ApiPort}";

    public static async Task<StorageNode> StartAsync(string nodeId, string directory, string tlsDirectory, long poolBytes)
    {
        System.IO.Directory.CreateDirectory(directory);
        var node = new StorageNode(nodeId, directory, tlsDirectory);
        try
        {
            node._filesystem = await LoopFilesystem.CreateAsync(poolBytes, "mkfs.ext4", ["-q", "-F", "-m", "0"], Tools.Timeout());
            node.StartTgtd();
            await node.StartTargetAsync();
            return node;
        }
        catch
        {
            await node.DisposeAsync();
            throw;
        }
    }

    private void StartTgtd()
    {
        var start = new ProcessStartInfo("tgtd") { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var argument in new[] { "-f", "-C", ControlPort.ToString(), "--iscsi", $"portal=127.0.0.1:{PortalPort}" })
        {
            start.ArgumentList.Add(argument);
        }
        _tgtd = Process.Start(start)!;
        _tgtd.BeginErrorReadLine();
        _tgtd.BeginOutputReadLine();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (Tgtadm("--mode", "system", "--op", "show").Code != 0)
        {
            if (_tgtd.HasExited || DateTime.UtcNow > deadline)
            {
                throw new InvalidOperationException($"tgtd on control port {ControlPort} did not come up");
            }
            Thread.Sleep(50);
        }
    }

    public async Task StartTargetAsync()
    {
        Target = DriverProcess.Start(
        [
            "target",
            "--node-id", NodeId,
            "--listen", $"tcp://127.0.0.1:{ApiPort}",
            "--tls-ca", Path.Combine(_tlsDirectory, "ca.crt"),
            "--tls-cert", Path.Combine(_tlsDirectory, "server.crt"),
            "--tls-key", Path.Combine(_tlsDirectory, "server.key"),
            "--engine", "tgt",
            "--tgt-control-port", ControlPort.ToString(),
            "--portal", $"127.0.0.1:{PortalPort}",
            "--state-dir", StateDirectory,
            "--pool", $"name=files,backend=file,path={_filesystem!.MountPoint}",
            "--reconcile-interval", "01:00:00",
        ]);
        await Target.WaitForPortAsync("127.0.0.1", ApiPort);
    }

    /// <summary>SIGKILL: the storage node vanishes without a word (its exports stay in tgtd).</summary>
    public async Task KillTargetAsync()
    {
        if (Target is not null)
        {
            Target.Kill();
            await Target.WaitForExitAsync();
            await Target.DisposeAsync();
            Target = null;
        }
    }

    public (int Code, string Output) Tgtadm(params string[] arguments)
    {
        var start = new ProcessStartInfo("tgtadm") { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var argument in new[] { "-C", ControlPort.ToString(), "--lld", "iscsi" }.Concat(arguments))
        {
            start.ArgumentList.Add(argument);
        }
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEnd() + process.StandardError.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, output);
    }

    /// <summary>Target IQNs tgtd serves now.</summary>
    public IReadOnlyList<string> TgtTargets() =>
        TargetLine().Matches(Tgtadm("--mode", "target", "--op", "show").Output).Select(m => m.Groups[2].Value).ToArray();

    /// <summary>Volume image files left in the pool (anything but the snapshots directory's own entry).</summary>
    public IReadOnlyList<string> PoolFiles() =>
        System.IO.Directory.EnumerateFiles(PoolDirectory, "*", SearchOption.AllDirectories)
            .Where(f => !f.Contains("lost+found", StringComparison.Ordinal)).ToArray();

    public IReadOnlyList<string> StateFiles() =>
        System.IO.Directory.Exists(StateDirectory)
            ? System.IO.Directory.EnumerateFiles(StateDirectory, "*.json", SearchOption.AllDirectories).ToArray()
            : [];

    public async ValueTask DisposeAsync()
    {
        await KillTargetAsync();
        if (_tgtd is not null)
        {
            foreach (Match target in TargetLine().Matches(Tgtadm("--mode", "target", "--op", "show").Output))
            {
                Tgtadm("--mode", "target", "--op", "delete", "--force", "--tid", target.Groups[1].Value);
            }
            Tgtadm("--mode", "system", "--op", "delete");
            if (!_tgtd.WaitForExit(10_000))
            {
                _tgtd.Kill();
                _tgtd.WaitForExit(5_000);
            }
            _tgtd.Dispose();
            _tgtd = null;
            // tgtd leaves its control socket and lock file behind.
            File.Delete($"/var/run/tgtd/socket.{ControlPort}");
            File.Delete($"/var/run/tgtd/socket.{ControlPort}.lock");
        }
        if (_filesystem is not null)
        {
            await _filesystem.DisposeAsync();
            _filesystem = null;
        }
    }

    [GeneratedRegex(@"^Target (\d+): (\S+)$", RegexOptions.Multiline)]
    private static partial Regex TargetLine();
}

/// <summary>
/// Two storage nodes (storage-a: small pool, storage-b: bigger pool) and the real `csi-scst controller`
/// process dialing both over mTLS with static discovery.
/// </summary>
public sealed class ControllerCluster : IAsyncLifetime
{
    public const long MiB = 1L << 20;
    public const string InitiatorA = "iqn.2026-11.io.csi-scst.test:worker-1";
    public const string InitiatorB = "iqn.2026-11.io.csi-scst.test:worker-2";
    public const string NodeX = "worker-1/" + InitiatorA;
    public const string NodeY = "worker-2/" + InitiatorB;

    private readonly TempDirectory _directory = new("csi-scst-ctl");

    public StorageNode A { get; private set; } = null!;
    public StorageNode B { get; private set; } = null!;
    public DriverProcess? ControllerProcess { get; private set; }
    public GrpcChannel? Channel { get; private set; }
    public global::Csi.V1.Controller.ControllerClient Client => new(Channel);
    public string TlsDirectory => _directory.Combine("tls");
    public string Socket => _directory.Combine("csi.sock");
    public int MetricsPort { get; } = Ports.Free();

    public async Task InitializeAsync()
    {
        MutualTls.GenerateFiles(TlsDirectory, ["127.0.0.1"], TimeSpan.FromDays(1));
        A = await StorageNode.StartAsync("storage-a", _directory.Combine("a"), TlsDirectory, 160 * MiB);
        B = await StorageNode.StartAsync("storage-b", _directory.Combine("b"), TlsDirectory, 320 * MiB);
        await StartControllerAsync();
    }

    public async Task StartControllerAsync(IReadOnlyDictionary<string, string>? environment = null, string? tlsDirectory = null, params string[] extra)
    {
        var tls = tlsDirectory ?? TlsDirectory;
        ControllerProcess = DriverProcess.Start(
        [
            "controller",
            "--endpoint", "unix://" + Socket,
            "--engine", A.EngineFlag,
            "--engine", B.EngineFlag,
            "--tls-ca", Path.Combine(tls, "ca.crt"),
            "--tls-cert", Path.Combine(tls, "client.crt"),
            "--tls-key", Path.Combine(tls, "client.key"),
            "--default-pool", "files",
            "--metrics-address", $"127.0.0.1:{MetricsPort}",
            .. extra,
        ], environment);
        await ControllerProcess.WaitForSocketAsync(Socket);
        Channel = DriverProcess.Channel(Socket);
    }

    public async Task StopControllerAsync(bool kill = false)
    {
        Channel?.Dispose();
        Channel = null;
        if (ControllerProcess is not null)
        {
            if (kill)
            {
                ControllerProcess.Kill();
                await ControllerProcess.WaitForExitAsync();
            }
            await ControllerProcess.DisposeAsync();
            ControllerProcess = null;
        }
    }

    public static CreateVolumeRequest Create(string name, long bytes = 16 * MiB, params (string Key, string Value)[] parameters)
    {
        var request = new CreateVolumeRequest
        {
            Name = name,
            CapacityRange = new CapacityRange { RequiredBytes = bytes },
            VolumeCapabilities =
            {
                new VolumeCapability { Block = new(), AccessMode = new() { Mode = VolumeCapability.Types.AccessMode.Types.Mode.SingleNodeWriter } },
            },
        };
        foreach (var (key, value) in parameters)
        {
            request.Parameters[key] = value;
        }
        return request;
    }

    public static VolumeCapability BlockWriter => new()
    {
        Block = new(),
        AccessMode = new() { Mode = VolumeCapability.Types.AccessMode.Types.Mode.SingleNodeWriter },
    };

    /// <summary>Nothing of ours left anywhere: no tgt target, no image file, no state file.</summary>
    public void AssertNothingLeft()
    {
        foreach (var node in new[] { A, B })
        {
            Assert.Empty(node.TgtTargets());
            Assert.Empty(node.PoolFiles());
            Assert.Empty(node.StateFiles());
        }
    }

    public async Task DisposeAsync()
    {
        await StopControllerAsync();
        if (B is not null)
        {
            await B.DisposeAsync();
        }
        if (A is not null)
        {
            await A.DisposeAsync();
        }
        _directory.Dispose();
    }
}
