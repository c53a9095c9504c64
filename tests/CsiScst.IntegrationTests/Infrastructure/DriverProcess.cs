using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using CsiScst.Core.Grpc;
using Grpc.Net.Client;

namespace CsiScst.IntegrationTests.Infrastructure;

/// <summary>
/// A real csi-scst process (any role) started by a test: output captured for failure messages, readiness
/// awaited on its socket or port, stopped with SIGTERM (or killed) on dispose.
/// </summary>
public sealed class DriverProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly Lock _outputGate = new();

    private DriverProcess(Process process)
    {
        _process = process;
    }

    public int Pid => _process.Id;
    public bool HasExited => _process.HasExited;
    public int ExitCode => _process.ExitCode;

    public string Output
    {
        get
        {
            lock (_outputGate)
            {
                return _output.ToString();
            }
        }
    }

    public static DriverProcess Start(IEnumerable<string> arguments, IReadOnlyDictionary<string, string>? environment = null)
    {
        var startInfo = new ProcessStartInfo(DriverBinary.Path)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            startInfo.ArgumentList.Add(argument);
        }
        if (environment is not null)
        {
            foreach (var (name, value) in environment)
            {
                startInfo.Environment[name] = value;
            }
        }
        var process = new Process { StartInfo = startInfo, EnableRaisingEvents = true };
        var driver = new DriverProcess(process);
        process.OutputDataReceived += (_, e) => driver.Append(e.Data);
        process.ErrorDataReceived += (_, e) => driver.Append(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return driver;
    }

    /// <summary>Waits until the Unix socket accepts connections (or the process dies).</summary>
    public async Task WaitForSocketAsync(string socketPath, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(60));
        while (DateTime.UtcNow < deadline)
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"csi-scst exited with {_process.ExitCode} before serving {socketPath}:\n{Output}");
            }
            if (File.Exists(socketPath))
            {
                using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath));
                    return;
                }
                catch (SocketException)
                {
                }
            }
            await Task.Delay(50);
        }
        throw new TimeoutException($"csi-scst did not serve {socketPath} in time:\n{Output}");
    }

    /// <summary>Waits until a TCP port accepts connections (or the process dies).</summary>
    public async Task WaitForPortAsync(string host, int port, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(60));
        while (DateTime.UtcNow < deadline)
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"csi-scst exited with {_process.ExitCode} before listening on {host}:{port}:\n{Output}");
            }
            using var client = new TcpClient();
            try
            {
                await client.ConnectAsync(host, port);
                return;
            }
            catch (SocketException)
            {
            }
            await Task.Delay(50);
        }
        throw new TimeoutException($"csi-scst did not listen on {host}:{port} in time:\n{Output}");
    }

    public static GrpcChannel Channel(string socketPath) => Channels.ForUnixSocket(socketPath);

    /// <summary>SIGTERM, then waits for a graceful exit; returns the exit code.</summary>
    public async Task<int> StopAsync(TimeSpan? timeout = null)
    {
        if (!_process.HasExited)
        {
            Signal(_process.Id, 15);
            using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(40));
            try
            {
                await _process.WaitForExitAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                Kill();
                await _process.WaitForExitAsync();
            }
        }
        return _process.ExitCode;
    }

    /// <summary>SIGKILL: no cleanup, as in a crash or OOM kill.</summary>
    public void Kill()
    {
        try
        {
            _process.Kill(entireProcessTree: false);
        }
        catch (InvalidOperationException)
        {
        }
    }

    public Task WaitForExitAsync(CancellationToken cancellationToken = default) => _process.WaitForExitAsync(cancellationToken);

    public async ValueTask DisposeAsync()
    {
        await StopAsync(TimeSpan.FromSeconds(15));
        _process.Dispose();
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }
        lock (_outputGate)
        {
            _output.AppendLine(line);
        }
    }

    private static void Signal(int pid, int signal) => _ = NativeMethods.Kill(pid, signal);
}

internal static partial class NativeMethods
{
    [System.Runtime.InteropServices.LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    internal static partial int Kill(int pid, int signal);
}
