using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using CsiScst.Core.Grpc;
using Grpc.Net.Client;

namespace CsiScst.IntegrationTests.NodePlugin;

/// <summary>
/// A real <c>csi-scst node</c> process serving CSI on a Unix socket and /metrics on a free port, as
/// kubelet would talk to it. Killed (by its own pid) on dispose.
/// </summary>
internal sealed class NodeProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _log = new();
    private readonly GrpcChannel _channel;

    private NodeProcess(Process process, string socket, int metricsPort)
    {
        _process = process;
        Socket = socket;
        MetricsPort = metricsPort;
        _channel = Channels.ForUnixSocket(socket);
        Client = new global::Csi.V1.Node.NodeClient(_channel);
    }

    public string Socket { get; }
    public int MetricsPort { get; }
    public int Pid => _process.Id;
    public global::Csi.V1.Node.NodeClient Client { get; }

    public string Log
    {
        get
        {
            lock (_log)
            {
                return _log.ToString();
            }
        }
    }

    public static Task<NodeProcess> StartAsync(string directory, string instanceId, params string[] extra) =>
        StartAsync(directory, instanceId, "iqn.2026-11.io.csi-scst.test:" + instanceId, extra);

    public static async Task<NodeProcess> StartAsync(string directory, string instanceId, string? initiatorName, params string[] extra)
    {
        var socket = Path.Join(directory, $"node-{Guid.NewGuid():N}"[..13] + ".sock");
        var port = Ports.Free();
        var info = new ProcessStartInfo(CsiScst.IntegrationTests.Infrastructure.DriverBinary.Path)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in new[]
                 {
                     "node", "--endpoint", "unix://" + socket, "--node-id", "it-node", "--instance-id", instanceId,
                     "--metrics-address", $"127.0.0.1:{port}", "--log-level", "Debug",
                 }.Concat(initiatorName is null ? [] : ["--initiator-name", initiatorName]).Concat(extra))
        {
            info.ArgumentList.Add(argument);
        }
        var process = Process.Start(info)!;
        var node = new NodeProcess(process, socket, port);
        process.OutputDataReceived += (_, e) => node.Append(e.Data);
        process.ErrorDataReceived += (_, e) => node.Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (DateTime.UtcNow < deadline)
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException($"csi-scst node exited with {process.ExitCode}: {node.Log}");
            }
            if (File.Exists(socket))
            {
                try
                {
                    await node.Client.NodeGetInfoAsync(new global::Csi.V1.NodeGetInfoRequest(), deadline: DateTime.UtcNow.AddSeconds(5));
                    return node;
                }
                catch (Grpc.Core.RpcException)
                {
                }
            }
            await Task.Delay(100);
        }
        node.Dispose();
        throw new TimeoutException($"csi-scst node did not serve {socket}: {node.Log}");
    }

    public async Task<string> MetricsAsync()
    {
        using var http = new HttpClient();
        return await http.GetStringAsync($"http://127.0.0.1:{MetricsPort}/metrics");
    }

    /// <summary>SIGKILL: no chance to clean up, as in a node crash or an OOM kill.</summary>
    public void Kill()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
            _process.WaitForExit(10_000);
        }
    }

    public void Dispose()
    {
        Kill();
        _channel.Dispose();
        _process.Dispose();
        try
        {
            File.Delete(Socket);
        }
        catch (IOException)
        {
        }
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }
        lock (_log)
        {
            _log.AppendLine(line);
        }
    }

}
