namespace CsiScst.Targets.Tgt;

/// <summary>One target as <c>tgtadm --mode target --op show</c> prints it.</summary>
internal sealed class TgtTarget
{
    public required int Tid { get; init; }
    public required string Name { get; init; }
    public string State { get; set; } = "";
    public List<TgtNexus> Nexuses { get; } = [];
    public List<TgtLun> Luns { get; } = [];
    public List<TgtBoundAccount> Accounts { get; } = [];
    /// <summary>Initiator names and initiator addresses (ALL, IP, CIDR) in one list, as tgt prints them.</summary>
    public List<string> Acls { get; } = [];

    public TgtLun? Lun(int lun) => Luns.Find(l => l.Number == lun);
}

/// <summary>An I_T nexus: tgt's session (its id is the session id <c>--sid</c>).</summary>
internal sealed record TgtNexus(long Sid, string Initiator, IReadOnlyList<TgtConnection> Connections);

internal sealed record TgtConnection(int Cid, string? Address);

internal sealed record TgtBoundAccount(string User, bool Outgoing);

internal sealed class TgtLun
{
    public required int Number { get; init; }
    public string Type { get; set; } = "";
    public string SerialNumber { get; set; } = "";
    /// <summary>tgt prints sizes in decimal megabytes only.</summary>
    public long SizeMegabytes { get; set; }
    public int BlockSize { get; set; }
    public bool Online { get; set; }
    public bool ReadOnly { get; set; }
    public bool ThinProvisioning { get; set; }
    public string BackingStoreType { get; set; } = "";
    public string? BackingStorePath { get; set; }
    public string BackingStoreFlags { get; set; } = "";
}
