using System.Diagnostics;

namespace CsiScst.IntegrationTests.Tgt;

/// <summary>
/// A private tgtd for one test: its own control port and its own loopback address (127.x.y.z:3260), so test
/// classes run in parallel with each other and with a system tgtd. Disposal deletes every target and
/// account, stops the daemon (tgtadm --mode system --op delete; a plain kill does not stop it while targets
/// exist) and removes its socket files.
/// </summary>
internal sealed class TgtdInstance : IAsyncDisposable
{
    private Process? _process;

    private TgtdInstance(int controlPort, string address)
    {
        ControlPort = controlPort;
        Address = address;
    }

    public int ControlPort { get; }
    public string Address { get; }
    public string Portal => Address + ":3260";
    public string SocketPath => $"/var/run/tgtd/socket.{ControlPort}";

    /// <summary>Picks a free control port and address; starts tgtd unless <paramref name="start"/> is false (the engine starts it).</summary>
    public static async Task<TgtdInstance> CreateAsync(bool start = true)
    {
        for (var attempt = 0; attempt < 50; attempt++)
        {
            // tgtd accepts control ports up to 32767.
            var port = Random.Shared.Next(16384, 32768);
            var address = $"127.{Random.Shared.Next(100, 250)}.{Random.Shared.Next(1, 250)}.{Random.Shared.Next(2, 250)}";
            if (File.Exists($"/var/run/tgtd/socket.{port}") || !Ports.IsFree(address, 3260))
            {
                continue;
            }
            var instance = new TgtdInstance(port, address);
            if (start)
            {
                await instance.StartAsync();
            }
            return instance;
        }
        throw new InvalidOperationException("no free tgtd control port / address found");
    }

    public async Task StartAsync()
    {
        var start = new ProcessStartInfo("tgtd")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[] { "-f", "-C", ControlPort.ToString(), "--iscsi", "portal=" + Portal })
        {
            start.ArgumentList.Add(arg);
        }
        _process = Process.Start(start)!;
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        await Run.EventuallyAsync(async () => (await AdmAsync(["--mode", "system", "--op", "show"], lld: false)).ExitCode == 0, $"tgtd on control port {ControlPort} answering");
    }

    public Task<RunResult> AdmAsync(IEnumerable<string> args, bool lld = true)
    {
        var all = new List<string> { "-C", ControlPort.ToString() };
        if (lld)
        {
            all.AddRange(["--lld", "iscsi"]);
        }
        all.AddRange(args);
        return Run.ToolAsync("tgtadm", all);
    }

    public async Task<string> ShowAsync() => (await AdmAsync(["--mode", "target", "--op", "show"])).Stdout;

    public async Task<List<string>> AccountsAsync() =>
        (await AdmAsync(["--mode", "account", "--op", "show"])).Stdout.Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0 && l != "Account list:").ToList();

    public async Task<List<(int Tid, string Name)>> TargetsAsync()
    {
        var targets = new List<(int, string)>();
        foreach (var line in (await ShowAsync()).Split('\n'))
        {
            if (line.StartsWith("Target ", StringComparison.Ordinal))
            {
                var colon = line.IndexOf(':');
                targets.Add((int.Parse(line[7..colon]), line[(colon + 1)..].Trim()));
            }
        }
        return targets;
    }

    public async Task<bool> AnswersAsync() => (await AdmAsync(["--mode", "system", "--op", "show"], lld: false)).ExitCode == 0;

    /// <summary>Deletes every target and account and stops the daemon (whoever started it).</summary>
    public async Task StopAsync()
    {
        if (await AnswersAsync())
        {
            foreach (var (tid, _) in await TargetsAsync())
            {
                await AdmAsync(["--mode", "target", "--op", "delete", "--force", "--tid", tid.ToString()]);
            }
            foreach (var account in await AccountsAsync())
            {
                await AdmAsync(["--mode", "account", "--op", "delete", "--user", account]);
            }
            await AdmAsync(["--mode", "system", "--op", "delete"], lld: false);
        }
        if (_process is not null)
        {
            using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            try
            {
                await _process.WaitForExitAsync(wait.Token);
            }
            catch (OperationCanceledException)
            {
                _process.Kill();
                await _process.WaitForExitAsync();
            }
            _process.Dispose();
            _process = null;
        }
        else
        {
            await Run.EventuallyAsync(async () => !await AnswersAsync(), $"tgtd on control port {ControlPort} stopping", TimeSpan.FromSeconds(10));
        }
        File.Delete(SocketPath);
        File.Delete(SocketPath + ".lock");
    }

    /// <summary>Simulates a crash or reboot of tgtd: SIGKILL, so every target vanishes with it.</summary>
    public async Task KillAsync()
    {
        if (_process is null)
        {
            throw new InvalidOperationException("only a tgtd this test started can be killed");
        }
        _process.Kill();
        await _process.WaitForExitAsync();
        _process.Dispose();
        _process = null;
        File.Delete(SocketPath);
        File.Delete(SocketPath + ".lock");
    }

    public async ValueTask DisposeAsync() => await StopAsync();
}
