using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using CsiScst.Core.Grpc;
using CsiScst.Core.Ids;
using CsiScst.Core.Tls;
using CsiScst.Engine.Api;
using CsiScst.Engine.V1;
using CsiScst.IntegrationTests.Tgt;

namespace CsiScst.IntegrationTests.Engine;

/// <summary>
/// Everything one test needs to run the real <c>csi-scst target</c> binary: a private tgtd, a file pool, a
/// state directory, a fresh CA with server and client certificates, free ports. Disposal stops the engine,
/// the tgtd (with every target and account) and removes every file.
/// </summary>
internal sealed class EngineHarness : IAsyncDisposable
{
    private readonly List<EngineProcess> _processes = [];

    private EngineHarness(TgtdInstance tgtd, string root)
    {
        Tgtd = tgtd;
        Root = root;
        InstanceId = "e" + Run.RandomSuffix(6);
        Names = new ObjectNames(InstanceId);
        NodeId = "storage-" + Run.RandomSuffix(4);
        ApiPort = Ports.Free();
        MetricsPort = Ports.Free();
        Directory.CreateDirectory(PoolDirectory);
        MutualTls.GenerateFiles(TlsDirectory, ["127.0.0.1"], TimeSpan.FromDays(1));
    }

    public TgtdInstance Tgtd { get; }
    public string Root { get; }
    public string InstanceId { get; }
    public ObjectNames Names { get; }
    public string NodeId { get; }
    public int ApiPort { get; }
    public int MetricsPort { get; }
    public string StateDirectory => Path.Combine(Root, "state");
    public string PoolDirectory => Path.Combine(Root, "pool");
    public string TlsDirectory => Path.Combine(Root, "tls");
    public string ScratchDirectory => Root;
    public EndpointAddress Endpoint => EndpointAddress.Tcp("127.0.0.1", ApiPort);

    /// <param name="startTgtd">false: the engine starts tgtd itself (--tgt-start-daemon).</param>
    public static async Task<EngineHarness> CreateAsync(bool startTgtd = true)
    {
        var tgtd = await TgtdInstance.CreateAsync(startTgtd);
        var root = Path.Combine(Path.GetTempPath(), "csi-scst-engine-" + Run.RandomSuffix());
        Directory.CreateDirectory(root);
        return new EngineHarness(tgtd, root);
    }

    public MutualTls ClientTls() => MutualTls.Load(Path.Combine(TlsDirectory, "ca.crt"), Path.Combine(TlsDirectory, "client.crt"), Path.Combine(TlsDirectory, "client.key"));

    public EngineClient Client() => new(Endpoint, ClientTls());

    public IReadOnlyList<string> Arguments(bool startDaemon = false, string reconcileInterval = "00:10:00") =>
    [
        "target",
        "--listen", $"tcp://127.0.0.1:{ApiPort}",
        "--tls-ca", Path.Combine(TlsDirectory, "ca.crt"),
        "--tls-cert", Path.Combine(TlsDirectory, "server.crt"),
        "--tls-key", Path.Combine(TlsDirectory, "server.key"),
        "--engine", "tgt",
        "--portal", Tgtd.Portal,
        "--state-dir", StateDirectory,
        "--pool", $"name=files,backend=file,path={PoolDirectory}",
        "--tgt-control-port", Tgtd.ControlPort.ToString(),
        "--node-id", NodeId,
        "--instance-id", InstanceId,
        "--metrics-address", $"127.0.0.1:{MetricsPort}",
        "--reconcile-interval", reconcileInterval,
        "--log-level", "Debug",
        .. startDaemon ? new[] { "--tgt-start-daemon" } : [],
    ];

    /// <summary>Starts the real binary and waits until its engine API answers (or the process exits).</summary>
    public async Task<EngineProcess> StartAsync(string? faultPoint = null, bool startDaemon = false, string reconcileInterval = "00:10:00")
    {
        var process = new EngineProcess(Arguments(startDaemon, reconcileInterval), faultPoint);
        _processes.Add(process);
        using var client = Client();
        await Run.EventuallyAsync(async () =>
        {
            if (process.Exited)
            {
                throw new InvalidOperationException($"csi-scst target exited with {process.ExitCode}:\n{process.Output}");
            }
            try
            {
                await client.Api.GetEngineInfoAsync(new GetEngineInfoRequest(), deadline: DateTime.UtcNow.AddSeconds(5));
                return true;
            }
            catch (Grpc.Core.RpcException)
            {
                return false;
            }
        }, "csi-scst target answering on its engine API", TimeSpan.FromSeconds(60));
        return process;
    }

    public async Task<string> MetricsAsync()
    {
        using var http = new HttpClient();
        return await http.GetStringAsync($"http://127.0.0.1:{MetricsPort}/metrics");
    }

    public async Task<(int Status, string Body)> ReadyzAsync()
    {
        using var http = new HttpClient();
        var response = await http.GetAsync($"http://127.0.0.1:{MetricsPort}/readyz");
        return ((int)response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    /// <summary>Files the file pool holds (volumes and snapshots), relative to the pool.</summary>
    public List<string> PoolFiles() =>
        Directory.Exists(PoolDirectory)
            ? Directory.EnumerateFiles(PoolDirectory, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(PoolDirectory, f)).Order().ToList()
            : [];

    public List<string> StateFiles() =>
        Directory.Exists(StateDirectory)
            ? Directory.EnumerateFiles(StateDirectory, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(StateDirectory, f)).Order().ToList()
            : [];

    public async ValueTask DisposeAsync()
    {
        try
        {
            foreach (var process in _processes)
            {
                await process.DisposeAsync();
            }
        }
        finally
        {
            try
            {
                await Tgtd.DisposeAsync();
            }
            finally
            {
                Directory.Delete(Root, recursive: true);
            }
        }
    }
}

/// <summary>One run of the real <c>csi-scst</c> binary.</summary>
internal sealed partial class EngineProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private int _disposed;

    public EngineProcess(IReadOnlyList<string> arguments, string? faultPoint)
    {
        var start = new ProcessStartInfo(BinaryPath)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
        start.Environment.Remove(Core.Faults.FaultPoints.EnvironmentVariable);
        if (faultPoint is not null)
        {
            start.Environment[Core.Faults.FaultPoints.EnvironmentVariable] = faultPoint;
        }
        _process = Process.Start(start)!;
        _process.OutputDataReceived += (_, e) => Append(e.Data);
        _process.ErrorDataReceived += (_, e) => Append(e.Data);
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    /// <summary>
    /// The apphost next to the test assembly (the test project references the executable), or the binary
    /// CSI_SCST_BINARY names (e.g. a Native AOT publish, to run the same tests against it).
    /// </summary>
    public static string BinaryPath =>
        Environment.GetEnvironmentVariable("CSI_SCST_BINARY") is { Length: > 0 } binary ? binary : Path.Combine(AppContext.BaseDirectory, "csi-scst");

    public bool Exited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    public int Id => _process.Id;

    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    public async Task<int> WaitForExitAsync(TimeSpan within)
    {
        using var cts = new CancellationTokenSource(within);
        await _process.WaitForExitAsync(cts.Token);
        return _process.ExitCode;
    }

    /// <summary>SIGTERM, as kubelet stops a pod: the graceful path.</summary>
    public async Task<int> TerminateAsync()
    {
        _ = Kill(_process.Id, 15);
        return await WaitForExitAsync(TimeSpan.FromSeconds(60));
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        if (!_process.HasExited)
        {
            _process.Kill();
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }
        lock (_output)
        {
            _output.AppendLine(line);
        }
    }

    [LibraryImport("libc", EntryPoint = "kill")]
    private static partial int Kill(int pid, int signal);
}
