namespace CsiScst.Targets.Scst;

/// <summary>Sysfs paths and fixed names (interfaces.md A.2).</summary>
internal static class ScstPaths
{
    public const string IscsiDriver = "iscsi";
    public const string CopyManagerDriver = "copy_manager";
    public const string BlockioHandler = "vdisk_blockio";
    public const string FileioHandler = "vdisk_fileio";
    public const string Mgmt = "mgmt";

    public const string Devices = "devices";
    public const string Handlers = "handlers";
    public const string Targets = "targets";
    public const string IscsiRoot = "targets/iscsi";
    public const string IscsiMgmt = "targets/iscsi/mgmt";
    public const string IscsiEnabled = "targets/iscsi/enabled";
    public const string IscsiOpenState = "targets/iscsi/open_state";

    public static string HandlerMgmt(string handler) => $"handlers/{handler}/mgmt";
    public static string Device(string name) => $"devices/{name}";
    public static string DeviceAttribute(string name, string attribute) => $"devices/{name}/{attribute}";
    public static string Target(string iqn) => $"targets/iscsi/{iqn}";
    public static string TargetAttribute(string iqn, string attribute) => $"targets/iscsi/{iqn}/{attribute}";
    public static string TargetLuns(string iqn) => $"targets/iscsi/{iqn}/luns";
    public static string TargetLunsMgmt(string iqn) => $"targets/iscsi/{iqn}/luns/mgmt";
    public static string Groups(string iqn) => $"targets/iscsi/{iqn}/ini_groups";
    public static string GroupsMgmt(string iqn) => $"targets/iscsi/{iqn}/ini_groups/mgmt";
    public static string Group(string iqn, string group) => $"targets/iscsi/{iqn}/ini_groups/{group}";
    public static string GroupLuns(string iqn, string group) => $"targets/iscsi/{iqn}/ini_groups/{group}/luns";
    public static string GroupLunsMgmt(string iqn, string group) => $"targets/iscsi/{iqn}/ini_groups/{group}/luns/mgmt";
    public static string GroupInitiators(string iqn, string group) => $"targets/iscsi/{iqn}/ini_groups/{group}/initiators";
    public static string GroupInitiatorsMgmt(string iqn, string group) => $"targets/iscsi/{iqn}/ini_groups/{group}/initiators/mgmt";
    public static string Sessions(string iqn) => $"targets/iscsi/{iqn}/sessions";
    public static string Session(string iqn, string session) => $"targets/iscsi/{iqn}/sessions/{session}";

    /// <summary>
    /// The initiator a session directory belongs to: SCST names a second session of the same initiator
    /// <c>name_1</c>, <c>name_2</c> … and, with per_portal_acl, matches <c>name#portal</c>. iSCSI names
    /// cannot contain '_' or '#', so stripping both is unambiguous.
    /// </summary>
    public static string InitiatorOfSession(string sessionDirectory)
    {
        var name = sessionDirectory;
        var underscore = name.LastIndexOf('_');
        if (underscore > 0 && underscore < name.Length - 1 && name.AsSpan(underscore + 1).IndexOfAnyExceptInRange('0', '9') < 0)
        {
            name = name[..underscore];
        }
        var hash = name.IndexOf('#');
        return hash > 0 ? name[..hash] : name;
    }
}

internal sealed record ScstDeviceState
{
    public required string Name { get; init; }
    /// <summary>vdisk_blockio, vdisk_fileio …; null for entries without a handler link (pass-through SCSI disks).</summary>
    public string? Handler { get; init; }
    public string? Filename { get; init; }
    public int? BlockSize { get; init; }
    public bool? WriteThrough { get; init; }
    public bool? NvCache { get; init; }
    public bool? ThinProvisioned { get; init; }
    public bool? Rotational { get; init; }
    public string? T10DevId { get; init; }
    public string? Usn { get; init; }
    public long? SizeBytes { get; init; }
    /// <summary>Whether the backing storage is open (<c>active</c>); a closed device serves no I/O.</summary>
    public bool? Active { get; init; }
}

internal sealed record ScstLun(int Number, string? Device, bool ReadOnly);

internal sealed record ScstGroup(string Name, IReadOnlyList<string> Initiators, IReadOnlyList<ScstLun> Luns)
{
    public ScstLun? Lun(int number) => Luns.FirstOrDefault(l => l.Number == number);
}

/// <summary>One <c>IncomingUser[N]</c> / <c>OutgoingUser</c> file: "user secret".</summary>
internal sealed record ScstChapEntry(string Attribute, string User, string Secret)
{
    public override string ToString() => $"{Attribute}: {User} ***";
}

internal sealed record ScstPortalEntry(string Attribute, string Pattern);

internal sealed record ScstTargetState
{
    public required string Iqn { get; init; }
    public bool Enabled { get; init; }
    public int? RelTgtId { get; init; }
    public IReadOnlyList<ScstLun> DefaultLuns { get; init; } = [];
    public IReadOnlyList<ScstGroup> Groups { get; init; } = [];
    public IReadOnlyList<ScstChapEntry> IncomingUsers { get; init; } = [];
    public ScstChapEntry? OutgoingUser { get; init; }
    public IReadOnlyList<ScstPortalEntry> AllowedPortals { get; init; } = [];
    /// <summary>Names of the session directories (initiator name, or name_N for further sessions).</summary>
    public IReadOnlyList<string> Sessions { get; init; } = [];

    public ScstGroup? Group(string name) => Groups.FirstOrDefault(g => g.Name == name);

    public static ScstTargetState Empty(string iqn) => new() { Iqn = iqn };
}

/// <summary>Our objects as read in one pass.</summary>
internal sealed record ScstSnapshot(
    IReadOnlyDictionary<string, ScstDeviceState> Devices,
    IReadOnlyDictionary<string, ScstTargetState> Targets);
