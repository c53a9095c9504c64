using CsiScst.ScstModel.Vfs;

namespace CsiScst.ScstModel.Scst;

/// <summary>
/// SCST's sysfs work queue (interfaces.md A.3, scst_sysfs.c scst_sysfs_queue_wait_work): a store queues
/// its work; the writer waits for it and gets EAGAIN when it is not done in time, while the work still
/// completes. <see cref="LastResult"/> is last_sysfs_mgmt_res: unreadable (EAGAIN) while any work is in
/// flight, else the result of the last completed non-read-only work, system wide.
/// Each work first takes <see cref="WorkMs"/> (a stand-in for slow kernel work), then runs under the model
/// lock, one at a time as under scst_mutex.
/// Deviation: SCST waits 15 s and then keeps waiting in 5 s steps while scst_mutex is free; the model's
/// writer simply waits <see cref="WaitMs"/> once.
/// </summary>
internal sealed class SysfsWorkQueue : IWorkRunner, IDisposable
{
    private sealed record Item(Func<int> Work, bool ReadOnly, WorkTicket Ticket, long Epoch);

    private readonly object _modelLock;
    private readonly Lock _gate = new();
    private readonly Queue<Item> _items = new();
    private readonly SemaphoreSlim _signal = new(0);
    private readonly CancellationTokenSource _stop = new();
    private readonly Thread _thread;
    private int _active;
    private int _lastResult;
    private long _epoch;

    public SysfsWorkQueue(object modelLock, int workMs, int waitMs)
    {
        _modelLock = modelLock;
        WorkMs = workMs;
        WaitMs = waitMs;
        _thread = new Thread(Run) { IsBackground = true, Name = "scst-sysfs-work" };
        _thread.Start();
    }

    public int WorkMs { get; set; }

    public int WaitMs { get; set; }

    /// <summary>last_sysfs_mgmt_res as "-errno" (0 = success), or null while work is in flight.</summary>
    public int? LastResult
    {
        get
        {
            lock (_gate)
            {
                return _active > 0 ? null : _lastResult;
            }
        }
    }

    public WorkTicket Enqueue(Func<int> work, bool readOnly)
    {
        var ticket = new WorkTicket();
        lock (_gate)
        {
            _active++;
            _items.Enqueue(new Item(work, readOnly, ticket, _epoch));
        }

        _signal.Release();
        return ticket;
    }

    /// <summary>
    /// A reboot: the state the queued work was written against is gone, so that work is dropped
    /// (its writers, had they survived a reboot, would see EIO) and last_sysfs_mgmt_res starts at 0.
    /// </summary>
    public void Reset()
    {
        lock (_gate)
        {
            _epoch++;
            _lastResult = 0;
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _thread.Join();
        _stop.Dispose();
        _signal.Dispose();
    }

    private void Run()
    {
        try
        {
            while (true)
            {
                _signal.Wait(_stop.Token);
                Item item;
                lock (_gate)
                {
                    item = _items.Dequeue();
                }

                if (WorkMs > 0)
                {
                    _stop.Token.WaitHandle.WaitOne(WorkMs);
                }

                int result = Errno.EIO;
                lock (_modelLock)
                {
                    bool current;
                    lock (_gate)
                    {
                        current = item.Epoch == _epoch;
                    }

                    if (current)
                    {
                        result = item.Work();
                    }
                }

                lock (_gate)
                {
                    if (!item.ReadOnly && item.Epoch == _epoch)
                    {
                        _lastResult = -result;
                    }

                    _active--;
                }

                item.Ticket.Complete(result);
            }
        }
        catch (OperationCanceledException)
        {
            lock (_gate)
            {
                while (_items.TryDequeue(out Item? left))
                {
                    left.Ticket.Complete(Errno.EIO);
                }
            }
        }
    }
}
