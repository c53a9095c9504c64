using System.Diagnostics.CodeAnalysis;

namespace CsiScst.Core.Ids;

/// <summary>
/// The CSI node id of a node plugin: <c>&lt;node-name&gt;/&lt;initiator-iqn&gt;</c> (docs/design.md), so the
/// controller learns the initiator to let in from ControllerPublishVolume's node_id alone.
/// </summary>
public sealed record NodeId(string NodeName, string InitiatorIqn)
{
    /// <summary>The CSI spec's limit for node ids.</summary>
    public const int MaxLength = 256;

    public override string ToString() => NodeName + "/" + InitiatorIqn;

    public static bool TryParse(string? text, [NotNullWhen(true)] out NodeId? id)
    {
        id = null;
        if (string.IsNullOrEmpty(text) || text.Length > MaxLength)
        {
            return false;
        }
        var slash = text.IndexOf('/');
        if (slash <= 0 || slash != text.LastIndexOf('/'))
        {
            return false;
        }
        var name = text[..slash];
        var iqn = text[(slash + 1)..];
        if (!Names.IsValidNodeName(name) || !Names.IsValidInitiatorName(iqn))
        {
            return false;
        }
        id = new NodeId(name, iqn);
        return true;
    }
}
