using System.Globalization;

namespace CsiScst.Core.Faults;

/// <summary>
/// Test hook for the graceful-shutdown tests: <c>CSI_SCST_DELAY_RPC=Method:milliseconds</c> (e.g.
/// <c>CreateVolume:3000</c>) holds every call of that gRPC method for that long before it runs, so a test can
/// send SIGTERM to the real process while a call is in flight and check it still completes. Inert when unset.
/// </summary>
public sealed class DelayPoints
{
    public const string EnvironmentVariable = "CSI_SCST_DELAY_RPC";

    private readonly string? _method;
    private readonly TimeSpan _delay;

    public DelayPoints()
        : this(Environment.GetEnvironmentVariable(EnvironmentVariable))
    {
    }

    public DelayPoints(string? setting)
    {
        if (string.IsNullOrWhiteSpace(setting))
        {
            return;
        }
        var colon = setting.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(setting.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var ms))
        {
            throw new ArgumentException($"{EnvironmentVariable} '{setting}' must be Method:milliseconds");
        }
        _method = setting[..colon];
        _delay = TimeSpan.FromMilliseconds(ms);
    }

    public Task DelayAsync(string method, CancellationToken cancellationToken) =>
        _method is not null && string.Equals(method, _method, StringComparison.Ordinal)
            ? Task.Delay(_delay, cancellationToken)
            : Task.CompletedTask;
}
