using System.Security.Cryptography;
using System.Text;

namespace CsiScst.Core.Ids;

/// <summary>
/// The syntax rules for names and the derivations docs/design.md fixes (keys, serials).
/// Pure functions: the per-installation parts (instance id, IQN prefix) live in <see cref="ObjectNames"/>.
/// </summary>
public static class Names
{
    public const int KeyLength = 16;
    public const string SerialPrefix = "CS";

    public static readonly string[] Backends = ["file", "lvm", "rbd"];

    /// <summary>The 16-hex key of a CSI volume name within an instance.</summary>
    public static string VolumeKey(string instanceId, string name) => Hash(instanceId + "\n" + name);

    /// <summary>The 16-hex key of a CSI snapshot name within an instance (a different space from volume keys).</summary>
    public static string SnapshotKey(string instanceId, string name) => Hash("snapshot\n" + instanceId + "\n" + name);

    /// <summary>The SCSI unit serial (VPD 0x80) of a volume: fits SCST usn (20), t10_dev_id (25), LIO and tgt.</summary>
    public static string Serial(string key) => SerialPrefix + key;

    public static string Hash(string text)
    {
        Span<byte> digest = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes(text), digest);
        return Convert.ToHexStringLower(digest[..(KeyLength / 2)]);
    }

    public static bool IsValidKey(string value) =>
        value.Length == KeyLength && value.All(c => char.IsAsciiDigit(c) || c is >= 'a' and <= 'f');

    public static bool IsValidInstanceId(string value) =>
        value.Length is >= 1 and <= 8 && value.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c));

    public static bool IsValidBackend(string value) => Backends.Contains(value);

    public static bool IsValidPoolName(string value) =>
        value.Length is >= 1 and <= 32
        && (char.IsAsciiLetterLower(value[0]) || char.IsAsciiDigit(value[0]))
        && value.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c is '-' or '_');

    /// <summary>A DNS subdomain-like node name (Kubernetes node names), without ':' or '/'.</summary>
    public static bool IsValidNodeName(string value) =>
        value.Length is >= 1 and <= 253
        && char.IsAsciiLetterOrDigit(value[0]) && char.IsAsciiLetterOrDigit(value[^1])
        && value.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '.' or '_');

    /// <summary>An iSCSI name: iqn.yyyy-mm.reverse.domain[:anything] or eui./naa. forms; at most 223 bytes.</summary>
    public static bool IsValidInitiatorName(string value)
    {
        if (value.Length is < 4 or > 223 || !value.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or ':'))
        {
            return false;
        }
        return value.StartsWith("iqn.", StringComparison.Ordinal)
            || value.StartsWith("eui.", StringComparison.Ordinal)
            || value.StartsWith("naa.", StringComparison.Ordinal);
    }

    /// <summary>A DNS-style CSI driver name: at most 63 characters, alphanumeric at both ends, '-', '.' inside.</summary>
    public static bool IsValidDriverName(string value) =>
        value.Length is >= 1 and <= 63
        && char.IsAsciiLetterOrDigit(value[0]) && char.IsAsciiLetterOrDigit(value[^1])
        && value.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '.');
}
