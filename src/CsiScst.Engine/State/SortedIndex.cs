namespace CsiScst.Engine.State;

/// <summary>
/// Items by key with the keys kept in ordinal order, so a page is one binary search plus the page itself:
/// listing N items in pages costs O(N log N) in total, never O(N²). Not thread-safe; the store locks.
/// </summary>
internal sealed class SortedIndex<T>
    where T : class
{
    private readonly Dictionary<string, T> _items = new(StringComparer.Ordinal);
    private readonly List<string> _keys = [];

    public int Count => _keys.Count;

    public T? Get(string key) => _items.GetValueOrDefault(key);

    public void Set(string key, T item)
    {
        if (!_items.ContainsKey(key))
        {
            var index = _keys.BinarySearch(key, StringComparer.Ordinal);
            _keys.Insert(~index, key);
        }
        _items[key] = item;
    }

    public bool Remove(string key)
    {
        if (!_items.Remove(key))
        {
            return false;
        }
        var index = _keys.BinarySearch(key, StringComparer.Ordinal);
        if (index >= 0)
        {
            _keys.RemoveAt(index);
        }
        return true;
    }

    public List<T> All()
    {
        var all = new List<T>(_keys.Count);
        foreach (var key in _keys)
        {
            all.Add(_items[key]);
        }
        return all;
    }

    /// <summary>Up to <paramref name="max"/> items with keys after <paramref name="after"/>; the key to continue after, or null at the end.</summary>
    public (List<T> Items, string? ContinueAfter) Page(string? after, int max, Func<T, bool>? filter = null)
    {
        var start = 0;
        if (after is not null)
        {
            var found = _keys.BinarySearch(after, StringComparer.Ordinal);
            start = found >= 0 ? found + 1 : ~found;
        }
        var items = new List<T>(Math.Min(max, Math.Max(0, _keys.Count - start)));
        string? last = null;
        var i = start;
        for (; i < _keys.Count && items.Count < max; i++)
        {
            var item = _items[_keys[i]];
            if (filter is null || filter(item))
            {
                items.Add(item);
                last = _keys[i];
            }
        }
        if (items.Count < max)
        {
            return (items, null);
        }
        // Only hand out a token when something is left, so the last page says "no more".
        for (; i < _keys.Count; i++)
        {
            if (filter is null || filter(_items[_keys[i]]))
            {
                return (items, last);
            }
        }
        return (items, null);
    }
}
