namespace CsiScst.ScstModel.Fuse;

/// <summary>
/// Maps the kernel's node ids to paths. The tree behind the mount changes under the kernel's feet
/// (devices and targets come and go), so a node id names a path, not an object; with entry and attr
/// timeouts of 0 the kernel looks every component up again and always sees the current tree.
/// A path whose kind changes gets a new id, because the kernel refuses an inode whose type changed.
/// </summary>
internal sealed class NodeTable
{
    private sealed class Entry(string path, FsKind kind)
    {
        public string Path { get; } = path;
        public FsKind Kind { get; } = kind;
        public ulong Lookups { get; set; }
    }

    private readonly Lock _gate = new();
    private readonly Dictionary<ulong, Entry> _byId = [];
    private readonly Dictionary<string, ulong> _byPath = new(StringComparer.Ordinal);
    private ulong _next = FuseProtocol.RootId + 1;

    public NodeTable()
    {
        _byId[FuseProtocol.RootId] = new Entry("", FsKind.Directory);
        _byPath[""] = FuseProtocol.RootId;
    }

    public string? PathOf(ulong id)
    {
        lock (_gate)
        {
            return _byId.TryGetValue(id, out Entry? e) ? e.Path : null;
        }
    }

    /// <summary>Counts one kernel reference (a successful LOOKUP) and returns the node id.</summary>
    public ulong Remember(string path, FsKind kind)
    {
        lock (_gate)
        {
            if (_byPath.TryGetValue(path, out ulong id) && _byId.TryGetValue(id, out Entry? existing) && existing.Kind == kind)
            {
                existing.Lookups++;
                return id;
            }

            id = _next++;
            _byId[id] = new Entry(path, kind) { Lookups = 1 };
            _byPath[path] = id;
            return id;
        }
    }

    public void Forget(ulong id, ulong count)
    {
        if (id == FuseProtocol.RootId)
        {
            return;
        }

        lock (_gate)
        {
            if (!_byId.TryGetValue(id, out Entry? e))
            {
                return;
            }

            e.Lookups = count >= e.Lookups ? 0 : e.Lookups - count;
            if (e.Lookups == 0)
            {
                _byId.Remove(id);
                if (_byPath.TryGetValue(e.Path, out ulong current) && current == id)
                {
                    _byPath.Remove(e.Path);
                }
            }
        }
    }

    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _byId.Count;
            }
        }
    }
}
