using System.Buffers.Text;
using System.Text;
using CsiScst.Core.Errors;
using CsiScst.Core.Ids;

namespace CsiScst.Csi.Controller;

/// <summary>
/// Paging across engines: a token names the storage node to continue on and that engine's own token.
/// Engines are walked in node-id order, so a token whose engine has gone continues at the next one.
/// </summary>
public sealed record ListToken(string NodeId, string EngineToken)
{
    private const string Version = "t1";

    public string Encode() => Base64Url.EncodeToString(Encoding.UTF8.GetBytes($"{Version}\n{NodeId}\n{EngineToken}"));

    /// <summary>The token, null for an empty one; ABORTED (as the spec asks) when it is not one of ours.</summary>
    public static ListToken? Decode(string text)
    {
        if (string.IsNullOrEmpty(text))
        {
            return null;
        }
        try
        {
            var parts = Encoding.UTF8.GetString(Base64Url.DecodeFromChars(text)).Split('\n', 3);
            if (parts.Length == 3 && parts[0] == Version && Names.IsValidNodeName(parts[1]))
            {
                return new ListToken(parts[1], parts[2]);
            }
        }
        catch (FormatException)
        {
        }
        throw StatusException.Aborted($"starting_token '{(text.Length > 64 ? text[..64] + "…" : text)}' is not a token this plugin returned; list again from the start");
    }
}
