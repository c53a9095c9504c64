using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Text;

namespace CsiScst.ScstModel.Fuse;

/// <summary>
/// Serves an <see cref="IFuseFileSystem"/> through /dev/fuse: mount(2) with the device's fd, one reader
/// thread that takes requests off the device, and a few worker threads that answer them. Workers may
/// block (a sysfs write waits for its queued work), so INIT, FORGET and INTERRUPT are answered by the
/// reader itself and can never queue behind them.
/// </summary>
internal sealed class FuseServer : IDisposable
{
    public const string FsName = "scstmodel";

    private const int MaxWrite = 128 * 1024;
    private const int BufferSize = MaxWrite + 4096;
    private const int WorkerCount = 8;

    private const int EPerm = 1;
    private const int ENoEnt = 2;
    private const int EIntr = 4;
    private const int EAgain = 11;
    private const int EAcces = 13;
    private const int ENoSys = 38;
    private const int ENoData = 61;
    private const int EProto = 71;

    private sealed class OpenHandle(string path)
    {
        public string Path { get; } = path;
        public byte[]? Content { get; set; }
        public List<(string Name, FsKind Kind)>? Entries { get; set; }
    }

    private readonly IFuseFileSystem _fs;
    private readonly int _fd;
    private readonly NodeTable _nodes = new();
    private readonly ConcurrentDictionary<ulong, OpenHandle> _handles = new();
    private readonly ConcurrentDictionary<ulong, CancellationTokenSource> _inflight = new();
    private readonly ConcurrentDictionary<ulong, byte> _earlyInterrupts = new();
    private readonly BlockingCollection<byte[]> _queue = [];
    private readonly CancellationTokenSource _stop = new();
    private readonly ManualResetEventSlim _initDone = new();
    private readonly Thread _reader;
    private readonly Thread[] _workers;
    private readonly ulong _time = (ulong)DateTimeOffset.UtcNow.ToUnixTimeSeconds();
    private long _nextHandle;
    private int _disposed;

    public string MountPoint { get; }

    private FuseServer(string mountPoint, int fd, IFuseFileSystem fs)
    {
        MountPoint = mountPoint;
        _fd = fd;
        _fs = fs;
        _reader = new Thread(ReadLoop) { IsBackground = true, Name = "fuse-reader" };
        _workers = new Thread[WorkerCount];
        for (int i = 0; i < _workers.Length; i++)
        {
            _workers[i] = new Thread(WorkLoop) { IsBackground = true, Name = $"fuse-worker-{i}" };
        }
    }

    /// <summary>
    /// Mounts <paramref name="fs"/> at <paramref name="mountPoint"/>. A stale mount of ours left there by a
    /// crashed run (its device closed, so every access fails with ENOTCONN) is detached first.
    /// </summary>
    public static FuseServer Mount(string mountPoint, IFuseFileSystem fs, TimeSpan initTimeout)
    {
        string mp = MountTable.Normalize(mountPoint);
        DetachStale(mp);
        Directory.CreateDirectory(mp);

        int fd = FuseNative.Open("/dev/fuse", FuseNative.ORdWr | FuseNative.ONonBlock | FuseNative.OCloExec);
        if (fd < 0)
        {
            throw new IOException($"open /dev/fuse failed: errno {FuseNative.Errno}");
        }

        // No default_permissions: we run as root, whom the kernel would let write read-only files.
        // sysfs refuses such opens (kernfs checks the mode even for root), so OPEN checks it here.
        string data = $"fd={fd},rootmode=40000,user_id=0,group_id=0,allow_other";
        if (FuseNative.Mount(FsName, mp, "fuse." + FsName, FuseNative.MsNoSuid | FuseNative.MsNoDev, data) != 0)
        {
            int errno = FuseNative.Errno;
            FuseNative.Close(fd);
            throw new IOException($"mount {mp} failed: errno {errno}");
        }

        var server = new FuseServer(mp, fd, fs);
        server.Start();
        if (!server._initDone.Wait(initTimeout))
        {
            server.Dispose();
            throw new IOException($"the kernel sent no FUSE INIT for {mp}");
        }

        return server;
    }

    private static void DetachStale(string mp)
    {
        for (int i = 0; i < 16; i++)
        {
            IReadOnlyList<string> types = MountTable.TypesAt(mp);
            if (types.Count == 0)
            {
                return;
            }

            if (!types[^1].StartsWith("fuse." + FsName, StringComparison.Ordinal))
            {
                throw new IOException($"{mp} already has a {types[^1]} mount that is not ours");
            }

            if (FuseNative.Umount2(mp, FuseNative.MntDetach) != 0)
            {
                throw new IOException($"umount2 {mp} failed: errno {FuseNative.Errno}");
            }
        }

        throw new IOException($"could not detach the stale mounts at {mp}");
    }

    private void Start()
    {
        _reader.Start();
        foreach (Thread w in _workers)
        {
            w.Start();
        }
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        // Detach first: new path walks fail at once, open files keep the superblock until closed.
        FuseNative.Umount2(MountPoint, FuseNative.MntDetach);
        _stop.Cancel();
        foreach (CancellationTokenSource cts in _inflight.Values)
        {
            try
            {
                cts.Cancel();
            }
            catch (ObjectDisposedException)
            {
            }
        }

        _reader.Join();
        foreach (Thread w in _workers)
        {
            w.Join(TimeSpan.FromSeconds(10));
        }

        // Closing the device aborts the connection: anything still using the old mount gets ENOTCONN.
        FuseNative.Close(_fd);
        _stop.Dispose();
        _initDone.Dispose();
        _queue.Dispose();
    }

    private unsafe void ReadLoop()
    {
        byte[] buffer = new byte[BufferSize];
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                var pfd = new FuseNative.PollFd { Fd = _fd, Events = FuseNative.PollIn };
                int ready = FuseNative.Poll(&pfd, 1, 100);
                if (ready <= 0)
                {
                    continue;
                }

                nint n;
                fixed (byte* p = buffer)
                {
                    n = FuseNative.Read(_fd, p, (nuint)buffer.Length);
                }

                if (n < 0)
                {
                    int errno = FuseNative.Errno;
                    if (errno is EAgain or EIntr or ENoEnt)
                    {
                        continue;
                    }

                    return; // ENODEV: unmounted and the connection is gone
                }

                if (n < FuseProtocol.InHeaderSize)
                {
                    continue;
                }

                byte[] request = buffer.AsSpan(0, (int)n).ToArray();
                FuseInHeader h = FuseInHeader.Parse(request);
                ReadOnlySpan<byte> body = request.AsSpan(FuseProtocol.InHeaderSize);
                switch (h.Opcode)
                {
                    case FuseOpcode.Init:
                        HandleInit(h, body);
                        break;
                    case FuseOpcode.Forget:
                        _nodes.Forget(h.NodeId, BinaryPrimitives.ReadUInt64LittleEndian(body));
                        break;
                    case FuseOpcode.BatchForget:
                        HandleBatchForget(body);
                        break;
                    case FuseOpcode.Interrupt:
                        HandleInterrupt(BinaryPrimitives.ReadUInt64LittleEndian(body));
                        break;
                    default:
                        _queue.Add(request);
                        break;
                }
            }
        }
        finally
        {
            _queue.CompleteAdding();
        }
    }

    private void WorkLoop()
    {
        foreach (byte[] request in _queue.GetConsumingEnumerable())
        {
            FuseInHeader h = FuseInHeader.Parse(request);
            using CancellationTokenSource cts = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
            _inflight[h.Unique] = cts;
            if (_earlyInterrupts.TryRemove(h.Unique, out _))
            {
                cts.Cancel();
            }

            try
            {
                Handle(h, request.AsSpan(FuseProtocol.InHeaderSize, Math.Min((int)h.Length, request.Length) - FuseProtocol.InHeaderSize), cts.Token);
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                // A bug in the model must not take the mount down: the caller sees EIO instead.
                Console.Error.WriteLine($"scstmodel: {h.Opcode} failed: {ex}");
                ReplyError(h.Unique, 5);
            }
            finally
            {
                _inflight.TryRemove(h.Unique, out _);
            }
        }
    }

    private void HandleInterrupt(ulong unique)
    {
        if (_inflight.TryGetValue(unique, out CancellationTokenSource? cts))
        {
            try
            {
                cts.Cancel();
            }
            catch (ObjectDisposedException)
            {
            }
        }
        else
        {
            _earlyInterrupts.TryAdd(unique, 0);
        }
    }

    private void HandleBatchForget(ReadOnlySpan<byte> body)
    {
        uint count = BinaryPrimitives.ReadUInt32LittleEndian(body);
        for (int i = 0; i < count && 8 + (i + 1) * 16 <= body.Length; i++)
        {
            ReadOnlySpan<byte> one = body.Slice(8 + i * 16, 16);
            _nodes.Forget(BinaryPrimitives.ReadUInt64LittleEndian(one), BinaryPrimitives.ReadUInt64LittleEndian(one[8..]));
        }
    }

    private void HandleInit(FuseInHeader h, ReadOnlySpan<byte> body)
    {
        uint major = BinaryPrimitives.ReadUInt32LittleEndian(body);
        uint minor = BinaryPrimitives.ReadUInt32LittleEndian(body[4..]);
        uint maxReadahead = BinaryPrimitives.ReadUInt32LittleEndian(body[8..]);
        uint kernelFlags = BinaryPrimitives.ReadUInt32LittleEndian(body[12..]);

        Span<byte> payload = stackalloc byte[64];
        var w = new FuseWriter(payload);
        if (major > FuseProtocol.KernelMajor)
        {
            // The kernel will send a new INIT with our major.
            w.U32(FuseProtocol.KernelMajor);
            w.Zeros(60);
            Reply(h.Unique, 0, payload[..8]);
            return;
        }

        if (major < FuseProtocol.KernelMajor)
        {
            ReplyError(h.Unique, EProto);
            return;
        }

        uint agreed = Math.Min(minor, FuseProtocol.OurMinor);
        w.U32(FuseProtocol.KernelMajor);
        w.U32(agreed);
        w.U32(maxReadahead);
        w.U32(kernelFlags & (FuseProtocol.AtomicOTrunc | FuseProtocol.BigWrites));
        w.U16(16);              // max_background
        w.U16(12);              // congestion_threshold
        w.U32(MaxWrite);
        w.U32(1);               // time_gran
        w.Zeros(64 - w.Length); // max_pages, map_alignment, flags2, unused

        // Kernels before 7.23 take the 24-byte reply of that time.
        Reply(h.Unique, 0, agreed < 23 ? payload[..24] : payload);
        _initDone.Set();
    }

    private void Handle(FuseInHeader h, ReadOnlySpan<byte> body, CancellationToken cancel)
    {
        switch (h.Opcode)
        {
            case FuseOpcode.Lookup:
                HandleLookup(h, body);
                break;
            case FuseOpcode.GetAttr:
            case FuseOpcode.SetAttr:
                // sysfs ignores truncation and keeps no times: SETATTR (e.g. O_TRUNC) changes nothing.
                HandleGetAttr(h);
                break;
            case FuseOpcode.ReadLink:
                HandleReadLink(h);
                break;
            case FuseOpcode.Open:
                HandleOpen(h, body);
                break;
            case FuseOpcode.Read:
                HandleRead(h, body, cancel);
                break;
            case FuseOpcode.Write:
                HandleWrite(h, body, cancel);
                break;
            case FuseOpcode.Release:
            case FuseOpcode.ReleaseDir:
                _handles.TryRemove(BinaryPrimitives.ReadUInt64LittleEndian(body), out _);
                ReplyError(h.Unique, 0);
                break;
            case FuseOpcode.Flush:
            case FuseOpcode.FSync:
            case FuseOpcode.FSyncDir:
                ReplyError(h.Unique, 0);
                break;
            case FuseOpcode.OpenDir:
                HandleOpenDir(h);
                break;
            case FuseOpcode.ReadDir:
                HandleReadDir(h, body);
                break;
            case FuseOpcode.Access:
                HandleAccess(h, body);
                break;
            case FuseOpcode.StatFs:
                HandleStatFs(h);
                break;
            case FuseOpcode.GetXAttr:
                ReplyError(h.Unique, ENoData);
                break;
            case FuseOpcode.ListXAttr:
                HandleListXAttr(h, body);
                break;
            case FuseOpcode.Create:
            case FuseOpcode.MkNod:
                // kernfs directories have no create: the VFS answers EACCES, as for "echo x > sysfs/new".
                ReplyError(h.Unique, EAcces);
                break;
            case FuseOpcode.MkDir:
            case FuseOpcode.RmDir:
            case FuseOpcode.Unlink:
            case FuseOpcode.Rename:
            case FuseOpcode.Rename2:
            case FuseOpcode.Symlink:
            case FuseOpcode.Link:
                ReplyError(h.Unique, EPerm);
                break;
            case FuseOpcode.Destroy:
                ReplyError(h.Unique, 0);
                break;
            default:
                ReplyError(h.Unique, ENoSys);
                break;
        }
    }

    private static string ChildPath(string parent, string name) => parent.Length == 0 ? name : parent + "/" + name;

    private static string CString(ReadOnlySpan<byte> body)
    {
        int nul = body.IndexOf((byte)0);
        return Encoding.UTF8.GetString(nul >= 0 ? body[..nul] : body);
    }

    private void HandleLookup(FuseInHeader h, ReadOnlySpan<byte> body)
    {
        string? parent = _nodes.PathOf(h.NodeId);
        if (parent is null)
        {
            ReplyError(h.Unique, ENoEnt);
            return;
        }

        string path = ChildPath(parent, CString(body));
        FsNodeInfo? info = _fs.Lookup(path);
        if (info is null)
        {
            ReplyError(h.Unique, ENoEnt);
            return;
        }

        ulong id = _nodes.Remember(path, info.Value.Kind);
        Span<byte> payload = stackalloc byte[40 + FuseProtocol.AttrSize];
        var w = new FuseWriter(payload);
        w.U64(id);
        w.U64(0);   // generation
        w.U64(0);   // entry_valid: look again every time, the tree changes
        w.U64(0);   // attr_valid
        w.U32(0);
        w.U32(0);
        w.Attr(id, info.Value, _time);
        Reply(h.Unique, 0, payload);
    }

    private void HandleGetAttr(FuseInHeader h)
    {
        string? path = _nodes.PathOf(h.NodeId);
        FsNodeInfo? info = path is null ? null : _fs.Lookup(path);
        if (info is null)
        {
            ReplyError(h.Unique, ENoEnt);
            return;
        }

        Span<byte> payload = stackalloc byte[16 + FuseProtocol.AttrSize];
        var w = new FuseWriter(payload);
        w.U64(0);   // attr_valid
        w.U32(0);
        w.U32(0);
        w.Attr(h.NodeId, info.Value, _time);
        Reply(h.Unique, 0, payload);
    }

    private void HandleReadLink(FuseInHeader h)
    {
        string? path = _nodes.PathOf(h.NodeId);
        if (path is null)
        {
            ReplyError(h.Unique, ENoEnt);
            return;
        }

        int errno = _fs.ReadLink(path, out string target);
        if (errno != 0)
        {
            ReplyError(h.Unique, errno);
            return;
        }

        Reply(h.Unique, 0, Encoding.UTF8.GetBytes(target));
    }

    private void HandleOpen(FuseInHeader h, ReadOnlySpan<byte> body)
    {
        string? path = _nodes.PathOf(h.NodeId);
        if (path is null)
        {
            ReplyError(h.Unique, ENoEnt);
            return;
        }

        uint flags = BinaryPrimitives.ReadUInt32LittleEndian(body);
        uint accmode = flags & 3;
        int errno = _fs.Open(path, accmode is 0 or 2, accmode is 1 or 2);
        if (errno != 0)
        {
            ReplyError(h.Unique, errno);
            return;
        }

        ReplyOpen(h.Unique, new OpenHandle(path));
    }

    private void ReplyOpen(ulong unique, OpenHandle handle)
    {
        ulong fh = (ulong)Interlocked.Increment(ref _nextHandle);
        _handles[fh] = handle;
        Span<byte> payload = stackalloc byte[16];
        var w = new FuseWriter(payload);
        w.U64(fh);
        // Direct I/O: every write(2) arrives as one WRITE and no read is served from the page cache.
        w.U32(FuseProtocol.FopenDirectIo);
        w.U32(0);
        Reply(unique, 0, payload);
    }

    private void HandleRead(FuseInHeader h, ReadOnlySpan<byte> body, CancellationToken cancel)
    {
        ulong fh = BinaryPrimitives.ReadUInt64LittleEndian(body);
        long offset = (long)BinaryPrimitives.ReadUInt64LittleEndian(body[8..]);
        int size = (int)BinaryPrimitives.ReadUInt32LittleEndian(body[16..]);
        if (!_handles.TryGetValue(fh, out OpenHandle? handle))
        {
            ReplyError(h.Unique, 9); // EBADF
            return;
        }

        // Like seq_file: the attribute's show() runs when reading starts at 0; later chunks come from it.
        byte[]? content = handle.Content;
        if (offset == 0 || content is null)
        {
            int errno = _fs.Read(handle.Path, cancel, out byte[] fresh);
            if (errno != 0)
            {
                ReplyError(h.Unique, errno);
                return;
            }

            handle.Content = content = fresh;
        }

        int start = (int)Math.Min(offset, content.Length);
        int count = Math.Min(size, content.Length - start);
        Reply(h.Unique, 0, content.AsSpan(start, count));
    }

    private void HandleWrite(FuseInHeader h, ReadOnlySpan<byte> body, CancellationToken cancel)
    {
        ulong fh = BinaryPrimitives.ReadUInt64LittleEndian(body);
        int size = (int)BinaryPrimitives.ReadUInt32LittleEndian(body[16..]);
        if (!_handles.TryGetValue(fh, out OpenHandle? handle))
        {
            ReplyError(h.Unique, 9);
            return;
        }

        ReadOnlySpan<byte> data = body.Slice(40, Math.Min(size, body.Length - 40));
        int errno = _fs.Write(handle.Path, data, cancel, out int accepted);
        if (errno != 0)
        {
            ReplyError(h.Unique, errno);
            return;
        }

        Span<byte> payload = stackalloc byte[8];
        var w = new FuseWriter(payload);
        w.U32((uint)accepted);
        w.U32(0);
        Reply(h.Unique, 0, payload);
    }

    private void HandleOpenDir(FuseInHeader h)
    {
        string? path = _nodes.PathOf(h.NodeId);
        IReadOnlyList<FsDirEntry>? children = path is null ? null : _fs.ReadDirectory(path);
        if (children is null)
        {
            ReplyError(h.Unique, path is null ? ENoEnt : 20); // ENOTDIR
            return;
        }

        // The listing is fixed at opendir so that offsets stay meaningful across READDIR calls.
        var entries = new List<(string, FsKind)>(children.Count + 2) { (".", FsKind.Directory), ("..", FsKind.Directory) };
        entries.AddRange(children.Select(c => (c.Name, c.Kind)));
        ReplyOpen(h.Unique, new OpenHandle(path!) { Entries = entries });
    }

    private void HandleReadDir(FuseInHeader h, ReadOnlySpan<byte> body)
    {
        ulong fh = BinaryPrimitives.ReadUInt64LittleEndian(body);
        long offset = (long)BinaryPrimitives.ReadUInt64LittleEndian(body[8..]);
        int size = (int)BinaryPrimitives.ReadUInt32LittleEndian(body[16..]);
        if (!_handles.TryGetValue(fh, out OpenHandle? handle) || handle.Entries is null)
        {
            ReplyError(h.Unique, 9);
            return;
        }

        byte[] payload = new byte[size];
        int pos = 0;
        for (int i = (int)offset; i < handle.Entries.Count; i++)
        {
            (string name, FsKind kind) = handle.Entries[i];
            byte[] nameBytes = Encoding.UTF8.GetBytes(name);
            int recordLength = (24 + nameBytes.Length + 7) & ~7;
            if (pos + recordLength > size)
            {
                break;
            }

            var w = new FuseWriter(payload.AsSpan(pos, recordLength));
            w.U64(Ino(ChildPath(handle.Path, name)));
            w.U64((ulong)(i + 1));
            w.U32((uint)nameBytes.Length);
            w.U32(kind switch { FsKind.Directory => FuseProtocol.DtDir, FsKind.Symlink => FuseProtocol.DtLnk, _ => FuseProtocol.DtReg });
            w.Bytes(nameBytes);
            w.Zeros(recordLength - w.Length);
            pos += recordLength;
        }

        Reply(h.Unique, 0, payload.AsSpan(0, pos));
    }

    /// <summary>A stable inode number for getdents (FNV-1a of the path); stat reports the node id.</summary>
    private static ulong Ino(string path)
    {
        ulong hash = 14695981039346656037;
        foreach (char c in path)
        {
            hash = (hash ^ c) * 1099511628211;
        }

        return hash | 1;
    }

    private void HandleAccess(FuseInHeader h, ReadOnlySpan<byte> body)
    {
        string? path = _nodes.PathOf(h.NodeId);
        FsNodeInfo? info = path is null ? null : _fs.Lookup(path);
        if (info is null)
        {
            ReplyError(h.Unique, ENoEnt);
            return;
        }

        uint mask = BinaryPrimitives.ReadUInt32LittleEndian(body);
        int perms = info.Value.Permissions;
        bool ok = h.Uid == 0
            ? (mask & 1) == 0 || info.Value.Kind == FsKind.Directory || (perms & 0x49) != 0
            : ((mask & 4) == 0 || (perms & 0x4) != 0) && ((mask & 2) == 0 || (perms & 0x2) != 0) && ((mask & 1) == 0 || (perms & 0x1) != 0);
        ReplyError(h.Unique, ok ? 0 : EAcces);
    }

    private void HandleStatFs(FuseInHeader h)
    {
        Span<byte> payload = stackalloc byte[80];
        var w = new FuseWriter(payload);
        w.Zeros(40);        // blocks, bfree, bavail, files, ffree
        w.U32(4096);        // bsize
        w.U32(255);         // namelen
        w.U32(4096);        // frsize
        w.Zeros(28);
        Reply(h.Unique, 0, payload);
    }

    private void HandleListXAttr(FuseInHeader h, ReadOnlySpan<byte> body)
    {
        uint size = BinaryPrimitives.ReadUInt32LittleEndian(body);
        if (size == 0)
        {
            Span<byte> payload = stackalloc byte[8];
            payload.Clear();
            Reply(h.Unique, 0, payload);
        }
        else
        {
            Reply(h.Unique, 0, []);
        }
    }

    private void ReplyError(ulong unique, int errno) => Reply(unique, errno, []);

    private void Reply(ulong unique, int errno, ReadOnlySpan<byte> payload)
    {
        int length = FuseProtocol.OutHeaderSize + (errno == 0 ? payload.Length : 0);
        byte[] message = new byte[length];
        BinaryPrimitives.WriteUInt32LittleEndian(message, (uint)length);
        BinaryPrimitives.WriteInt32LittleEndian(message.AsSpan(4), -errno);
        BinaryPrimitives.WriteUInt64LittleEndian(message.AsSpan(8), unique);
        if (errno == 0)
        {
            payload.CopyTo(message.AsSpan(FuseProtocol.OutHeaderSize));
        }

        // ENOENT here means the request was aborted meanwhile (its caller died): nothing to do.
        FuseNative.WriteAll(_fd, message);
    }
}
