using System.Buffers.Text;
using System.Text;
using CsiScst.Core.Errors;
using CsiScst.Core.Ids;

namespace CsiScst.Engine.Volumes;

/// <summary>
/// Opaque paging tokens: the key to continue after, versioned and base64url-encoded. Keys are stable, so
/// a page boundary survives volumes being added or removed between calls (no offset drift).
/// </summary>
public static class PageToken
{
    private const string Prefix = "p1:";

    public static string Encode(string afterKey) => Base64Url.EncodeToString(Encoding.UTF8.GetBytes(Prefix + afterKey));

    /// <summary>The key to continue after, null for the first page; ABORTED (as the CSI spec asks) for a token we did not issue.</summary>
    public static string? Decode(string token)
    {
        if (string.IsNullOrEmpty(token))
        {
            return null;
        }
        string text;
        try
        {
            text = Encoding.UTF8.GetString(Base64Url.DecodeFromChars(token));
        }
        catch (FormatException)
        {
            throw Invalid(token);
        }
        if (!text.StartsWith(Prefix, StringComparison.Ordinal) || !Names.IsValidKey(text[Prefix.Length..]))
        {
            throw Invalid(token);
        }
        return text[Prefix.Length..];
    }

    private static StatusException Invalid(string token) =>
        StatusException.Aborted($"starting_token '{(token.Length > 64 ? token[..64] + "…" : token)}' is not a token this engine issued; start again without one");
}
