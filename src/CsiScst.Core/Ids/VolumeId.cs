using System.Diagnostics.CodeAnalysis;

namespace CsiScst.Core.Ids;

/// <summary>
/// The self-describing volume id: <c>v1:&lt;instance&gt;:&lt;target-node&gt;:&lt;backend&gt;:&lt;pool&gt;:&lt;key&gt;</c>
/// (docs/design.md). Everything Delete, Publish and Expand need is in it; no lookup table exists.
/// </summary>
public sealed record VolumeId(string Instance, string TargetNode, string Backend, string Pool, string Key)
{
    public const string Version = "v1";
    public const int MaxLength = 128;

    public override string ToString() => string.Join(':', Version, Instance, TargetNode, Backend, Pool, Key);

    public static bool TryParse(string? text, [NotNullWhen(true)] out VolumeId? id)
    {
        id = null;
        if (string.IsNullOrEmpty(text) || text.Length > MaxLength)
        {
            return false;
        }
        var parts = text.Split(':');
        if (parts.Length != 6 || parts[0] != Version || !Names.IsValidInstanceId(parts[1]) || !Names.IsValidNodeName(parts[2])
            || !Names.IsValidBackend(parts[3]) || !Names.IsValidPoolName(parts[4]) || !Names.IsValidKey(parts[5]))
        {
            return false;
        }
        id = new VolumeId(parts[1], parts[2], parts[3], parts[4], parts[5]);
        return true;
    }
}

/// <summary>
/// <c>s1:&lt;instance&gt;:&lt;target-node&gt;:&lt;backend&gt;:&lt;pool&gt;:&lt;volume-key&gt;:&lt;snapshot-key&gt;</c>
/// </summary>
public sealed record SnapshotId(string Instance, string TargetNode, string Backend, string Pool, string VolumeKey, string SnapshotKey)
{
    public const string Version = "s1";

    public VolumeId SourceVolume => new(Instance, TargetNode, Backend, Pool, VolumeKey);

    public override string ToString() => string.Join(':', Version, Instance, TargetNode, Backend, Pool, VolumeKey, SnapshotKey);

    public static bool TryParse(string? text, [NotNullWhen(true)] out SnapshotId? id)
    {
        id = null;
        if (string.IsNullOrEmpty(text) || text.Length > VolumeId.MaxLength)
        {
            return false;
        }
        var parts = text.Split(':');
        if (parts.Length != 7 || parts[0] != Version || !Names.IsValidInstanceId(parts[1]) || !Names.IsValidNodeName(parts[2])
            || !Names.IsValidBackend(parts[3]) || !Names.IsValidPoolName(parts[4]) || !Names.IsValidKey(parts[5]) || !Names.IsValidKey(parts[6]))
        {
            return false;
        }
        id = new SnapshotId(parts[1], parts[2], parts[3], parts[4], parts[5], parts[6]);
        return true;
    }
}
