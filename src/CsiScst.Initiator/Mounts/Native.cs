using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace CsiScst.Initiator.Mounts;

/// <summary>File-system statistics of a mounted volume (statvfs(3)).</summary>
public sealed record FsStats(long TotalBytes, long FreeBytes, long AvailableBytes, long TotalInodes, long FreeInodes)
{
    public long UsedBytes => TotalBytes - FreeBytes;
    public long UsedInodes => TotalInodes - FreeInodes;
}

/// <summary>The parts of statx(2) the node needs: type, owner, mode and device numbers.</summary>
public sealed record FileStatus(uint Mode, uint Uid, uint Gid, uint RdevMajor, uint RdevMinor, uint DevMajor, uint DevMinor)
{
    private const uint TypeMask = 0xF000;
    public bool IsBlockDevice => (Mode & TypeMask) == 0x6000;
    public bool IsDirectory => (Mode & TypeMask) == 0x4000;
    public bool IsRegularFile => (Mode & TypeMask) == 0x8000;
    public bool IsSymlink => (Mode & TypeMask) == 0xA000;
}

/// <summary>
/// The few libc calls .NET has no API for. Structures are read at fixed offsets: statx's layout is the
/// same on every architecture, and statvfs's is the same on the 64-bit ones we ship (x64, arm64).
/// </summary>
public static partial class Native
{
    private const int AtFdCwd = -100;
    private const int AtSymlinkNoFollow = 0x100;
    private const uint StatxBasicStats = 0x7ff;
    private const int OpenReadOnlyCloseOnExec = 0x80000;
    public const int EIO = 5;
    public const int ENOENT = 2;

    public static FsStats StatFs(string path)
    {
        Span<byte> buffer = stackalloc byte[256];
        if (statvfs(path, ref MemoryMarshal.GetReference(buffer)) != 0)
        {
            throw Error("statvfs", path);
        }
        var fragment = (long)U64(buffer, 8);
        return new FsStats(
            TotalBytes: (long)U64(buffer, 16) * fragment,
            FreeBytes: (long)U64(buffer, 24) * fragment,
            AvailableBytes: (long)U64(buffer, 32) * fragment,
            TotalInodes: (long)U64(buffer, 40),
            FreeInodes: (long)U64(buffer, 48));
    }

    /// <summary>lstat-like (does not follow a final symlink); null when the path does not exist.</summary>
    public static FileStatus? Stat(string path)
    {
        Span<byte> buffer = stackalloc byte[256];
        if (statx(AtFdCwd, path, AtSymlinkNoFollow, StatxBasicStats, ref MemoryMarshal.GetReference(buffer)) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            if (errno == ENOENT)
            {
                return null;
            }
            throw Error("statx", path, errno);
        }
        return new FileStatus(
            Mode: BinaryPrimitives.ReadUInt16LittleEndian(buffer[28..]),
            Uid: U32(buffer, 20),
            Gid: U32(buffer, 24),
            RdevMajor: U32(buffer, 128),
            RdevMinor: U32(buffer, 132),
            DevMajor: U32(buffer, 136),
            DevMinor: U32(buffer, 140));
    }

    /// <summary>Changes the group of a file without following symlinks (uid unchanged).</summary>
    public static void ChangeGroup(string path, uint gid)
    {
        if (lchown(path, uint.MaxValue, gid) != 0)
        {
            throw Error("lchown", path);
        }
    }

    /// <summary>
    /// Opens and closes a path: the cheapest way to learn whether a filesystem still answers (a shut
    /// down XFS fails every open with EIO). Returns 0 or the errno.
    /// </summary>
    public static int ProbeOpen(string path)
    {
        var fd = open(path, OpenReadOnlyCloseOnExec);
        if (fd < 0)
        {
            return Marshal.GetLastPInvokeError();
        }
        close(fd);
        return 0;
    }

    /// <summary>
    /// realpath(3): every symlink resolved, including in parent directories (sysfs paths such as
    /// /sys/class/block/sdb/device are links inside links, which lexical resolution gets wrong).
    /// Null when the path does not exist.
    /// </summary>
    public static unsafe string? RealPath(string path)
    {
        var buffer = stackalloc byte[4097];
        var result = realpath(path, buffer);
        return result == null ? null : System.Text.Encoding.UTF8.GetString(System.Runtime.InteropServices.MemoryMarshal.CreateReadOnlySpanFromNullTerminated(result));
    }

    private static ulong U64(ReadOnlySpan<byte> buffer, int offset) =>
        BitConverter.IsLittleEndian ? BinaryPrimitives.ReadUInt64LittleEndian(buffer[offset..]) : BinaryPrimitives.ReadUInt64BigEndian(buffer[offset..]);

    private static uint U32(ReadOnlySpan<byte> buffer, int offset) =>
        BitConverter.IsLittleEndian ? BinaryPrimitives.ReadUInt32LittleEndian(buffer[offset..]) : BinaryPrimitives.ReadUInt32BigEndian(buffer[offset..]);

    private static IOException Error(string call, string path, int? errno = null)
    {
        var code = errno ?? Marshal.GetLastPInvokeError();
        return new IOException($"{call}({path}) failed: {Marshal.GetPInvokeErrorMessage(code)} (errno {code})", code);
    }

    [LibraryImport("libc", EntryPoint = "statvfs", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int statvfs(string path, ref byte buffer);

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int statx(int dirfd, string path, int flags, uint mask, ref byte buffer);

    [LibraryImport("libc", EntryPoint = "lchown", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int lchown(string path, uint owner, uint group);

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "realpath", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial byte* realpath(string path, byte* resolved);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int close(int fd);
}
