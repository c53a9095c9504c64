namespace CsiScst.Core.Metrics;

/// <summary>
/// Accumulates, per operation (it flows with the async call), the time spent waiting on things that
/// are not the driver's own work: external tools, sysfs/configfs writes, the engine write lock,
/// calls to another role. RPC duration minus this is the driver's own overhead.
/// </summary>
public sealed class ExternalTime
{
    private readonly AsyncLocal<Accumulator?> _current = new();

    /// <summary>Starts accounting for the current async flow; returns the accumulator to read at the end.</summary>
    public Accumulator Begin()
    {
        var accumulator = new Accumulator();
        _current.Value = accumulator;
        return accumulator;
    }

    public void Add(TimeSpan elapsed) => _current.Value?.Add(elapsed);

    /// <summary>Measures a block: <c>using (externalTime.Measure()) { … }</c>.</summary>
    public Measurement Measure() => new(this, System.Diagnostics.Stopwatch.GetTimestamp());

    public readonly struct Measurement(ExternalTime owner, long started) : IDisposable
    {
        public void Dispose() => owner.Add(System.Diagnostics.Stopwatch.GetElapsedTime(started));
    }

    public sealed class Accumulator
    {
        private long _ticks;

        public TimeSpan Elapsed => TimeSpan.FromTicks(Interlocked.Read(ref _ticks));

        public void Add(TimeSpan elapsed) => Interlocked.Add(ref _ticks, elapsed.Ticks);
    }
}
