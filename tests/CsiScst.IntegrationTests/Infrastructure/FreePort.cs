using System.Net;
using System.Net.Sockets;

namespace CsiScst.IntegrationTests.Infrastructure;

/// <summary>Free TCP ports on loopback for servers started by tests.</summary>
public static class FreePort
{
    public static int Next(string address = "127.0.0.1")
    {
        using var listener = new TcpListener(IPAddress.Parse(address), 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
