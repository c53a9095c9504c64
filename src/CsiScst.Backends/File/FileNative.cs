using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace CsiScst.Backends.File;

/// <summary>
/// The few Linux calls .NET does not expose: statfs (capacity, block size, filesystem type), statx
/// (allocated blocks, birth time), FICLONE (reflink), SEEK_DATA/SEEK_HOLE and copy_file_range (sparse
/// copies), fsync. Source-generated P/Invoke, so Native AOT compatible.
/// </summary>
internal static partial class FileNative
{
    public const int ENOENT = 2;
    public const int EPERM = 1;
    public const int EXDEV = 18;
    public const int EINVAL = 22;
    public const int ENOTTY = 25;
    public const int ENOSPC = 28;
    public const int ENOSYS = 38;
    public const int EOPNOTSUPP = 95;
    public const int ENXIO = 6;
    public const int EDQUOT = 122;

    // _IOW(0x94, 9, int)
    private const ulong FICLONE = 0x40049409;
    private const int SEEK_DATA = 3;
    private const int SEEK_HOLE = 4;
    private const int AT_FDCWD = -100;
    private const int AT_SYMLINK_NOFOLLOW = 0x100;
    private const uint STATX_BASIC_STATS = 0x7ff;
    private const uint STATX_BTIME = 0x800;

    public readonly record struct FsStats(long TotalBytes, long AvailableBytes, long BlockSize, long FsType)
    {
        public string FsName => FsType switch
        {
            0x58465342 => "xfs",
            0x9123683E => "btrfs",
            0xEF53 => "ext4",
            0x01021994 => "tmpfs",
            0x6969 => "nfs",
            0x65735546 => "fuse",
            0x2FC12FC1 => "zfs",
            0x794C7630 => "overlayfs",
            _ => $"0x{FsType:x}",
        };
    }

    public readonly record struct FileStats(long Size, long AllocatedBytes, DateTimeOffset Created);

    /// <summary>statfs(2) of the filesystem holding <paramref name="path"/>.</summary>
    public static FsStats StatFs(string path)
    {
        // struct statfs on 64-bit Linux (x86_64, arm64): 120 bytes of 8-byte fields:
        // f_type, f_bsize, f_blocks, f_bfree, f_bavail, f_files, f_ffree, f_fsid, f_namelen, f_frsize, f_flags, f_spare[4].
        Span<byte> buffer = stackalloc byte[128];
        if (StatFsNative(path, ref MemoryMarshal.GetReference(buffer)) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            if (errno == ENOENT)
            {
                throw new DirectoryNotFoundException($"statfs {path}: {Marshal.GetPInvokeErrorMessage(errno)}");
            }
            throw Error("statfs", path, errno);
        }
        var type = Field(buffer, 0);
        var bsize = Field(buffer, 1);
        var frsize = Field(buffer, 9);
        if (frsize <= 0)
        {
            frsize = bsize;
        }
        return new FsStats(Field(buffer, 2) * frsize, Field(buffer, 4) * frsize, bsize, type);
    }

    private static long Field(ReadOnlySpan<byte> buffer, int index) => BinaryPrimitives.ReadInt64LittleEndian(buffer[(index * 8)..]);

    /// <summary>statx(2) without following symlinks; null when the path does not exist.</summary>
    public static FileStats? Stat(string path)
    {
        // struct statx is the same on every architecture (256 bytes): stx_size at 40, stx_blocks at 48
        // (512-byte units), stx_btime at 80, stx_mtime at 112 (tv_sec s64, tv_nsec u32).
        Span<byte> buffer = stackalloc byte[256];
        if (StatX(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS | STATX_BTIME, ref MemoryMarshal.GetReference(buffer)) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            if (errno == ENOENT)
            {
                return null;
            }
            throw Error("statx", path, errno);
        }
        var mask = BinaryPrimitives.ReadUInt32LittleEndian(buffer);
        var size = BinaryPrimitives.ReadInt64LittleEndian(buffer[40..]);
        var blocks = BinaryPrimitives.ReadInt64LittleEndian(buffer[48..]);
        var timeOffset = (mask & STATX_BTIME) != 0 ? 80 : 112;
        var seconds = BinaryPrimitives.ReadInt64LittleEndian(buffer[timeOffset..]);
        var nanos = BinaryPrimitives.ReadUInt32LittleEndian(buffer[(timeOffset + 8)..]);
        var created = DateTimeOffset.FromUnixTimeSeconds(seconds).AddTicks(nanos / 100);
        return new FileStats(size, blocks * 512, created);
    }

    /// <summary>FICLONE: the destination shares the source's extents. Returns 0 or the errno.</summary>
    public static int TryReflink(SafeFileHandle source, SafeFileHandle destination)
    {
        var result = Ioctl((int)destination.DangerousGetHandle(), FICLONE, (nint)source.DangerousGetHandle());
        return result == 0 ? 0 : Marshal.GetLastPInvokeError();
    }

    public static bool IsReflinkUnsupported(int errno) =>
        errno is EOPNOTSUPP or EXDEV or EINVAL or ENOTTY or ENOSYS or EPERM;

    /// <summary>Start of the next data region at or after <paramref name="offset"/>, or -1 at the end of the data.</summary>
    public static long SeekData(SafeFileHandle handle, long offset)
    {
        var result = LSeek((int)handle.DangerousGetHandle(), offset, SEEK_DATA);
        if (result < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            if (errno == ENXIO)
            {
                return -1;
            }
            throw Error("lseek(SEEK_DATA)", "", errno);
        }
        return result;
    }

    public static long SeekHole(SafeFileHandle handle, long offset)
    {
        var result = LSeek((int)handle.DangerousGetHandle(), offset, SEEK_HOLE);
        if (result < 0)
        {
            throw Error("lseek(SEEK_HOLE)", "");
        }
        return result;
    }

    /// <summary>copy_file_range(2); returns bytes copied (0 at EOF) or -errno.</summary>
    public static long CopyRange(SafeFileHandle source, ref long sourceOffset, SafeFileHandle destination, ref long destinationOffset, long length)
    {
        var result = CopyFileRange((int)source.DangerousGetHandle(), ref sourceOffset, (int)destination.DangerousGetHandle(), ref destinationOffset, (nuint)length, 0);
        return result >= 0 ? result : -Marshal.GetLastPInvokeError();
    }

    public static void FSync(SafeFileHandle handle, string path)
    {
        if (Fsync((int)handle.DangerousGetHandle()) != 0)
        {
            throw Error("fsync", path);
        }
    }

    /// <summary>The errno carried by an IOException from .NET's file APIs (it stores the raw errno as HResult on Unix).</summary>
    public static bool IsOutOfSpace(IOException e) =>
        e.HResult is ENOSPC or EDQUOT || e.Message.Contains("No space left", StringComparison.Ordinal);

    public static IOException Error(string call, string path, int? errno = null)
    {
        var code = errno ?? Marshal.GetLastPInvokeError();
        var text = Marshal.GetPInvokeErrorMessage(code);
        return new IOException(path.Length == 0 ? $"{call}: {text}" : $"{call} {path}: {text}", code);
    }

    [LibraryImport("libc", EntryPoint = "statfs", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int StatFsNative(string path, ref byte buffer);

    [LibraryImport("libc", EntryPoint = "statx", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int StatX(int dirfd, string path, int flags, uint mask, ref byte buffer);

    [LibraryImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    private static partial int Ioctl(int fd, ulong request, nint argument);

    [LibraryImport("libc", EntryPoint = "lseek", SetLastError = true)]
    private static partial long LSeek(int fd, long offset, int whence);

    [LibraryImport("libc", EntryPoint = "copy_file_range", SetLastError = true)]
    private static partial nint CopyFileRange(int fdIn, ref long offIn, int fdOut, ref long offOut, nuint length, uint flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int Fsync(int fd);
}
