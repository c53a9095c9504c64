using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace CsiScst.Testing;

/// <summary>A unique scratch directory, removed with everything in it.</summary>
internal sealed class ScratchDirectory : IDisposable
{
    public ScratchDirectory(string? parent = null)
    {
        Path = System.IO.Path.Combine(parent ?? System.IO.Path.GetTempPath(), "csi-scst-test-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }
    }
}

/// <summary>Keeps log lines so tests can check what an operator would read.</summary>
internal sealed class ListLogger<T> : ILogger<T>
{
    public ConcurrentQueue<(LogLevel Level, string Message)> Entries { get; } = new();

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
        Entries.Enqueue((logLevel, formatter(state, exception)));

    public int Count(string fragment) => Entries.Count(e => e.Message.Contains(fragment, StringComparison.Ordinal));
}

/// <summary>TCP ports for servers the tests start.</summary>
internal static class Ports
{
    /// <summary>A port nobody listens on right now (the kernel picks it).</summary>
    public static int Free(string address = "127.0.0.1")
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Parse(address), 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }

    public static bool IsFree(string address, int port)
    {
        try
        {
            using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Parse(address), port);
            listener.Start();
            return true;
        }
        catch (System.Net.Sockets.SocketException)
        {
            return false;
        }
    }
}
