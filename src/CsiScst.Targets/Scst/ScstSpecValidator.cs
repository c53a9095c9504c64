using System.Net;
using CsiScst.Core.Errors;
using CsiScst.Core.Ids;

namespace CsiScst.Targets.Scst;

/// <summary>
/// Checks an ExportSpec against what SCST's sysfs lexer and iscsi-scstd accept (interfaces.md A.3–A.5)
/// before anything is written, so a bad value fails with a message naming it instead of a bare EINVAL.
/// </summary>
internal static class ScstSpecValidator
{
    public const int MaxDeviceName = 64;
    public const int MaxUsn = 20;
    public const int MaxT10DevId = 25;
    public const int MinChapSecret = 12;
    // iscsi-scstd and open-iscsi keep CHAP secrets in 256-byte buffers (with the terminating NUL).
    public const int MaxChapSecret = 255;
    public const int MaxChapUser = 255;

    /// <summary>What one export resolves to: validated values ready to be written.</summary>
    internal sealed record Resolved(
        IReadOnlyList<(string Group, string Initiator, bool ReadOnly)> Access,
        IReadOnlyList<string> PortalPatterns);

    public static Resolved Validate(ExportSpec spec)
    {
        if (!Names.IsValidKey(spec.Key))
        {
            throw StatusException.InvalidArgument($"export key '{spec.Key}' must be {Names.KeyLength} lowercase hex digits");
        }
        if (spec.TargetIqn.Length > 223 || !Names.IsValidInitiatorName(spec.TargetIqn))
        {
            throw StatusException.InvalidArgument($"target IQN '{spec.TargetIqn}' is not a valid iSCSI name (iqn./eui./naa., letters, digits, '.', '-', ':', at most 223 bytes)");
        }
        if (spec.DeviceName.Length is 0 or > MaxDeviceName || !spec.DeviceName.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.'))
        {
            throw StatusException.InvalidArgument($"SCST device name '{spec.DeviceName}' must be 1-{MaxDeviceName} characters of [A-Za-z0-9_.-]");
        }
        if (!spec.BackingPath.StartsWith('/') || !IsLexerSafe(spec.BackingPath) || spec.BackingPath.Contains('#', StringComparison.Ordinal))
        {
            throw StatusException.InvalidArgument(
                $"backing path '{spec.BackingPath}' must be absolute and free of blanks, '=', ';', '#' and quotes (SCST's sysfs lexer and scst.conf cannot carry them)");
        }
        if (spec.Serial.Length is 0 or > MaxUsn || !spec.Serial.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.'))
        {
            throw StatusException.InvalidArgument($"serial '{spec.Serial}' must be 1-{MaxUsn} characters of [A-Za-z0-9_.-] (SCST usn limit)");
        }
        if (spec.BlockSize is < 512 or > 4096 || (spec.BlockSize & (spec.BlockSize - 1)) != 0)
        {
            throw StatusException.InvalidArgument($"block size {spec.BlockSize} must be 512, 1024, 2048 or 4096");
        }

        var access = new Dictionary<string, (string Group, string Initiator, bool ReadOnly)>(StringComparer.Ordinal);
        foreach (var initiator in spec.Initiators)
        {
            if (!Names.IsValidInitiatorName(initiator.InitiatorIqn))
            {
                throw StatusException.InvalidArgument($"initiator name '{initiator.InitiatorIqn}' is not a valid iSCSI name");
            }
            if (access.TryGetValue(initiator.InitiatorIqn, out var existing) && existing.ReadOnly != initiator.ReadOnly)
            {
                throw StatusException.InvalidArgument($"initiator '{initiator.InitiatorIqn}' is listed both read-only and read-write");
            }
            access[initiator.InitiatorIqn] = (ObjectNames.InitiatorGroup(initiator.InitiatorIqn), initiator.InitiatorIqn, initiator.ReadOnly);
        }

        if (spec.Chap is { } chap)
        {
            ValidateChapUser(chap.User, "CHAP user");
            ValidateChapSecret(chap.Secret, "CHAP secret");
            if (string.IsNullOrEmpty(chap.MutualUser) != string.IsNullOrEmpty(chap.MutualSecret))
            {
                throw StatusException.InvalidArgument("mutual CHAP needs both a user and a secret");
            }
            if (chap.Mutual)
            {
                ValidateChapUser(chap.MutualUser!, "mutual CHAP user");
                ValidateChapSecret(chap.MutualSecret!, "mutual CHAP secret");
                if (string.Equals(chap.Secret, chap.MutualSecret, StringComparison.Ordinal))
                {
                    // RFC 7143 11.1.4: the two directions must not share a secret.
                    throw StatusException.InvalidArgument($"the mutual CHAP secret of user '{chap.MutualUser}' must differ from the incoming secret of user '{chap.User}'");
                }
            }
        }

        var portals = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var portal in spec.Portals)
        {
            var pattern = PortalPattern(portal);
            if (pattern is null)
            {
                // A wildcard portal means every address: no restriction at all.
                portals.Clear();
                break;
            }
            portals.Add(pattern);
        }

        return new Resolved(access.Values.OrderBy(a => a.Group, StringComparer.Ordinal).ToList(), portals.ToList());
    }

    /// <summary>The allowed_portal pattern for "ip:port" / "[v6]:port" / "ip"; null for a wildcard address.</summary>
    internal static string? PortalPattern(string portal)
    {
        IPAddress? address = null;
        if (IPEndPoint.TryParse(portal, out var endpoint))
        {
            address = endpoint.Address;
        }
        else if (IPAddress.TryParse(portal.Trim('[', ']'), out var plain))
        {
            address = plain;
        }
        if (address is null)
        {
            throw StatusException.InvalidArgument($"portal '{portal}' must be ip:port, [ipv6]:port or an IP address");
        }
        if (address.Equals(IPAddress.Any) || address.Equals(IPAddress.IPv6Any))
        {
            return null;
        }
        // iscsi-scstd matches the portal address text without brackets or port.
        return address.ToString();
    }

    private static void ValidateChapUser(string user, string what)
    {
        if (user.Length is 0 or > MaxChapUser || !IsChapSafe(user))
        {
            throw StatusException.InvalidArgument(
                $"{what} '{(IsChapSafe(user) ? user : "(invalid characters)")}' must be 1-{MaxChapUser} printable characters without blanks, '=', ';', '#', quotes or backslashes");
        }
    }

    private static void ValidateChapSecret(string secret, string what)
    {
        if (secret.Length < MinChapSecret || secret.Length > MaxChapSecret)
        {
            throw StatusException.InvalidArgument($"{what} must be {MinChapSecret}-{MaxChapSecret} characters long (it is {secret.Length}); iscsi-scstd refuses shorter ones");
        }
        if (!IsChapSafe(secret))
        {
            // Never echo the secret itself.
            throw StatusException.InvalidArgument($"{what} contains a character SCST cannot carry: use printable ASCII without blanks, '=', ';', '#', quotes or backslashes");
        }
    }

    /// <summary>Printable ASCII that survives SCST's lexer (splits on blanks and '='), its ';' list syntax and scst.conf (# comments, quotes).</summary>
    internal static bool IsChapSafe(string value) =>
        value.All(c => c is > ' ' and < (char)127 && c is not ('=' or ';' or '#' or '"' or '\'' or '\\'));

    private static bool IsLexerSafe(string value) =>
        value.All(c => c is > ' ' and < (char)127 && c is not ('=' or ';' or '"' or '\'' or '\\'));
}
