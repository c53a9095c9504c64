namespace CsiScst.Targets.Scst;

/// <summary>Settings of the SCST engine (flags of <c>csi-scst target --engine scst</c>).</summary>
public sealed class ScstOptions
{
    public const string DefaultSysfsRoot = "/sys/kernel/scst_tgt";
    public const string DefaultConfigFile = "/etc/scst.conf";
    public const string FaultPointVariable = "CSI_SCST_FAULT_POINT";

    /// <summary>SCST's sysfs root.</summary>
    public string SysfsRoot { get; set; } = DefaultSysfsRoot;

    /// <summary>
    /// Where the whole SCST configuration is saved in scst.conf syntax after each change, so that the boot-time
    /// <c>scstadmin -config</c> restores it. Empty: never written.
    /// </summary>
    public string ConfigFile { get; set; } = DefaultConfigFile;

    /// <summary>
    /// How long to keep polling last_sysfs_mgmt_res after a write returned EAGAIN (SCST keeps executing the
    /// command in the kernel; it already waited 15 s before answering EAGAIN).
    /// </summary>
    public TimeSpan CommandTimeout { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>How long reads that fail with EAGAIN (attributes served through SCST's work queue) are retried.</summary>
    public TimeSpan ReadTimeout { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>Pause between polls of last_sysfs_mgmt_res and between read retries.</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromMilliseconds(50);

    /// <summary>How long a fenced initiator's sessions may take to go away before deleting its group gives up (EBUSY).</summary>
    public TimeSpan SessionCloseTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Crash testing only: <c>name:N</c> SIGKILLs the process at the N-th hit of the named fault point
    /// (Core FaultPoints: points scst-write, scst-written, scst-poll). Read from CSI_SCST_FAULT_POINT by default.
    /// </summary>
    public string? FaultPoint { get; set; } = Environment.GetEnvironmentVariable(FaultPointVariable);
}
