using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace CsiScst.IntegrationTests.Tgt;

/// <summary>Result of a finished helper process.</summary>
internal sealed record RunResult(int ExitCode, string Stdout, string Stderr)
{
    public string All => Stdout + Stderr;
}

/// <summary>Runs the real tools tests drive (tgtadm, tgtd, libiscsi's iscsi-*, qemu-io) with an argument list.</summary>
internal static class Run
{
    public static async Task<RunResult> ToolAsync(string file, IEnumerable<string> args, IReadOnlyDictionary<string, string>? env = null,
        TimeSpan? timeout = null, string? stdin = null)
    {
        var start = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }
        start.Environment["LC_ALL"] = "C";
        foreach (var (key, value) in env ?? new Dictionary<string, string>())
        {
            start.Environment[key] = value;
        }
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (stdin is not null)
        {
            await process.StandardInput.WriteAsync(stdin);
        }
        process.StandardInput.Close();
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', args)} did not finish in time");
        }
        return new RunResult(process.ExitCode, await stdout, await stderr);
    }

    public static async Task<string> CheckedAsync(string file, params string[] args)
    {
        var result = await ToolAsync(file, args);
        if (result.ExitCode != 0)
        {
            throw new InvalidOperationException($"{file} {string.Join(' ', args)} exited {result.ExitCode}: {result.Stderr}");
        }
        return result.Stdout;
    }

    public static string RandomSuffix(int length = 8) => Guid.NewGuid().ToString("N")[..length];

    /// <summary>A guard against hangs, not a timing assertion.</summary>
    public static CancellationToken Timeout(int minutes = 3) => new CancellationTokenSource(TimeSpan.FromMinutes(minutes)).Token;

    public static async Task EventuallyAsync(Func<Task<bool>> condition, string what, TimeSpan? within = null)
    {
        var deadline = DateTime.UtcNow + (within ?? TimeSpan.FromSeconds(30));
        while (DateTime.UtcNow < deadline)
        {
            if (await condition())
            {
                return;
            }
            await Task.Delay(100);
        }
        throw new TimeoutException($"{what} did not happen");
    }
}

/// <summary>A long-running helper process (qemu-io holding a session) whose stdin stays open.</summary>
internal sealed class LongRunning : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    public LongRunning(string file, IEnumerable<string> args)
    {
        var start = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }
        _process = Process.Start(start)!;
        _process.OutputDataReceived += (_, e) => Append(e.Data);
        _process.ErrorDataReceived += (_, e) => Append(e.Data);
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

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

    public bool Exited => _process.HasExited;

    public async Task SendAsync(string line)
    {
        await _process.StandardInput.WriteLineAsync(line);
        await _process.StandardInput.FlushAsync();
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
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
}
