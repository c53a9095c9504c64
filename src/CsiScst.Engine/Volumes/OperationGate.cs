namespace CsiScst.Engine.Volumes;

/// <summary>
/// Keeps reconcile and volume operations apart: any number of operations (each already holding its
/// per-key lock) run together, while a reconcile runs alone. Reconcile computes the whole target from a
/// snapshot of the desired state, so an operation changing a record mid-reconcile could otherwise be
/// undone (an initiator just allowed, removed again). A waiting reconcile stops new operations from
/// starting (turnstile), so a steady stream of calls cannot starve it.
/// </summary>
public sealed class OperationGate
{
    private readonly SemaphoreSlim _turnstile = new(1, 1);
    private readonly SemaphoreSlim _room = new(1, 1);
    private readonly SemaphoreSlim _mutex = new(1, 1);
    private int _operations;

    /// <summary>Enters as one of many operations.</summary>
    public async Task<IDisposable> EnterOperationAsync(CancellationToken cancellationToken)
    {
        await _turnstile.WaitAsync(cancellationToken).ConfigureAwait(false);
        _turnstile.Release();
        await _mutex.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_operations == 0)
            {
                await _room.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
            _operations++;
        }
        finally
        {
            _mutex.Release();
        }
        return new Exit(this, exclusive: false);
    }

    /// <summary>Waits until no operation runs and keeps new ones out until disposed.</summary>
    public async Task<IDisposable> EnterExclusiveAsync(CancellationToken cancellationToken)
    {
        await _turnstile.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await _room.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            _turnstile.Release();
            throw;
        }
        return new Exit(this, exclusive: true);
    }

    private void LeaveOperation()
    {
        _mutex.Wait();
        try
        {
            _operations--;
            if (_operations == 0)
            {
                _room.Release();
            }
        }
        finally
        {
            _mutex.Release();
        }
    }

    private void LeaveExclusive()
    {
        _room.Release();
        _turnstile.Release();
    }

    private sealed class Exit(OperationGate gate, bool exclusive) : IDisposable
    {
        private int _done;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _done, 1) != 0)
            {
                return;
            }
            if (exclusive)
            {
                gate.LeaveExclusive();
            }
            else
            {
                gate.LeaveOperation();
            }
        }
    }
}
