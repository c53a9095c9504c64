using System.Net.Sockets;

namespace CsiScst.Hosting;

/// <summary>
/// Unix socket file housekeeping: a stale file left by a crashed process is replaced; a socket another
/// live process still serves is not stolen; our socket is removed on shutdown.
/// </summary>
internal static class SocketFile
{
    public static void PrepareForListen(string path)
    {
        var directory = Path.GetDirectoryName(path);
        if (!string.IsNullOrEmpty(directory))
        {
            Directory.CreateDirectory(directory);
        }
        if (!File.Exists(path) && !Directory.Exists(path))
        {
            return;
        }
        if (Directory.Exists(path))
        {
            throw new InvalidOperationException($"socket path {path} is a directory");
        }
        if (IsServed(path))
        {
            throw new InvalidOperationException($"another process is already serving {path}; refusing to replace its socket");
        }
        File.Delete(path);
    }

    public static void Remove(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    private static bool IsServed(string path)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            socket.Connect(new UnixDomainSocketEndPoint(path));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
