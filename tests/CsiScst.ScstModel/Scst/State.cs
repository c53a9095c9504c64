namespace CsiScst.ScstModel.Scst;

// The configuration SCST holds in the kernel: what a reboot or module reload wipes (interfaces.md A.2).

internal enum HandlerKind
{
    BlockIo,
    FileIo,
    NullIo,
    CdRom,
}

/// <summary>A dev handler of scst_vdisk (interfaces.md A.1/A.4).</summary>
internal sealed class ScstHandler(string name, HandlerKind kind, int scsiType, IReadOnlySet<string>? allowedParams, string vendor, int threadsNum)
{
    public string Name { get; } = name;

    public HandlerKind Kind { get; } = kind;

    public int ScsiType { get; } = scsiType;

    /// <summary>add_device parameters it accepts; null = the list is not checked (vdisk_fileio).</summary>
    public IReadOnlySet<string>? AllowedParams { get; } = allowedParams;

    public string Vendor { get; } = vendor;

    public int DefaultThreadsNum { get; } = threadsNum;

    public bool HasFile => Kind is HandlerKind.BlockIo or HandlerKind.FileIo;
}

internal sealed class ScstDevice(string name, ScstHandler? handler, int scsiType)
{
    public string Name { get; } = name;

    /// <summary>Null for a SCSI disk of the machine that no handler drives (interfaces.md F: "2:0:0:0").</summary>
    public ScstHandler? Handler { get; } = handler;

    public int ScsiType { get; } = scsiType;

    public bool Alive { get; set; } = true;

    public string? Filename { get; set; }

    /// <summary>Capacity in bytes.</summary>
    public long Size { get; set; }

    public int BlockSize { get; set; } = 512;

    public bool ReadOnly { get; set; }

    public bool WriteThrough { get; set; }

    public bool NvCache { get; set; }

    public bool ODirect { get; set; }

    public bool Async { get; set; }

    public bool Rotational { get; set; } = true;

    public bool ThinProvisioned { get; set; }

    public bool Removable { get; set; }

    public bool Dummy { get; set; }

    public int Tst { get; set; } = 1;

    /// <summary>Whether the backing file or device is open (attribute "active").</summary>
    public bool Active { get; set; } = true;

    public bool BindAluaState { get; set; }

    public bool ClusterMode { get; set; }

    public bool ExplAlua { get; set; }

    public int NumaNodeId { get; set; } = -1;

    public int ThreadsNum { get; set; }

    public string ThreadsPoolType { get; set; } = "per_initiator";

    public ulong MaxTgtDevCommands { get; set; } = 48;

    public int DifMode { get; set; }

    public int DifType { get; set; }

    /// <summary>The number default identifiers are made from (vdisk_gen_dev_id_num).</summary>
    public uint DevIdNum { get; set; }

    public string T10DevId { get; set; } = "";

    public bool T10DevIdSet { get; set; }

    public string Usn { get; set; } = "";

    public bool UsnSet { get; set; }

    /// <summary>The other read-write identity strings (prod_id, eui64_id, ...), with "set by the user".</summary>
    public Dictionary<string, (string Value, bool Set)> Identity { get; } = new(StringComparer.Ordinal);

    public List<ScstLun> Exports { get; } = [];

    /// <summary>exportN numbers are never reused while the device lives (dev_exported_lun_num++).</summary>
    public int ExportCounter { get; set; }
}

/// <summary>A LUN of a LUN set (a target's default set or a group's).</summary>
internal sealed class ScstLun(ulong number, ScstDevice device, bool readOnly, ScstAcg acg, string exportName)
{
    public ulong Number { get; } = number;

    public ScstDevice Device { get; } = device;

    public bool ReadOnly { get; } = readOnly;

    public ScstAcg Acg { get; } = acg;

    public string ExportName { get; } = exportName;
}

/// <summary>An access control group: a target's default LUN set or one of its ini_groups.</summary>
internal sealed class ScstAcg(string name, ScstTarget target, bool isDefault)
{
    public string Name { get; } = name;

    public ScstTarget Target { get; } = target;

    public bool IsDefault { get; } = isDefault;

    public bool Alive { get; set; } = true;

    public SortedDictionary<ulong, ScstLun> Luns { get; } = [];

    /// <summary>Initiator names or patterns, in the order they were added.</summary>
    public List<string> Initiators { get; } = [];

    public string AddrMethod { get; set; } = "PERIPHERAL";

    public string IoGroupingType { get; set; } = "auto";

    public string? CpuMask { get; set; }

    public int BlackHole { get; set; }

    public int PerSessDedicatedTgtThreads { get; set; }
}

internal sealed class ScstTargetDriver(string name, bool isIscsi)
{
    public string Name { get; } = name;

    public bool IsIscsi { get; } = isIscsi;

    public SortedDictionary<string, ScstTarget> Targets { get; } = new(StringComparer.Ordinal);
}

internal sealed class ScstTarget
{
    public ScstTarget(string name, ScstTargetDriver driver, uint tid, IscsiTargetConfig? iscsi)
    {
        Name = name;
        Driver = driver;
        Tid = tid;
        Iscsi = iscsi;
        DefaultAcg = new ScstAcg(name, this, isDefault: true);
    }

    public string Name { get; }

    public ScstTargetDriver Driver { get; }

    public uint Tid { get; }

    public IscsiTargetConfig? Iscsi { get; }

    public ScstAcg DefaultAcg { get; }

    public bool Alive { get; set; } = true;

    /// <summary>ini_groups, in creation order (the order SCST matches initiators against them).</summary>
    public List<ScstAcg> Groups { get; } = [];

    public SortedDictionary<string, ScstSession> Sessions { get; } = new(StringComparer.Ordinal);

    public ushort RelTgtId { get; set; }

    public bool Enabled { get; set; }

    public string? Comment { get; set; }

    public int BlackHole { get; set; }

    public int ForwardSrc { get; set; }

    public int ForwardDst { get; set; }

    public int AenDisabled { get; set; }

    public IEnumerable<ScstAcg> AllAcgs => Groups.Prepend(DefaultAcg);
}

/// <summary>An iSCSI session; its directory is sessions/&lt;initiator-name&gt;[_N] (interfaces.md A.2).</summary>
internal sealed class ScstSession(string dirName, string initiatorName, string ip, ScstTarget target, ScstAcg acg, ulong sid, IReadOnlyList<(string Name, string Value)> negotiated)
{
    public string DirName { get; } = dirName;

    public string InitiatorName { get; } = initiatorName;

    public string Ip { get; } = ip;

    public ScstTarget Target { get; } = target;

    /// <summary>The LUN set the session is bound to; re-evaluated when initiators change.</summary>
    public ScstAcg Acg { get; set; } = acg;

    public ulong Sid { get; } = sid;

    public IReadOnlyList<(string Name, string Value)> Negotiated { get; } = negotiated;

    /// <summary>The name groups are matched with: the IQN, or "IQN#portal" under per_portal_acl.</summary>
    public string MatchName { get; init; } = initiatorName;

    public bool Alive { get; set; } = true;
}

/// <summary>A CHAP account of iscsi-scstd, shown as the attribute file <see cref="SysfsName"/>.</summary>
internal sealed class IscsiAccount(string sysfsName, string user, string secret)
{
    public string SysfsName { get; } = sysfsName;

    public string User { get; set; } = user;

    public string Secret { get; set; } = secret;
}

/// <summary>An allowed_portal pattern, shown as the attribute file <see cref="SysfsName"/>.</summary>
internal sealed class IscsiPortal(string sysfsName, string pattern)
{
    public string SysfsName { get; } = sysfsName;

    public string Pattern { get; set; } = pattern;
}

/// <summary>What iscsi-scstd keeps for one target (interfaces.md A.5).</summary>
internal sealed class IscsiTargetConfig
{
    public Dictionary<string, uint> Params { get; } = IscsiParams.Defaults();

    public bool PerPortalAcl { get; set; }

    public string RedirectAddress { get; set; } = "";

    public int RedirectPort { get; set; }

    public bool RedirectPermanent { get; set; }

    public string Alias { get; set; } = "";

    public List<IscsiAccount> IncomingUsers { get; } = [];

    /// <summary>At most one is kept; adding another replaces it.</summary>
    public List<IscsiAccount> OutgoingUsers { get; } = [];

    public List<IscsiPortal> AllowedPortals { get; } = [];
}

/// <summary>iscsi-scstd's driver-wide state: the discovery accounts and the "enabled" switch.</summary>
internal sealed class IscsiDaemonConfig
{
    public bool Enabled { get; set; }

    public List<IscsiAccount> IncomingUsers { get; } = [];

    public List<IscsiAccount> OutgoingUsers { get; } = [];

    public string? IsnsServer { get; set; }

    public bool IsnsAccessControl { get; set; }
}

internal sealed class ScstState
{
    public ScstState(IReadOnlyList<ScstHandler> handlers, int cpus)
    {
        Handlers = handlers;
        Cpus = cpus;
        Threads = cpus;
        Iscsi = new ScstTargetDriver("iscsi", isIscsi: true);
        CopyManager = new ScstTargetDriver("copy_manager", isIscsi: false);
        CopyManagerTarget = new ScstTarget("copy_manager_tgt", CopyManager, 0, null);
        CopyManager.Targets.Add(CopyManagerTarget.Name, CopyManagerTarget);
    }

    public IReadOnlyList<ScstHandler> Handlers { get; }

    public int Cpus { get; }

    public SortedDictionary<string, ScstDevice> Devices { get; } = new(StringComparer.Ordinal);

    public ScstTargetDriver Iscsi { get; }

    public ScstTargetDriver CopyManager { get; }

    /// <summary>Created with the copy manager; not deletable (its driver has no mgmt file).</summary>
    public ScstTarget CopyManagerTarget { get; }

    public IEnumerable<ScstTargetDriver> Drivers => [CopyManager, Iscsi];

    public IEnumerable<ScstTarget> AllTargets => Drivers.SelectMany(d => d.Targets.Values);

    /// <summary>iscsi-scstd's own state; null while the daemon is not running.</summary>
    public IscsiDaemonConfig? Daemon { get; set; }

    public uint SetupId { get; set; }

    public int Threads { get; set; }

    public long Suspend { get; set; }

    public int MeasureLatency { get; set; }

    public ulong PollUs { get; set; }

    public string ClusterName { get; set; } = "";

    public string TraceLevel { get; set; } = "out_of_mem | minor | pid | line | function | special | mgmt | mgmt_dbg";

    public int AllowNotConnectedCopy { get; set; }

    /// <summary>iSCSI tids are handed out from a counter (iscsi-scst target.c next_target_id).</summary>
    public uint LastTid { get; set; }

    /// <summary>gen_relative_target_port_id's cursor: it continues from where it last stopped.</summary>
    public int RelTgtIdCursor { get; set; } = 1;

    public ulong LastSid { get; set; }
}
