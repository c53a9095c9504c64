using System.Runtime.InteropServices;

namespace CsiScst.Core.Faults;

/// <summary>
/// Crash-test hooks. <c>CSI_SCST_FAULT_POINT=name</c> (or <c>name:N</c>, the N-th time it is reached)
/// makes the real process SIGKILL itself when it reaches that named point between two steps of an
/// operation, so crash tests can prove that a restart plus a retry converges. Nothing happens when the
/// variable is unset; a point costs one string comparison.
/// </summary>
public sealed partial class FaultPoints
{
    public const string EnvironmentVariable = "CSI_SCST_FAULT_POINT";

    private readonly string? _name;
    private readonly int _hitNumber;
    private int _hits;

    public FaultPoints()
        : this(Environment.GetEnvironmentVariable(EnvironmentVariable))
    {
    }

    public FaultPoints(string? setting)
    {
        if (string.IsNullOrWhiteSpace(setting))
        {
            return;
        }
        setting = setting.Trim();
        var colon = setting.LastIndexOf(':');
        // Point names contain ':' themselves ("ensure-volume:after-record"); only a numeric tail is a count.
        if (colon > 0 && int.TryParse(setting[(colon + 1)..], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n) && n > 0)
        {
            _name = setting[..colon];
            _hitNumber = n;
        }
        else
        {
            _name = setting;
            _hitNumber = 1;
        }
    }

    /// <summary>The armed point, or null.</summary>
    public string? Armed => _name;

    /// <summary>Kills this process with SIGKILL when <paramref name="name"/> is the armed point (and its hit count is reached).</summary>
    public void Hit(string name)
    {
        if (_name is null || !string.Equals(name, _name, StringComparison.Ordinal))
        {
            return;
        }
        if (Interlocked.Increment(ref _hits) != _hitNumber)
        {
            return;
        }
        // Said on stderr so a crash test can tell the planned kill from a real crash.
        Console.Error.WriteLine($"csi-scst: fault point {name} reached (hit {_hitNumber}); SIGKILL");
        Console.Error.Flush();
        const int SIGKILL = 9;
        _ = Kill(Environment.ProcessId, SIGKILL);
        // kill(2) on ourselves with SIGKILL does not return; if it somehow did, never continue the operation.
        Environment.FailFast($"fault point {name}: kill(SIGKILL) returned");
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);
}
