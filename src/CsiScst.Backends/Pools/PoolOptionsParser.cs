using System.Globalization;
using CsiScst.Core.Errors;
using CsiScst.Core.Ids;

namespace CsiScst.Backends.Pools;

/// <summary>
/// Reads a pool from <c>key=value,key=value</c> text (the <c>--pool</c> flag) or from a key/value map (a JSON
/// config file). A comma-separated token without '=' continues the previous value, so
/// <c>features=layering,exclusive-lock</c> and <c>mon_host=10.0.0.1,10.0.0.2</c> read naturally.
/// Every error names the pool and the key.
/// </summary>
public static class PoolOptionsParser
{
    private static readonly string[] FileKeys = ["name", "backend", "path", "reflink", "overcommit", "create"];
    private static readonly string[] LvmKeys = ["name", "backend", "vg", "thinpool", "overcommit", "cow_percent", "thick_clones"];
    private static readonly string[] RbdKeys =
        ["name", "backend", "pool", "namespace", "user", "keyring", "conf", "mon_host", "features", "flatten", "object_size", "data_pool", "timeout"];

    /// <summary>Image features rbd create accepts, and what each one needs.</summary>
    private static readonly Dictionary<string, string?> RbdFeatures = new(StringComparer.Ordinal)
    {
        ["layering"] = null,
        ["exclusive-lock"] = null,
        ["object-map"] = "exclusive-lock",
        ["fast-diff"] = "object-map",
        ["deep-flatten"] = null,
        ["journaling"] = "exclusive-lock",
    };

    public static PoolOptions Parse(string text)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            throw Invalid("pool configuration is empty; expected e.g. name=files,backend=file,path=/var/lib/csi-scst/volumes");
        }
        var pairs = new Dictionary<string, string>(StringComparer.Ordinal);
        string? last = null;
        foreach (var token in text.Split(','))
        {
            var equals = token.IndexOf('=', StringComparison.Ordinal);
            if (equals < 0)
            {
                if (last is null)
                {
                    throw Invalid($"pool configuration '{text}': '{token}' is not key=value");
                }
                pairs[last] += "," + token.Trim();
                continue;
            }
            var key = token[..equals].Trim();
            var value = token[(equals + 1)..].Trim();
            if (key.Length == 0)
            {
                throw Invalid($"pool configuration '{text}': '{token}' has no key");
            }
            if (!pairs.TryAdd(key, value))
            {
                throw Invalid($"pool configuration '{text}': key '{key}' is given twice");
            }
            last = key;
        }
        return FromPairs(pairs);
    }

    public static PoolOptions FromPairs(IReadOnlyDictionary<string, string> pairs)
    {
        var name = pairs.GetValueOrDefault("name") ?? throw Invalid("pool configuration: key 'name' is missing");
        if (!Names.IsValidPoolName(name))
        {
            throw Invalid($"pool '{name}': key 'name' must match [a-z0-9][a-z0-9_-]{{0,31}}");
        }
        var reader = new Reader(name, pairs);
        var backend = reader.Required("backend");
        return backend switch
        {
            FilePoolOptions.Kind => ParseFile(reader),
            LvmPoolOptions.Kind => ParseLvm(reader),
            RbdPoolOptions.Kind => ParseRbd(reader),
            _ => throw Invalid($"pool '{name}': key 'backend' is '{backend}'; expected file, lvm or rbd"),
        };
    }

    private static FilePoolOptions ParseFile(Reader reader)
    {
        reader.OnlyKnown(FileKeys, FilePoolOptions.Kind);
        var path = reader.Required("path");
        if (!Path.IsPathRooted(path))
        {
            throw reader.Error("path", $"'{path}' must be an absolute path");
        }
        return new FilePoolOptions
        {
            Name = reader.Name,
            Path = path,
            Reflink = reader.Optional("reflink") switch
            {
                null or "auto" => ReflinkMode.Auto,
                "always" => ReflinkMode.Always,
                var other => throw reader.Error("reflink", $"'{other}' must be auto or always"),
            },
            Overcommit = reader.Ratio("overcommit", 1.0, minimum: 0.01),
            Create = reader.Boolean("create", true),
        };
    }

    private static LvmPoolOptions ParseLvm(Reader reader)
    {
        reader.OnlyKnown(LvmKeys, LvmPoolOptions.Kind);
        var vg = reader.Required("vg");
        if (!IsLvmName(vg))
        {
            throw reader.Error("vg", $"'{vg}' is not a valid volume group name ([A-Za-z0-9+_.-], not starting with '-')");
        }
        var thinPool = reader.Optional("thinpool");
        if (thinPool is not null && !IsLvmName(thinPool))
        {
            throw reader.Error("thinpool", $"'{thinPool}' is not a valid logical volume name");
        }
        if (thinPool is null && reader.Optional("overcommit") is not null)
        {
            throw reader.Error("overcommit", "applies to thin pools only (set thinpool=…)");
        }
        if (thinPool is not null && (reader.Optional("cow_percent") is not null || reader.Optional("thick_clones") is not null))
        {
            throw reader.Error(reader.Optional("cow_percent") is not null ? "cow_percent" : "thick_clones",
                "applies to thick pools only (thin snapshots and clones share blocks)");
        }
        var cowPercent = 100;
        if (reader.Optional("cow_percent") is { } cowText
            && (!int.TryParse(cowText, NumberStyles.None, CultureInfo.InvariantCulture, out cowPercent) || cowPercent is < 1 or > 100))
        {
            throw reader.Error("cow_percent", $"'{cowText}' must be a whole number from 1 to 100");
        }
        return new LvmPoolOptions
        {
            Name = reader.Name,
            VolumeGroup = vg,
            ThinPool = thinPool,
            Overcommit = reader.Ratio("overcommit", 1.0, minimum: 1.0),
            CowPercent = cowPercent,
            ThickClones = reader.Optional("thick_clones") switch
            {
                null or "copy" => true,
                "refuse" => false,
                var other => throw reader.Error("thick_clones", $"'{other}' must be copy or refuse"),
            },
        };
    }

    private static RbdPoolOptions ParseRbd(Reader reader)
    {
        reader.OnlyKnown(RbdKeys, RbdPoolOptions.Kind);
        var pool = reader.Required("pool");
        if (!IsCephName(pool))
        {
            throw reader.Error("pool", $"'{pool}' is not a valid Ceph pool name");
        }
        var user = reader.Optional("user") ?? "admin";
        if (user.StartsWith("client.", StringComparison.Ordinal))
        {
            user = user["client.".Length..];
        }
        if (!IsCephName(user))
        {
            throw reader.Error("user", $"'{user}' is not a valid Ceph user name");
        }
        var features = reader.Optional("features") is { } featureText
            ? featureText.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            : RbdPoolOptions.DefaultFeatures.ToArray();
        foreach (var feature in features)
        {
            if (!RbdFeatures.TryGetValue(feature, out var needs))
            {
                throw reader.Error("features", $"'{feature}' is not an image feature rbd create accepts ({string.Join(", ", RbdFeatures.Keys)})");
            }
            if (needs is not null && !features.Contains(needs))
            {
                throw reader.Error("features", $"'{feature}' needs '{needs}'");
            }
        }
        long? objectSize = null;
        if (reader.Optional("object_size") is { } objectText)
        {
            if (!Sizes.TryParse(objectText, out var bytes) || bytes < 4 * Sizes.KiB || bytes > 32 * Sizes.MiB || (bytes & (bytes - 1)) != 0)
            {
                throw reader.Error("object_size", $"'{objectText}' must be a power of two from 4K to 32M");
            }
            objectSize = bytes;
        }
        var flatten = FlattenPolicy.Default;
        if (reader.Optional("flatten") is { } flattenText && !FlattenPolicy.TryParse(flattenText, out flatten))
        {
            throw reader.Error("flatten", $"'{flattenText}' must be never, always or on-depth:N (N from 1 to 64)");
        }
        var timeout = TimeSpan.FromSeconds(30);
        if (reader.Optional("timeout") is { } timeoutText)
        {
            if (!int.TryParse(timeoutText.TrimEnd('s'), NumberStyles.None, CultureInfo.InvariantCulture, out var seconds) || seconds is < 1 or > 3600)
            {
                throw reader.Error("timeout", $"'{timeoutText}' must be whole seconds from 1 to 3600");
            }
            timeout = TimeSpan.FromSeconds(seconds);
        }
        var ns = reader.Optional("namespace") ?? "";
        if (ns.Length > 0 && !IsCephName(ns))
        {
            throw reader.Error("namespace", $"'{ns}' is not a valid RADOS namespace name");
        }
        var dataPool = reader.Optional("data_pool");
        if (dataPool is not null && !IsCephName(dataPool))
        {
            throw reader.Error("data_pool", $"'{dataPool}' is not a valid Ceph pool name");
        }
        return new RbdPoolOptions
        {
            Name = reader.Name,
            Pool = pool,
            Namespace = ns,
            User = user,
            Keyring = reader.OptionalPath("keyring"),
            Conf = reader.OptionalPath("conf") ?? "/etc/ceph/ceph.conf",
            MonHost = reader.Optional("mon_host"),
            Features = features,
            ObjectSize = objectSize,
            DataPool = dataPool,
            Flatten = flatten,
            Timeout = timeout,
        };
    }

    internal static bool IsLvmName(string name) =>
        name.Length is >= 1 and <= 127 && name[0] != '-' && name is not "." and not ".."
        && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '+' or '_' or '.' or '-');

    internal static bool IsCephName(string name) =>
        name.Length is >= 1 and <= 128 && name[0] != '-'
        && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '.' or '-');

    private static StatusException Invalid(string message) => StatusException.InvalidArgument(message);

    private sealed class Reader(string name, IReadOnlyDictionary<string, string> pairs)
    {
        public string Name => name;

        public StatusException Error(string key, string problem) => Invalid($"pool '{name}': key '{key}': {problem}");

        public void OnlyKnown(string[] known, string backend)
        {
            foreach (var key in pairs.Keys)
            {
                if (!known.Contains(key))
                {
                    throw Invalid($"pool '{name}': unknown key '{key}' for backend {backend} (known: {string.Join(", ", known)})");
                }
            }
        }

        public string Required(string key)
        {
            var value = Optional(key);
            return value ?? throw Invalid($"pool '{name}': key '{key}' is missing");
        }

        public string? Optional(string key)
        {
            if (!pairs.TryGetValue(key, out var value))
            {
                return null;
            }
            return value.Length == 0 ? throw Error(key, "is empty") : value;
        }

        public string? OptionalPath(string key)
        {
            var value = Optional(key);
            return value is null || Path.IsPathRooted(value) ? value : throw Error(key, $"'{value}' must be an absolute path");
        }

        public double Ratio(string key, double fallback, double minimum)
        {
            var text = Optional(key);
            if (text is null)
            {
                return fallback;
            }
            if (!double.TryParse(text, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var value) || value < minimum || value > 100)
            {
                throw Error(key, $"'{text}' must be a number from {minimum.ToString(CultureInfo.InvariantCulture)} to 100");
            }
            return value;
        }

        public bool Boolean(string key, bool fallback) => Optional(key) switch
        {
            null => fallback,
            "true" or "yes" or "1" => true,
            "false" or "no" or "0" => false,
            var other => throw Error(key, $"'{other}' must be true or false"),
        };
    }
}
