namespace CsiScst.IntegrationTests.Backends;

internal static class Tools
{
    public static CsiScst.Core.Exec.ToolRunner Runner() =>
        new(new CsiScst.Core.Metrics.DriverMetrics(), new CsiScst.Core.Metrics.ExternalTime(),
            Microsoft.Extensions.Logging.Abstractions.NullLogger<CsiScst.Core.Exec.ToolRunner>.Instance);

    /// <summary>A guard against hangs, not a timing assertion.</summary>
    public static CancellationToken Timeout(int minutes = 3) => new CancellationTokenSource(TimeSpan.FromMinutes(minutes)).Token;
}
