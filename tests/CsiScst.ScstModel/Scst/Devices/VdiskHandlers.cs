using System.Collections.Immutable;
using System.Collections.Frozen;

namespace CsiScst.ScstModel.Scst.Devices;

/// <summary>
/// The handlers of scst_vdisk and the add_device parameters each accepts (interfaces.md A.4,
/// scst_vdisk.c *_add_dev_params).
/// </summary>
internal static class VdiskHandlers
{
    private static readonly ImmutableArray<string> Common =
    [
        "blocksize", "read_only", "rotational", "removable", "tst", "t10_dev_id",
        "cluster_mode", "numa_node_id", "dif_mode", "dif_type", "dif_static_app_tag",
    ];

    private static readonly ImmutableArray<string> FileBacked =
    [
        "filename", "write_through", "nv_cache", "thin_provisioned", "active", "bind_alua_state", "dif_filename",
    ];

    private static readonly ImmutableArray<string> FileIoOnly = ["o_direct", "async"];

    private static readonly ImmutableArray<string> NullIoOnly = ["size", "size_mb", "dummy"];

    /// <summary>
    /// Every name the shared parameter parser understands. vdisk_fileio passes no list, so it takes any of
    /// these (A.4: "so it also accepts size, size_mb, dummy and lb_per_pb_exp"); a name the parser does not
    /// know still fails with EINVAL ("Unknown parameter"), as in vdev_parse_add_dev_params.
    /// </summary>
    public static FrozenSet<string> KnownParams { get; } =
        Common.Concat(FileBacked).Concat(FileIoOnly).Concat(NullIoOnly).Append("lb_per_pb_exp")
            .ToFrozenSet(StringComparer.OrdinalIgnoreCase);

    public static IReadOnlyList<ScstHandler> Create() =>
    [
        new("vdisk_blockio", HandlerKind.BlockIo, 0, Common.Concat(FileBacked).ToFrozenSet(StringComparer.OrdinalIgnoreCase), "SCST_BIO", 1),
        new("vdisk_fileio", HandlerKind.FileIo, 0, null, "SCST_FIO", 1),
        new("vdisk_nullio", HandlerKind.NullIo, 0, Common.Concat(NullIoOnly).ToFrozenSet(StringComparer.OrdinalIgnoreCase), "SCST_NUL", 1),
        new("vcdrom", HandlerKind.CdRom, 5, FrozenSet<string>.Empty, "SCST_CDR", 1),
    ];

    /// <summary>The parameter list "The following parameters available:" in the mgmt help.</summary>
    public static string ParamList(ScstHandler h)
    {
        IEnumerable<string> names = h.AllowedParams ?? Common.Concat(FileBacked).Concat(FileIoOnly);
        return string.Join(", ", names.Order(StringComparer.Ordinal));
    }

    public static string TypeText(int scsiType) => scsiType switch
    {
        0 => "0 - Direct-access device (e.g., magnetic disk)",
        5 => "5 - CD-ROM device",
        _ => $"{scsiType} - unknown",
    };
}
