using CsiScst.Backends;
using CsiScst.Core.Errors;

namespace CsiScst.Engine.Volumes;

/// <summary>The pools configured on this engine, by name.</summary>
public sealed class PoolRegistry
{
    private readonly Dictionary<string, IStorageBackend> _pools;

    public PoolRegistry(IEnumerable<IStorageBackend> backends)
    {
        _pools = new Dictionary<string, IStorageBackend>(StringComparer.Ordinal);
        foreach (var backend in backends)
        {
            if (!_pools.TryAdd(backend.PoolName, backend))
            {
                throw new ArgumentException($"pool '{backend.PoolName}' is configured twice");
            }
        }
    }

    public IReadOnlyCollection<IStorageBackend> All => _pools.Values;

    public IStorageBackend? Find(string name) => _pools.GetValueOrDefault(name);

    /// <summary>The pool, or INVALID_ARGUMENT naming the pools that exist.</summary>
    public IStorageBackend Get(string name) =>
        Find(name) ?? throw StatusException.InvalidArgument(
            $"pool '{name}' is not configured on this engine (pools: {(_pools.Count == 0 ? "none" : string.Join(", ", _pools.Keys.Order(StringComparer.Ordinal)))})");

    /// <summary>What a pool of this kind offers (IStorageBackend does not say; the kinds are fixed).</summary>
    public static (bool Thin, bool Snapshots, bool Clones) Features(IStorageBackend backend) => backend.Kind switch
    {
        // Sparse files and RBD images allocate on write.
        "file" or "rbd" => (true, true, true),
        _ => (false, true, true),
    };
}
