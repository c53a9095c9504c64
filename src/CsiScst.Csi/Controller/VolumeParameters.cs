using System.Globalization;
using CsiScst.Core.Errors;
using CsiScst.Core.Ids;
using CsiScst.Csi.Validation;
using CsiScst.Engine.V1;
using Google.Protobuf.Collections;
using CsiScst.Csi;

namespace CsiScst.Csi.Controller;

public enum ChapMode
{
    None,
    Static,
    Generated,
}

/// <summary>
/// StorageClass parameters of CreateVolume (and GetCapacity), checked up front with messages that name
/// the key. Keys the external-provisioner adds (<c>csi.storage.k8s.io/…</c>) are not ours and are skipped,
/// except the PV/PVC names it passes with --extra-create-metadata. Keys starting with a backend name
/// (<c>file…</c>, <c>lvm…</c>, <c>rbd…</c>, e.g. <c>rbdFeatures</c>) go to the engine, which checks them;
/// anything else unknown is refused, so a typo never silently does nothing.
/// </summary>
public sealed record VolumeParameters
{
    public const string PoolKey = "pool";
    public const string TargetNodeKey = "targetNode";
    public const string FsTypeKey = "fsType";
    public const string BlockSizeKey = "blockSize";
    public const string WriteCacheKey = "writeCache";
    public const string ThinProvisionedKey = "thinProvisioned";
    public const string ChapKey = "chap";
    public const string ReplacementTimeoutKey = "replacementTimeout";
    public const string LoginTimeoutKey = "loginTimeout";
    public const string NoopOutIntervalKey = "noopOutInterval";
    public const string NoopOutTimeoutKey = "noopOutTimeout";
    public const string LoginRetriesKey = "loginRetries";

    public const string ProvisionerPrefix = "csi.storage.k8s.io/";
    public const string PvNameKey = "csi.storage.k8s.io/pv/name";
    public const string PvcNameKey = "csi.storage.k8s.io/pvc/name";
    public const string PvcNamespaceKey = "csi.storage.k8s.io/pvc/namespace";

    public static readonly string[] KnownKeys =
    [
        PoolKey, TargetNodeKey, FsTypeKey, BlockSizeKey, WriteCacheKey, ThinProvisionedKey, ChapKey,
        ReplacementTimeoutKey, LoginTimeoutKey, NoopOutIntervalKey, NoopOutTimeoutKey, LoginRetriesKey,
    ];

    private static readonly (string Key, string ContextKey, int Min, int Max)[] NodeTimeouts =
    [
        (ReplacementTimeoutKey, VolumeContextKeys.ReplacementTimeout, 0, 86400),
        (LoginTimeoutKey, VolumeContextKeys.LoginTimeout, 1, 3600),
        (NoopOutIntervalKey, VolumeContextKeys.NoopOutInterval, 0, 3600),
        (NoopOutTimeoutKey, VolumeContextKeys.NoopOutTimeout, 0, 3600),
        (LoginRetriesKey, VolumeContextKeys.LoginRetries, 0, 100),
    ];

    public string? Pool { get; init; }
    public string? TargetNode { get; init; }
    public string? FsType { get; init; }
    public uint BlockSize { get; init; }
    public WriteCache WriteCache { get; init; } = WriteCache.WriteThrough;
    public bool ThinProvisioned { get; init; }
    public ChapMode Chap { get; init; } = ChapMode.None;
    public IReadOnlyDictionary<string, string> BackendParameters { get; init; } = new Dictionary<string, string>();
    /// <summary>Node-side settings that travel in volume_context.</summary>
    public IReadOnlyDictionary<string, string> NodeContext { get; init; } = new Dictionary<string, string>();
    public string? PvName { get; init; }

    public static VolumeParameters Parse(MapField<string, string> parameters)
    {
        var unknown = new List<string>();
        var backend = new Dictionary<string, string>(StringComparer.Ordinal);
        var nodeContext = new Dictionary<string, string>(StringComparer.Ordinal);
        string? pool = null, targetNode = null, fsType = null, pvName = null;
        uint blockSize = 0;
        var writeCache = WriteCache.WriteThrough;
        var thin = false;
        var chap = ChapMode.None;

        foreach (var (key, value) in parameters)
        {
            if (key.StartsWith(ProvisionerPrefix, StringComparison.Ordinal))
            {
                if (key == PvNameKey && value.Length > 0)
                {
                    pvName = value;
                }
                continue;
            }
            switch (key)
            {
                case PoolKey:
                    pool = value;
                    if (!Names.IsValidPoolName(value))
                    {
                        throw Bad(key, value, "a pool name: 1-32 characters of [a-z0-9_-], starting with a letter or digit");
                    }
                    break;
                case TargetNodeKey:
                    targetNode = value;
                    if (!Names.IsValidNodeName(value))
                    {
                        throw Bad(key, value, "a storage node id (DNS name)");
                    }
                    break;
                case FsTypeKey:
                    fsType = value.ToLowerInvariant();
                    if (!CsiValidation.SupportedFsTypes.Contains(fsType))
                    {
                        throw Bad(key, value, string.Join(" or ", CsiValidation.SupportedFsTypes));
                    }
                    break;
                case BlockSizeKey:
                    blockSize = value switch
                    {
                        "512" => 512,
                        "4096" => 4096,
                        _ => throw Bad(key, value, "512 or 4096"),
                    };
                    break;
                case WriteCacheKey:
                    writeCache = value.ToLowerInvariant() switch
                    {
                        "writethrough" => WriteCache.WriteThrough,
                        "writeback" => WriteCache.WriteBack,
                        _ => throw Bad(key, value, "writethrough (safe default) or writeback"),
                    };
                    break;
                case ThinProvisionedKey:
                    thin = value.ToLowerInvariant() switch
                    {
                        "true" => true,
                        "false" => false,
                        _ => throw Bad(key, value, "true or false"),
                    };
                    break;
                case ChapKey:
                    chap = value.ToLowerInvariant() switch
                    {
                        "none" => ChapMode.None,
                        "static" => ChapMode.Static,
                        "generated" => ChapMode.Generated,
                        _ => throw Bad(key, value, "none, static or generated"),
                    };
                    break;
                default:
                    var timeout = NodeTimeouts.FirstOrDefault(t => t.Key == key);
                    if (timeout.Key is not null)
                    {
                        if (!int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds) || seconds < timeout.Min || seconds > timeout.Max)
                        {
                            throw Bad(key, value, $"a whole number of seconds from {timeout.Min} to {timeout.Max}");
                        }
                        nodeContext[timeout.ContextKey] = seconds.ToString(CultureInfo.InvariantCulture);
                    }
                    else if (BackendOf(key) is not null)
                    {
                        backend[key] = value;
                    }
                    else
                    {
                        unknown.Add(key);
                    }
                    break;
            }
        }
        if (unknown.Count > 0)
        {
            throw StatusException.InvalidArgument(
                $"unknown StorageClass parameter(s) {string.Join(", ", unknown.Order(StringComparer.Ordinal).Select(k => $"'{k}'"))}; known: {string.Join(", ", KnownKeys)}; backend-specific parameters start with file, lvm or rbd (e.g. rbdFeatures)");
        }
        return new VolumeParameters
        {
            Pool = pool,
            TargetNode = targetNode,
            FsType = fsType,
            BlockSize = blockSize,
            WriteCache = writeCache,
            ThinProvisioned = thin,
            Chap = chap,
            BackendParameters = backend,
            NodeContext = nodeContext,
            PvName = pvName,
        };
    }

    /// <summary>The backend a backend-specific key belongs to ("rbdFeatures" → "rbd"), or null.</summary>
    public static string? BackendOf(string key)
    {
        foreach (var backend in Names.Backends)
        {
            if (key.Length > backend.Length && key.StartsWith(backend, StringComparison.Ordinal) && char.IsAsciiLetterUpper(key[backend.Length])
                && key.All(char.IsAsciiLetterOrDigit))
            {
                return backend;
            }
        }
        return null;
    }

    /// <summary>Backend-specific keys must match the pool's backend; a mismatch is a StorageClass mistake.</summary>
    public void CheckBackend(string backend, string pool)
    {
        var wrong = BackendParameters.Keys.Where(k => BackendOf(k) != backend).Order(StringComparer.Ordinal).ToArray();
        if (wrong.Length > 0)
        {
            throw StatusException.InvalidArgument(
                $"parameter(s) {string.Join(", ", wrong.Select(k => $"'{k}'"))} apply to another backend; pool '{pool}' is a {backend} pool");
        }
    }

    private static StatusException Bad(string key, string value, string expected) =>
        StatusException.InvalidArgument($"StorageClass parameter {key}='{value}' is invalid: expected {expected}");
}
