using CsiScst.Core.Errors;
using CsiScst.Core.Locking;
using Grpc.Core;

namespace CsiScst.Tests.Foundation;

public sealed class KeyedLocksTests
{
    [Fact]
    public void A_second_caller_for_the_same_key_gets_aborted_and_may_retry_after_release()
    {
        var locks = new KeyedLocks();
        var first = locks.TryAcquire("vol-a", "volume vol-a");
        var e = Assert.Throws<StatusException>(() => locks.TryAcquire("vol-a", "volume vol-a"));
        Assert.Equal(StatusCode.Aborted, e.Code);
        Assert.Contains("volume vol-a", e.Message);
        using (locks.TryAcquire("vol-b", "volume vol-b"))
        {
        }
        first.Dispose();
        locks.TryAcquire("vol-a", "volume vol-a").Dispose();
        Assert.Equal(0, locks.Count);
    }

    [Fact]
    public async Task Waiting_acquire_serializes_and_excludes_try_acquire()
    {
        var locks = new KeyedLocks();
        var held = await locks.AcquireAsync("k", CancellationToken.None);
        Assert.Throws<StatusException>(() => locks.TryAcquire("k", "k"));
        var waiter = locks.AcquireAsync("k", CancellationToken.None);
        Assert.False(waiter.IsCompleted);
        held.Dispose();
        (await waiter).Dispose();
        Assert.Equal(0, locks.Count);
    }

    [Fact]
    public void Acquiring_several_is_all_or_nothing()
    {
        var locks = new KeyedLocks();
        using var held = locks.TryAcquire("b", "b");
        Assert.Throws<StatusException>(() => locks.TryAcquireAll(("a", "a"), ("b", "b")));
        // "a" was released again when "b" failed.
        locks.TryAcquire("a", "a").Dispose();
    }

    [Fact]
    public async Task Cancelled_waiters_do_not_leak_entries()
    {
        var locks = new KeyedLocks();
        var held = locks.TryAcquire("k", "k");
        using var cts = new CancellationTokenSource();
        var waiter = locks.AcquireAsync("k", cts.Token);
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiter);
        held.Dispose();
        Assert.Equal(0, locks.Count);
    }
}
