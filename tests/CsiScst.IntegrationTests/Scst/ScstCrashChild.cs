using System.Text.Json;
using CsiScst.IntegrationTests.Scst;
using CsiScst.Targets;
using CsiScst.Targets.Scst;
using Microsoft.Extensions.DependencyInjection;

/// <summary>
/// The crash tests' child process. The integration test assembly has no Main of its own (the test SDK
/// generates an empty one), so the child is this assembly started with DOTNET_STARTUP_HOOKS pointing at
/// itself: the runtime calls <see cref="Initialize"/> before Main, which runs one engine operation and exits.
/// Inert in every other process (the variable CSI_SCST_CRASH_CHILD is only set for the child).
/// </summary>
internal static class StartupHook
{
    public static void Initialize()
    {
        if (Environment.GetEnvironmentVariable(ScstCrashChild.ChildVariable) is not { Length: > 0 } request)
        {
            return;
        }
        Environment.Exit(ScstCrashChild.Run(request));
    }
}

namespace CsiScst.IntegrationTests.Scst
{
    internal sealed record CrashRequest(string SysfsRoot, string ConfigFile, string InstanceId, string Operation, ExportSpec? Spec, string? Key);

    [System.Text.Json.Serialization.JsonSerializable(typeof(CrashRequest))]
    internal sealed partial class CrashJson : System.Text.Json.Serialization.JsonSerializerContext;

    internal static class ScstCrashChild
    {
        public const string ChildVariable = "CSI_SCST_CRASH_CHILD";

        public static int Run(string requestJson)
        {
            try
            {
                var request = JsonSerializer.Deserialize(requestJson, CrashJson.Default.CrashRequest)!;
                var services = new ServiceCollection();
                services.AddLogging();
                services.AddSingleton(new CsiScst.Core.DriverOptions { InstanceId = request.InstanceId });
                services.AddSingleton(new CsiScst.Core.Metrics.ExternalTime());
                // FaultPoint comes from CSI_SCST_FAULT_POINT, as in production.
                services.AddScstEngine(o =>
                {
                    o.SysfsRoot = request.SysfsRoot;
                    o.ConfigFile = request.ConfigFile;
                    o.PollInterval = TimeSpan.FromMilliseconds(10);
                });
                using var provider = services.BuildServiceProvider();
                var engine = provider.GetRequiredService<ScstEngine>();
                switch (request.Operation)
                {
                    case "ensure":
                        engine.EnsureExportAsync(request.Spec!, CancellationToken.None).GetAwaiter().GetResult();
                        break;
                    case "remove":
                        engine.RemoveExportAsync(request.Key!, CancellationToken.None).GetAwaiter().GetResult();
                        break;
                    default:
                        throw new ArgumentException(request.Operation);
                }
                Console.WriteLine($"writes={provider.GetRequiredService<ScstSysfs>().WriteCount}");
                return 0;
            }
            catch (Exception e)
            {
                Console.Error.WriteLine(e);
                return 3;
            }
        }
    }
}
