namespace CsiScst.Targets.Lio;

/// <summary>Where one backstore lives: <c>core/&lt;plugin&gt;_&lt;index&gt;/&lt;name&gt;</c>.</summary>
public sealed record BackstoreLocation(string Name, string Plugin, int HbaIndex, string HbaPath, string Path);

/// <summary>
/// One bulk read of configfs: every HBA directory (ours and foreign, for index allocation), our backstores by
/// name and our target IQNs. Reconcile reads it once and passes it to every repair, so a pass costs one
/// readdir of core/, one per HBA directory and one of iscsi/, never a scan per export.
/// </summary>
public sealed class LioInventory
{
    private readonly Dictionary<string, List<BackstoreLocation>> _backstores = new(StringComparer.Ordinal);
    private readonly Dictionary<string, SortedSet<int>> _usedIndexes = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _nextCandidate = new(StringComparer.Ordinal);

    public HashSet<string> Targets { get; } = new(StringComparer.Ordinal);

    public IReadOnlyDictionary<string, List<BackstoreLocation>> Backstores => _backstores;

    public static LioInventory Read(IConfigfs fs, LioLayout layout, Func<string, bool> isOurDevice, Func<string, bool> isOurTarget)
    {
        var inventory = new LioInventory();
        foreach (var hba in fs.List(layout.Core))
        {
            if (hba.Kind != ConfigfsEntryKind.Directory || LioLayout.ParseHba(hba.Name) is not { } parsed)
            {
                continue;
            }
            inventory.MarkUsed(parsed.Plugin, parsed.Index);
            if (parsed.Plugin is not (LioLayout.IblockPlugin or LioLayout.FileioPlugin))
            {
                continue;
            }
            var hbaPath = layout.Core + "/" + hba.Name;
            foreach (var so in fs.List(hbaPath))
            {
                if (so.Kind == ConfigfsEntryKind.Directory && isOurDevice(so.Name))
                {
                    inventory.Add(new BackstoreLocation(so.Name, parsed.Plugin, parsed.Index, hbaPath, LioLayout.Backstore(hbaPath, so.Name)));
                }
            }
        }
        foreach (var target in fs.List(layout.Iscsi))
        {
            if (target.Kind == ConfigfsEntryKind.Directory && isOurTarget(target.Name))
            {
                inventory.Targets.Add(target.Name);
            }
        }
        return inventory;
    }

    public IReadOnlyList<BackstoreLocation> Find(string name) =>
        _backstores.TryGetValue(name, out var list) ? list : [];

    public void Add(BackstoreLocation location)
    {
        if (!_backstores.TryGetValue(location.Name, out var list))
        {
            list = [];
            _backstores[location.Name] = list;
        }
        list.Add(location);
    }

    public void Remove(BackstoreLocation location)
    {
        if (_backstores.TryGetValue(location.Name, out var list))
        {
            list.Remove(location);
            if (list.Count == 0)
            {
                _backstores.Remove(location.Name);
            }
        }
    }

    public void MarkUsed(string plugin, int index)
    {
        if (!_usedIndexes.TryGetValue(plugin, out var set))
        {
            set = [];
            _usedIndexes[plugin] = set;
        }
        set.Add(index);
    }

    /// <summary>The first index no HBA directory of this plugin uses (amortized O(1) over a pass).</summary>
    public int NextFreeIndex(string plugin)
    {
        _usedIndexes.TryGetValue(plugin, out var used);
        var candidate = _nextCandidate.GetValueOrDefault(plugin);
        while (used is not null && used.Contains(candidate))
        {
            candidate++;
        }
        _nextCandidate[plugin] = candidate;
        return candidate;
    }
}
