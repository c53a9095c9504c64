using System.Text;
using Csi.V1;
using CsiScst.Core.Errors;
using Google.Protobuf.Collections;
using static Csi.V1.VolumeCapability.Types.AccessMode.Types;

namespace CsiScst.Csi.Validation;

/// <summary>
/// Request checks the CSI spec (v1.12) asks of every RPC, shared by the Controller and Node services.
/// Each failure is INVALID_ARGUMENT (unless the spec names another code) with a message naming the field.
/// </summary>
public static class CsiValidation
{
    /// <summary>The spec's default limit for strings such as ids and names.</summary>
    public const int MaxStringBytes = 128;
    /// <summary>The spec's limit for node ids.</summary>
    public const int MaxNodeIdBytes = 256;
    /// <summary>The spec's limit for a whole map (parameters, contexts, secrets).</summary>
    public const int MaxMapBytes = 4096;
    /// <summary>Paths are exempt from the 128-byte limit; we accept what Linux accepts.</summary>
    public const int MaxPathBytes = 4096;
    public const int MaxMountFlagsBytes = 4096;

    public static readonly string[] SupportedFsTypes = ["ext4", "xfs"];

    public static void RequireId(string value, string field, int maxBytes = MaxStringBytes)
    {
        if (string.IsNullOrEmpty(value))
        {
            throw StatusException.InvalidArgument($"{field} is required");
        }
        var bytes = Encoding.UTF8.GetByteCount(value);
        if (bytes > maxBytes)
        {
            throw StatusException.InvalidArgument($"{field} is {bytes} bytes long; the limit is {maxBytes}");
        }
    }

    /// <summary>CreateVolume/CreateSnapshot names: required, at most 128 bytes, none of the spec's banned control characters.</summary>
    public static void RequireName(string value, string field)
    {
        RequireId(value, field);
        foreach (var c in value)
        {
            if (c is (>= '\u0000' and <= '\u0008') or '\u000B' or '\u000C' or (>= '\u000E' and <= '\u001F') or (>= '\u007F' and <= '\u009F'))
            {
                throw StatusException.InvalidArgument($"{field} contains the control character U+{(int)c:X4}, which the CSI spec forbids in names");
            }
        }
    }

    public static void RequirePath(string value, string field)
    {
        if (string.IsNullOrEmpty(value))
        {
            throw StatusException.InvalidArgument($"{field} is required");
        }
        if (!value.StartsWith('/'))
        {
            throw StatusException.InvalidArgument($"{field} '{value}' must be an absolute path");
        }
        if (Encoding.UTF8.GetByteCount(value) > MaxPathBytes)
        {
            throw StatusException.InvalidArgument($"{field} is longer than {MaxPathBytes} bytes");
        }
        if (value.Contains('\0') || value.Split('/').Any(segment => segment == ".."))
        {
            throw StatusException.InvalidArgument($"{field} '{value}' must not contain '..' segments or NUL bytes");
        }
    }

    public static void CheckMap(MapField<string, string> map, string field, bool secret = false)
    {
        var total = 0;
        foreach (var (key, value) in map)
        {
            if (string.IsNullOrEmpty(key))
            {
                throw StatusException.InvalidArgument($"{field} has an empty key");
            }
            total += Encoding.UTF8.GetByteCount(key) + Encoding.UTF8.GetByteCount(value);
        }
        if (total > MaxMapBytes)
        {
            // Never echo secret content; the size alone is enough.
            throw StatusException.InvalidArgument($"{field} is {total} bytes in total; the limit is {MaxMapBytes}" + (secret ? "" : ""));
        }
    }

    /// <summary>A non-empty list of capabilities, each valid (see <see cref="CheckCapability"/>).</summary>
    public static void RequireCapabilities(RepeatedField<VolumeCapability> capabilities, string field = "volume_capabilities")
    {
        if (capabilities.Count == 0)
        {
            throw StatusException.InvalidArgument($"{field} is required and must not be empty");
        }
        for (var i = 0; i < capabilities.Count; i++)
        {
            CheckCapability(capabilities[i], $"{field}[{i}]");
        }
    }

    public static void RequireCapability(VolumeCapability? capability, string field = "volume_capability")
    {
        if (capability is null)
        {
            throw StatusException.InvalidArgument($"{field} is required");
        }
        CheckCapability(capability, field);
    }

    /// <summary>
    /// Access type and mode present and known; ext4/xfs only; MULTI_NODE_MULTI_WRITER only for block
    /// volumes (a filesystem mounted read-write on two nodes at once is corrupted).
    /// </summary>
    public static void CheckCapability(VolumeCapability capability, string field)
    {
        if (capability.AccessTypeCase == VolumeCapability.AccessTypeOneofCase.None)
        {
            throw StatusException.InvalidArgument($"{field}.access_type is required: set block or mount");
        }
        var mode = capability.AccessMode?.Mode ?? Mode.Unknown;
        if (mode == Mode.Unknown || !Enum.IsDefined(mode))
        {
            throw StatusException.InvalidArgument($"{field}.access_mode is required and must be a known mode (got {(int)mode})");
        }
        if (capability.AccessTypeCase == VolumeCapability.AccessTypeOneofCase.Mount)
        {
            var mount = capability.Mount;
            if (mount.FsType.Length > 0 && !SupportedFsTypes.Contains(mount.FsType))
            {
                throw StatusException.InvalidArgument(
                    $"{field}.mount.fs_type '{mount.FsType}' is not supported; use one of {string.Join(", ", SupportedFsTypes)}");
            }
            var flagBytes = mount.MountFlags.Sum(f => Encoding.UTF8.GetByteCount(f));
            if (flagBytes > MaxMountFlagsBytes)
            {
                throw StatusException.InvalidArgument($"{field}.mount.mount_flags total {flagBytes} bytes; the limit is {MaxMountFlagsBytes}");
            }
            if (mount.MountFlags.Any(f => f.Contains(',') && f.Split(',').Any(string.IsNullOrWhiteSpace)))
            {
                throw StatusException.InvalidArgument($"{field}.mount.mount_flags has an empty option");
            }
            if (mode == Mode.MultiNodeMultiWriter)
            {
                throw StatusException.InvalidArgument(
                    $"{field}: MULTI_NODE_MULTI_WRITER is only supported for block volumes; a filesystem (ext4/xfs) mounted read-write on several nodes at once gets corrupted. Use volumeMode: Block (e.g. for KubeVirt live migration) or a single-node access mode");
            }
            if (mount.VolumeMountGroup.Length > 0 && !uint.TryParse(mount.VolumeMountGroup, out _))
            {
                throw StatusException.InvalidArgument($"{field}.mount.volume_mount_group '{mount.VolumeMountGroup}' must be a numeric group id");
            }
        }
    }

    public static bool IsSingleNode(Mode mode) =>
        mode is Mode.SingleNodeWriter or Mode.SingleNodeReaderOnly or Mode.SingleNodeSingleWriter or Mode.SingleNodeMultiWriter;

    public static bool IsReadOnlyMode(Mode mode) =>
        mode is Mode.SingleNodeReaderOnly or Mode.MultiNodeReaderOnly;

    /// <summary>Negative values are invalid; a limit below the requirement can never be met.</summary>
    public static void CheckCapacityRange(CapacityRange? range, string field = "capacity_range")
    {
        if (range is null)
        {
            return;
        }
        if (range.RequiredBytes < 0)
        {
            throw StatusException.InvalidArgument($"{field}.required_bytes must not be negative (got {range.RequiredBytes})");
        }
        if (range.LimitBytes < 0)
        {
            throw StatusException.InvalidArgument($"{field}.limit_bytes must not be negative (got {range.LimitBytes})");
        }
        if (range.LimitBytes > 0 && range.RequiredBytes > range.LimitBytes)
        {
            throw StatusException.OutOfRange(
                $"{field}.required_bytes {range.RequiredBytes} is larger than limit_bytes {range.LimitBytes}; no size satisfies both");
        }
    }

    public static void CheckMaxEntries(int maxEntries)
    {
        if (maxEntries < 0)
        {
            throw StatusException.InvalidArgument($"max_entries must not be negative (got {maxEntries})");
        }
    }

    public static void CheckContentSource(VolumeContentSource? source)
    {
        if (source is null)
        {
            return;
        }
        switch (source.TypeCase)
        {
            case VolumeContentSource.TypeOneofCase.Snapshot:
                RequireId(source.Snapshot.SnapshotId, "volume_content_source.snapshot.snapshot_id");
                break;
            case VolumeContentSource.TypeOneofCase.Volume:
                RequireId(source.Volume.VolumeId, "volume_content_source.volume.volume_id");
                break;
            default:
                throw StatusException.InvalidArgument("volume_content_source must name a snapshot or a volume");
        }
    }
}
