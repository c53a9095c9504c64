namespace CsiScst.Core.Ids;

/// <summary>
/// Names of every object csi-scst creates on a storage node, all carrying the instance id so that two
/// installations sharing a node, VG or pool never touch each other's objects (docs/design.md).
/// </summary>
public sealed class ObjectNames
{
    public const string DefaultIqnPrefix = "iqn.2026-11.io.csi-scst";
    public const string DefaultInstanceId = "csi";

    public ObjectNames(string instanceId, string iqnPrefix = DefaultIqnPrefix)
    {
        if (!Names.IsValidInstanceId(instanceId))
        {
            throw new ArgumentException($"instance id '{instanceId}' must be 1-8 characters of [a-z0-9]", nameof(instanceId));
        }
        if (!Names.IsValidInitiatorName(iqnPrefix) || iqnPrefix.Contains(':', StringComparison.Ordinal))
        {
            throw new ArgumentException($"IQN prefix '{iqnPrefix}' must look like iqn.yyyy-mm.reverse.domain (no ':')", nameof(iqnPrefix));
        }
        InstanceId = instanceId;
        IqnPrefix = iqnPrefix;
    }

    public string InstanceId { get; }
    public string IqnPrefix { get; }

    public string VolumeKey(string name) => Names.VolumeKey(InstanceId, name);
    public string SnapshotKey(string name) => Names.SnapshotKey(InstanceId, name);

    /// <summary>Every target IQN of this instance starts with this.</summary>
    public string TargetIqnPrefix => $"{IqnPrefix}:{InstanceId}.";
    public string TargetIqn(string key) => TargetIqnPrefix + key;

    /// <summary>The key of one of our target IQNs, or null when the IQN is not ours.</summary>
    public string? KeyFromTargetIqn(string iqn) => FromPrefixed(iqn, TargetIqnPrefix);

    /// <summary>SCST device / LIO backstore name (SCST allows 64 characters).</summary>
    public string DevicePrefix => $"csi_{InstanceId}_";
    public string DeviceName(string key) => DevicePrefix + key;
    public string? KeyFromDeviceName(string name) => FromPrefixed(name, DevicePrefix);

    /// <summary>LV / RBD image / file base name.</summary>
    public string VolumePrefix => $"csi-{InstanceId}-";
    public string VolumeName(string key) => VolumePrefix + key;
    public string? KeyFromVolumeName(string name) => FromPrefixed(name, VolumePrefix);
    public string SnapshotName(string volumeKey, string snapshotKey) => $"{VolumeName(volumeKey)}-snap-{snapshotKey}";

    /// <summary>tgt's CHAP accounts are global: one pair per volume.</summary>
    public string TgtIncomingAccount(string key) => $"{VolumeName(key)}-in";
    public string TgtOutgoingAccount(string key) => $"{VolumeName(key)}-out";

    /// <summary>LVM tags marking ownership.</summary>
    public string LvmInstanceTag => $"csi-scst_instance_{InstanceId}";
    public const string LvmVolumeTag = "csi-scst_volume";
    public const string LvmSnapshotTag = "csi-scst_snapshot";

    /// <summary>SCST ini group for one initiator (group names must be short and safe for the sysfs lexer).</summary>
    public static string InitiatorGroup(string initiatorIqn) => "ini_" + Names.Hash("ini\n" + initiatorIqn);

    public static string Serial(string key) => Names.Serial(key);

    private static string? FromPrefixed(string value, string prefix)
    {
        if (!value.StartsWith(prefix, StringComparison.Ordinal))
        {
            return null;
        }
        var key = value[prefix.Length..];
        return Names.IsValidKey(key) ? key : null;
    }
}
