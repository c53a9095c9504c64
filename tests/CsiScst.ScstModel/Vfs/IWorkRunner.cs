namespace CsiScst.ScstModel.Vfs;

/// <summary>Runs queued work the way SCST's sysfs work thread does (interfaces.md A.3).</summary>
internal interface IWorkRunner
{
    /// <summary>How long a writer waits for its work before it gets EAGAIN.</summary>
    int WaitMs { get; }

    WorkTicket Enqueue(Func<int> work, bool readOnly);
}

internal sealed class WorkTicket
{
    private readonly ManualResetEventSlim _done = new();

    public int Result { get; private set; }

    public void Complete(int result)
    {
        Result = result;
        _done.Set();
    }

    /// <summary>True when the work finished within <paramref name="timeoutMs"/>.</summary>
    public bool Wait(int timeoutMs, CancellationToken cancel) => _done.Wait(timeoutMs, cancel);
}
