using System.Text;
using CsiScst.ScstModel.Fuse;

namespace CsiScst.ScstModel.Vfs;

/// <summary>
/// Serves a <see cref="VDir"/> tree with sysfs (kernfs) semantics: opening a file for a direction its
/// mode lacks fails with EACCES even for root, a write hands at most one page to the store, a store
/// runs once per write(2), and an attribute whose object is gone answers ENODEV.
/// </summary>
internal sealed class VirtualFileSystem(object sync, VDir root, IWorkRunner runner, Action<string, string, int>? writeObserver) : IFuseFileSystem
{
    public const int PageSize = 4096;

    private const int EIntr = 4;
    private const int EAgain = 11;
    private const int EAcces = 13;
    private const int ENoDev = 19;
    private const int EIsDir = 21;
    private const int EInval = 22;

    public FsNodeInfo? Lookup(string path)
    {
        lock (sync)
        {
            return Resolve(path) switch
            {
                VDir => new FsNodeInfo(FsKind.Directory, 0x1ED, 0),
                VFile f => new FsNodeInfo(FsKind.File, f.Permissions, PageSize),
                VLink l => new FsNodeInfo(FsKind.Symlink, 0x1FF, Encoding.UTF8.GetByteCount(l.Target)),
                _ => null,
            };
        }
    }

    public IReadOnlyList<FsDirEntry>? ReadDirectory(string path)
    {
        lock (sync)
        {
            if (Resolve(path) is not VDir dir)
            {
                return null;
            }

            return dir.Children().Select(c => new FsDirEntry(c.Name, KindOf(c))).ToList();
        }
    }

    public int ReadLink(string path, out string target)
    {
        lock (sync)
        {
            if (Resolve(path) is VLink link)
            {
                target = link.Target;
                return 0;
            }
        }

        target = "";
        return EInval;
    }

    public int Open(string path, bool read, bool write)
    {
        lock (sync)
        {
            return Resolve(path) switch
            {
                VFile f when (read && f.Show is null) || (write && f.Store is null) => EAcces,
                VFile => 0,
                VDir => EIsDir,
                _ => ENoDev,
            };
        }
    }

    public int Read(string path, CancellationToken cancel, out byte[] content)
    {
        ShowResult result;
        lock (sync)
        {
            result = Resolve(path) is VFile { Show: { } show } ? show() : ShowResult.Fail(ENoDev);
        }

        if (result.Work is { } work)
        {
            string? text = null;
            WorkTicket ticket = runner.Enqueue(
                () =>
                {
                    ShowResult r = work();
                    text = r.Text;
                    return r.Errno;
                },
                readOnly: true);
            int errno = Await(ticket, cancel);
            result = errno == 0 ? ShowResult.Ok(Volatile.Read(ref text) ?? "") : ShowResult.Fail(errno);
        }

        content = result.Errno == 0 ? Encoding.UTF8.GetBytes(result.Text ?? "") : [];
        return result.Errno;
    }

    public int Write(string path, ReadOnlySpan<byte> data, CancellationToken cancel, out int accepted)
    {
        // sysfs: a store sees at most one page, and an empty write never reaches it.
        accepted = Math.Min(data.Length, PageSize);
        if (accepted == 0)
        {
            return 0;
        }

        string text = Encoding.UTF8.GetString(data[..accepted]);
        StoreResult result;
        lock (sync)
        {
            result = Resolve(path) is VFile { Store: { } store } ? store(text) : StoreResult.Fail(ENoDev);
        }

        int errno = result.Work is { } work ? Await(runner.Enqueue(work, readOnly: false), cancel) : result.Errno;
        writeObserver?.Invoke(path, text, errno);
        return errno;
    }

    /// <summary>
    /// Waits like scst_sysfs_queue_wait_work: EAGAIN when the work is not done in time (it still
    /// completes), EINTR when the writer is interrupted.
    /// </summary>
    private int Await(WorkTicket ticket, CancellationToken cancel)
    {
        try
        {
            return ticket.Wait(runner.WaitMs, cancel) ? ticket.Result : EAgain;
        }
        catch (OperationCanceledException)
        {
            return EIntr;
        }
    }

    private static FsKind KindOf(VNode node) => node switch
    {
        VDir => FsKind.Directory,
        VLink => FsKind.Symlink,
        _ => FsKind.File,
    };

    private VNode? Resolve(string path)
    {
        VNode node = root;
        if (path.Length == 0)
        {
            return node;
        }

        foreach (string part in path.Split('/'))
        {
            if (node is not VDir dir || dir.Child(part) is not { } child)
            {
                return null;
            }

            node = child;
        }

        return node;
    }
}
