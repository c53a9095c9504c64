namespace CsiScst.Initiator.Iscsi;

/// <summary>One iSCSI session as <c>iscsiadm -m session -P 3</c> reports it.</summary>
public sealed record IscsiSession
{
    public required int Sid { get; init; }
    public required string Target { get; init; }
    public Portal? CurrentPortal { get; init; }
    public Portal? PersistentPortal { get; init; }
    /// <summary>open-iscsi iface record name ("default" unless an iface was bound).</summary>
    public string Iface { get; init; } = IscsiadmConstants.DefaultIface;
    public string? InitiatorName { get; init; }
    /// <summary>iscsid's connection state, e.g. "LOGGED IN", "TRANSPORT WAIT", "FREE".</summary>
    public string? ConnectionState { get; init; }
    /// <summary>The kernel's session state (sysfs): "LOGGED_IN", "FAILED", "FREE".</summary>
    public string? SessionState { get; init; }
    public int? HostNumber { get; init; }
    public IReadOnlyList<ScsiLun> Luns { get; init; } = [];

    public bool IsLoggedIn => string.Equals(SessionState, "LOGGED_IN", StringComparison.Ordinal);
}

/// <summary>A SCSI logical unit of a session and the disk the kernel attached to it.</summary>
public sealed record ScsiLun(int Host, int Channel, int Id, int Lun, string? Disk, string? State);

public static class IscsiadmConstants
{
    public const string DefaultIface = "default";
}
