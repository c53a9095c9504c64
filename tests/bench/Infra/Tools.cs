using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace CsiScst.Bench.Infra;

/// <summary>Small helpers: running a tool to completion, free ports, polling.</summary>
internal static class Tools
{
    public sealed record Result(int ExitCode, string Stdout, string Stderr, TimeSpan Elapsed);

    public static async Task<Result> RunAsync(string file, IEnumerable<string> args, CancellationToken ct = default)
    {
        var start = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }
        start.Environment["LC_ALL"] = "C";
        var t0 = Stopwatch.GetTimestamp();
        using var p = Process.Start(start)!;
        var stdout = p.StandardOutput.ReadToEndAsync(ct);
        var stderr = p.StandardError.ReadToEndAsync(ct);
        await p.WaitForExitAsync(ct);
        return new Result(p.ExitCode, await stdout, await stderr, Stopwatch.GetElapsedTime(t0));
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public static bool PortFree(string address, int port)
    {
        try
        {
            using var listener = new TcpListener(IPAddress.Parse(address), port);
            listener.Start();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    public static async Task WaitForAsync(Func<Task<bool>> condition, string what, TimeSpan timeout, TimeSpan? interval = null)
    {
        var deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        while (true)
        {
            if (await condition())
            {
                return;
            }
            if (Stopwatch.GetTimestamp() > deadline)
            {
                throw new TimeoutException($"timed out after {timeout.TotalSeconds:0} s waiting for {what}");
            }
            await Task.Delay(interval ?? TimeSpan.FromMilliseconds(100));
        }
    }

    public static string RandomSuffix(int length = 8) => Convert.ToHexString(Guid.NewGuid().ToByteArray()).ToLowerInvariant()[..length];

    /// <summary>The 1-minute load average, as /proc/loadavg says.</summary>
    public static double LoadAverage() =>
        double.Parse(File.ReadAllText("/proc/loadavg").Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
}

/// <summary>
/// A private tgtd: its own control port and loopback address, so the bench never touches a system tgtd or a
/// test's. Disposal deletes every target and account on it and stops it.
/// </summary>
internal sealed class Tgtd : IAsyncDisposable
{
    private DriverProcess? _process;

    private Tgtd(int controlPort, string address)
    {
        ControlPort = controlPort;
        Address = address;
    }

    public int ControlPort { get; }
    public string Address { get; }
    public string Portal => Address + ":3260";

    public static async Task<Tgtd> StartAsync()
    {
        for (var attempt = 0; attempt < 50; attempt++)
        {
            var port = Random.Shared.Next(16384, 32768);
            var address = $"127.{Random.Shared.Next(100, 250)}.{Random.Shared.Next(1, 250)}.{Random.Shared.Next(2, 250)}";
            if (File.Exists($"/var/run/tgtd/socket.{port}") || !Tools.PortFree(address, 3260))
            {
                continue;
            }
            var tgtd = new Tgtd(port, address);
            tgtd._process = new DriverProcess("tgtd", ["-f", "-C", port.ToString(), "--iscsi", "portal=" + tgtd.Portal]);
            await Tools.WaitForAsync(async () => (await tgtd.AdmAsync(["--mode", "system", "--op", "show"], lld: false)).ExitCode == 0,
                "tgtd answering", TimeSpan.FromSeconds(30));
            return tgtd;
        }
        throw new InvalidOperationException("no free tgtd control port / loopback address");
    }

    public Task<Tools.Result> AdmAsync(IEnumerable<string> args, bool lld = true)
    {
        var all = new List<string> { "-C", ControlPort.ToString() };
        if (lld)
        {
            all.AddRange(["--lld", "iscsi"]);
        }
        all.AddRange(args);
        return Tools.RunAsync("tgtadm", all);
    }

    public async Task<List<int>> TidsAsync()
    {
        var show = await AdmAsync(["--mode", "target", "--op", "show"]);
        return show.Stdout.Split('\n').Where(l => l.StartsWith("Target ", StringComparison.Ordinal))
            .Select(l => int.Parse(l[7..l.IndexOf(':')])).ToList();
    }

    /// <summary>Deletes every target (as a tgtd restart would leave it: empty).</summary>
    public async Task DeleteAllTargetsAsync()
    {
        foreach (var tid in await TidsAsync())
        {
            await AdmAsync(["--mode", "target", "--op", "delete", "--force", "--tid", tid.ToString()]);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await DeleteAllTargetsAsync();
        var accounts = await AdmAsync(["--mode", "account", "--op", "show"]);
        foreach (var account in accounts.Stdout.Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0 && l != "Account list:"))
        {
            await AdmAsync(["--mode", "account", "--op", "delete", "--user", account]);
        }
        await AdmAsync(["--mode", "system", "--op", "delete"], lld: false);
        if (_process is not null)
        {
            await _process.DisposeAsync();
        }
        File.Delete($"/var/run/tgtd/socket.{ControlPort}");
        File.Delete($"/var/run/tgtd/socket.{ControlPort}.lock");
    }
}
