namespace CsiScst.ScstModel;

/// <summary>Settings of a model instance; the mutable ones can also be changed through M/.model/.</summary>
public sealed class ScstModelOptions
{
    /// <summary>How long each queued sysfs work takes (interfaces.md A.3); 0 = at once.</summary>
    public int WorkMs { get; set; }

    /// <summary>How long a writer waits for its work before EAGAIN; SCST's is 15 s.</summary>
    public int WaitMs { get; set; } = 15_000;

    /// <summary>Whether iscsi-scstd runs after mount and after each reboot (A.1: scst.service starts it).</summary>
    public bool IscsiScstdRunningAtBoot { get; set; } = true;

    /// <summary>The scst module parameter forcibly_close_sessions (A.6).</summary>
    public bool ForciblyCloseSessions { get; set; }

    /// <summary>How many CPUs the modelled machine has (threads, cpu_mask).</summary>
    public int Cpus { get; set; } = Environment.ProcessorCount;

    /// <summary>How long to wait for the kernel's FUSE INIT after mount(2).</summary>
    public TimeSpan MountTimeout { get; set; } = TimeSpan.FromSeconds(10);
}
