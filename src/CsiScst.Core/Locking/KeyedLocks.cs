using CsiScst.Core.Errors;

namespace CsiScst.Core.Locking;

/// <summary>
/// One lock per key (volume id, volume name, snapshot name …). CSI RPCs use <see cref="TryAcquire"/>:
/// a second call for a key already in flight gets ABORTED at once, as the spec asks, and the CO retries.
/// Internal steps that must serialize use <see cref="AcquireAsync"/>. Entries are dropped when unused,
/// so memory does not grow with the number of keys ever seen.
/// </summary>
public sealed class KeyedLocks
{
    private readonly Dictionary<string, Entry> _entries = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();

    /// <summary>Takes the lock or throws ABORTED naming what is already in progress.</summary>
    public IDisposable TryAcquire(string key, string what)
    {
        var entry = Enter(key);
        if (!entry.Semaphore.Wait(0))
        {
            Leave(key, entry);
            throw StatusException.Aborted($"an operation on {what} is already in progress; retry later");
        }
        return new Releaser(this, key, entry);
    }

    /// <summary>Takes several locks or none (ABORTED on the first one held). Ordered, so no deadlock.</summary>
    public IDisposable TryAcquireAll(params (string Key, string What)[] keys)
    {
        var taken = new List<IDisposable>();
        try
        {
            foreach (var (key, what) in keys.DistinctBy(k => k.Key).OrderBy(k => k.Key, StringComparer.Ordinal))
            {
                taken.Add(TryAcquire(key, what));
            }
            return new Many(taken);
        }
        catch
        {
            new Many(taken).Dispose();
            throw;
        }
    }

    /// <summary>Waits for the lock.</summary>
    public async Task<IDisposable> AcquireAsync(string key, CancellationToken cancellationToken)
    {
        var entry = Enter(key);
        try
        {
            await entry.Semaphore.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            Leave(key, entry);
            throw;
        }
        return new Releaser(this, key, entry);
    }

    /// <summary>Number of keys currently tracked (tests check that entries do not leak).</summary>
    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _entries.Count;
            }
        }
    }

    private Entry Enter(string key)
    {
        lock (_gate)
        {
            if (!_entries.TryGetValue(key, out var entry))
            {
                entry = new Entry();
                _entries[key] = entry;
            }
            entry.Users++;
            return entry;
        }
    }

    private void Leave(string key, Entry entry)
    {
        lock (_gate)
        {
            entry.Users--;
            if (entry.Users == 0)
            {
                _entries.Remove(key);
            }
        }
    }

    private sealed class Entry
    {
        public int Users;
        public readonly SemaphoreSlim Semaphore = new(1, 1);
    }

    private sealed class Releaser(KeyedLocks owner, string key, Entry entry) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                entry.Semaphore.Release();
                owner.Leave(key, entry);
            }
        }
    }

    private sealed class Many(List<IDisposable> items) : IDisposable
    {
        public void Dispose()
        {
            for (var i = items.Count - 1; i >= 0; i--)
            {
                items[i].Dispose();
            }
        }
    }
}
