using System.CommandLine;
using CsiScst.Csi;
using CsiScst.Hosting;
using Microsoft.Extensions.DependencyInjection;

namespace CsiScst.Commands;

/// <summary>The server plan every CSI-socket role starts from.</summary>
internal static class CsiPlans
{
    internal static ServerPlan Create(string name, CommonSettings settings)
    {
        if (!settings.Endpoint.IsUnix)
        {
            throw new ArgumentException($"--endpoint for the {name} role must be a Unix socket (unix:///abs/path.sock); got {settings.Endpoint}");
        }
        var plan = new ServerPlan
        {
            Name = name,
            Metrics = settings.Metrics,
            LogFormat = settings.LogFormat,
            LogLevel = settings.LogLevel,
            ShutdownTimeout = settings.ShutdownTimeout,
        };
        plan.Listeners.Add(new GrpcListener(settings.Endpoint));
        plan.Services.Add(s => s.AddSingleton(settings.Driver));
        return plan;
    }
}
