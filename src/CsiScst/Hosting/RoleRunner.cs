using CsiScst.Core.Metrics;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Hosting;

namespace CsiScst.Hosting;

/// <summary>
/// Runs one or more role servers in this process until SIGTERM/SIGINT. Servers start in order (the
/// engine before the controller that dials it) and stop in reverse; all share one metrics registry.
/// </summary>
internal static class RoleRunner
{
    public static async Task<int> RunAsync(IReadOnlyList<ServerPlan> plans, CancellationToken cancellationToken)
    {
        var metrics = new DriverMetrics();
        var externalTime = new ExternalTime();
        var apps = new List<WebApplication>();
        try
        {
            foreach (var plan in plans)
            {
                var app = ServerHost.Build(plan, metrics, externalTime);
                apps.Add(app);
                await app.StartAsync(cancellationToken).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is InvalidOperationException or IOException or ArgumentException or System.Net.Sockets.SocketException)
        {
            await Console.Error.WriteLineAsync($"error: {e.Message}").ConfigureAwait(false);
            await StopAllAsync(apps).ConfigureAwait(false);
            return 1;
        }

        await Task.WhenAny(apps.Select(a => a.WaitForShutdownAsync(CancellationToken.None))).ConfigureAwait(false);
        await StopAllAsync(apps).ConfigureAwait(false);
        return 0;
    }

    private static async Task StopAllAsync(List<WebApplication> apps)
    {
        for (var i = apps.Count - 1; i >= 0; i--)
        {
            try
            {
                await apps[i].StopAsync(CancellationToken.None).ConfigureAwait(false);
            }
            finally
            {
                await apps[i].DisposeAsync().ConfigureAwait(false);
            }
        }
    }
}
