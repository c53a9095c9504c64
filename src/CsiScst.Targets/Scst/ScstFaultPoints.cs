using Microsoft.Extensions.Options;

namespace CsiScst.Targets.Scst;

/// <summary>
/// Numbered crash points for the crash-safety tests: with <c>CSI_SCST_FAULT_POINT=name:N</c> the process
/// SIGKILLs itself the N-th time it reaches the point called <c>name</c>, so the test sees exactly what a
/// power cut or OOM kill between two sysfs writes leaves behind. Unset (production): a counter is never kept.
/// Points: <c>scst-write</c> (before each sysfs write), <c>scst-written</c> (after a write the kernel accepted),
/// <c>scst-poll</c> (while waiting for a command that answered EAGAIN).
/// </summary>
public sealed class ScstFaultPoints
{
    private readonly string? _name;
    private readonly int _hit;
    private int _count;

    public ScstFaultPoints(IOptions<ScstOptions> options)
    {
        var spec = options.Value.FaultPoint;
        if (string.IsNullOrWhiteSpace(spec))
        {
            return;
        }
        var colon = spec.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(spec.AsSpan(colon + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var hit) || hit < 1)
        {
            throw new ArgumentException($"{ScstOptions.FaultPointVariable} '{spec}' must be name:N with N >= 1");
        }
        _name = spec[..colon];
        _hit = hit;
    }

    public bool Enabled => _name is not null;

    /// <summary>Called at each point; kills the process when the configured hit is reached.</summary>
    public void Hit(string name)
    {
        if (_name is null || !string.Equals(name, _name, StringComparison.Ordinal))
        {
            return;
        }
        if (Interlocked.Increment(ref _count) == _hit)
        {
            Console.Error.WriteLine($"fault point {name}:{_hit} reached: SIGKILL");
            Console.Error.Flush();
            ScstNative.KillSelf();
            // kill(2) of oneself with SIGKILL does not return; never continue past a fault point.
            Environment.FailFast($"fault point {name}:{_hit}");
        }
    }
}
