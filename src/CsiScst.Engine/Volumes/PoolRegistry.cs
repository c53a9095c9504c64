using CsiScst.Backends;
using CsiScst.Core.Errors;

namespace CsiScst.Engine.Volumes;

/// <summary>The pools configured on this engine (the backends' registry), with the engine API's error codes.</summary>
public sealed class PoolRegistry
{
    private readonly StorageBackends _backends;

    public PoolRegistry(StorageBackends backends)
    {
        _backends = backends;
    }

    public IReadOnlyList<IStorageBackend> All => _backends.All;

    public IStorageBackend? Find(string name) => _backends.TryGet(name, out var backend) ? backend : null;

    /// <summary>The pool, or INVALID_ARGUMENT naming the pools that exist: the caller asked for something this engine does not offer.</summary>
    public IStorageBackend Get(string name) =>
        Find(name) ?? throw StatusException.InvalidArgument(
            $"pool '{name}' is not configured on this engine (pools: {(All.Count == 0 ? "none" : string.Join(", ", All.Select(b => b.PoolName)))})");
}
