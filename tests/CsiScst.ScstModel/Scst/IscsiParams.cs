namespace CsiScst.ScstModel.Scst;

internal enum IscsiParamKind
{
    Number,
    Bool,
    Digest,
}

internal sealed record IscsiParamDef(string Name, IscsiParamKind Kind, uint Default, uint Min, uint Max, bool IsSessionParam);

/// <summary>
/// The per-target iSCSI parameters iscsi-scstd shows as files (interfaces.md A.5; iscsi-scst usr/param.c
/// target_keys and session_keys with show_in_sysfs). Names match case-insensitively; Yes/No match exactly;
/// numbers go through strtol and are checked against the range; digests are a comma list of None/CRC32C.
/// </summary>
internal static class IscsiParams
{
    private const uint DigestNone = 1;
    private const uint DigestCrc32C = 2;

    /// <summary>
    /// Defaults per A.5. UNCONFIRMED: the ranges of the target keys (usr/iscsi_scst.h was not read) and the
    /// 1 MiB default of the three data lengths (iscsi-scstd sets them from the kernel's maximum data segment).
    /// </summary>
    public static IReadOnlyList<IscsiParamDef> All { get; } =
    [
        new("QueuedCommands", IscsiParamKind.Number, 32, 1, 2048, false),
        new("RspTimeout", IscsiParamKind.Number, 90, 2, 65535, false),
        new("NopInInterval", IscsiParamKind.Number, 30, 0, 65535, false),
        new("NopInTimeout", IscsiParamKind.Number, 30, 2, 65535, false),
        new("MaxSessions", IscsiParamKind.Number, 0, 0, 65535, false),
        new("InitialR2T", IscsiParamKind.Bool, 0, 0, 1, true),
        new("ImmediateData", IscsiParamKind.Bool, 1, 0, 1, true),
        new("MaxRecvDataSegmentLength", IscsiParamKind.Number, 1048576, 512, uint.MaxValue, true),
        new("MaxXmitDataSegmentLength", IscsiParamKind.Number, 1048576, 512, uint.MaxValue, true),
        new("MaxBurstLength", IscsiParamKind.Number, 1048576, 512, uint.MaxValue, true),
        new("FirstBurstLength", IscsiParamKind.Number, 65536, 512, uint.MaxValue, true),
        new("MaxOutstandingR2T", IscsiParamKind.Number, 32, 1, 65535, true),
        new("HeaderDigest", IscsiParamKind.Digest, DigestNone, DigestNone, DigestNone | DigestCrc32C, true),
        new("DataDigest", IscsiParamKind.Digest, DigestNone, DigestNone, DigestNone | DigestCrc32C, true),
    ];

    public static IscsiParamDef? Find(string name) =>
        All.FirstOrDefault(d => string.Equals(d.Name, name, StringComparison.OrdinalIgnoreCase));

    public static Dictionary<string, uint> Defaults() => All.ToDictionary(d => d.Name, d => d.Default, StringComparer.Ordinal);

    public static string Format(IscsiParamDef def, uint value) => def.Kind switch
    {
        IscsiParamKind.Bool => value == 1 ? "Yes" : "No",
        IscsiParamKind.Digest => FormatDigest(value),
        _ => value.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    /// <summary>The value a new session negotiates; with a choice of digests the initiator's usual "None" wins.</summary>
    public static string Negotiated(IscsiParamDef def, uint value) =>
        def.Kind == IscsiParamKind.Digest ? ((value & DigestNone) != 0 ? "None" : "CRC32C") : Format(def, value);

    /// <summary>params_str_to_val followed by params_check_val: 0 or EINVAL.</summary>
    public static int Parse(IscsiParamDef def, string text, out uint value)
    {
        value = 0;
        switch (def.Kind)
        {
            case IscsiParamKind.Bool:
                if (text == "Yes")
                {
                    value = 1;
                    return 0;
                }

                return text == "No" ? 0 : Errno.EINVAL;

            case IscsiParamKind.Digest:
                return ParseDigest(text, out value);

            default:
                value = KernelNumbers.StrToUInt32(text);
                return value < def.Min || value > def.Max ? Errno.EINVAL : 0;
        }
    }

    private static string FormatDigest(uint value)
    {
        var parts = new List<string>();
        if ((value & DigestNone) != 0)
        {
            parts.Add("None");
        }

        if ((value & DigestCrc32C) != 0)
        {
            parts.Add("CRC32C");
        }

        return parts.Count == 0 ? "Unknown" : string.Join(',', parts);
    }

    private static int ParseDigest(string text, out uint value)
    {
        value = 0;
        int p = 0;
        while (true)
        {
            while (p < text.Length && ScstLexer.IsSpace(text[p]))
            {
                p++;
            }

            ReadOnlySpan<char> rest = text.AsSpan(p);
            if (rest.StartsWith("None", StringComparison.OrdinalIgnoreCase))
            {
                value |= DigestNone;
            }
            else if (rest.StartsWith("CRC32C", StringComparison.OrdinalIgnoreCase))
            {
                value |= DigestCrc32C;
            }
            else
            {
                return Errno.EINVAL;
            }

            int comma = text.IndexOf(',', p);
            if (comma < 0)
            {
                break;
            }

            p = comma + 1;
        }

        if (value == 0)
        {
            value = DigestNone;
        }

        return 0;
    }
}
