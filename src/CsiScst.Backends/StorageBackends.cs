using CsiScst.Core.Errors;

namespace CsiScst.Backends;

/// <summary>The pools configured on this engine, by name.</summary>
public sealed class StorageBackends
{
    private readonly Dictionary<string, IStorageBackend> _byName;

    public StorageBackends(IEnumerable<IStorageBackend> backends)
    {
        _byName = new Dictionary<string, IStorageBackend>(StringComparer.Ordinal);
        foreach (var backend in backends)
        {
            if (!_byName.TryAdd(backend.PoolName, backend))
            {
                throw StatusException.InvalidArgument($"pool '{backend.PoolName}' is configured twice");
            }
        }
        All = _byName.Values.OrderBy(b => b.PoolName, StringComparer.Ordinal).ToArray();
    }

    /// <summary>In name order.</summary>
    public IReadOnlyList<IStorageBackend> All { get; }

    public bool TryGet(string pool, out IStorageBackend backend) => _byName.TryGetValue(pool, out backend!);

    /// <summary>The pool or NOT_FOUND naming it and the configured ones.</summary>
    public IStorageBackend Get(string pool) =>
        _byName.TryGetValue(pool, out var backend)
            ? backend
            : throw StatusException.NotFound(
                $"pool '{pool}' is not configured on this target (configured: {(All.Count == 0 ? "none" : string.Join(", ", All.Select(b => b.PoolName)))})");
}
