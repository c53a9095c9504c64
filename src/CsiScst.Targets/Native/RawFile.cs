using System.Runtime.InteropServices;

namespace CsiScst.Targets.Native;

/// <summary>
/// Raw open/read/write/close so that the kernel's errno reaches us unchanged: .NET's file APIs turn
/// errno values into exception types (EPERM → UnauthorizedAccessException …) and may split or buffer
/// writes, while SCST's sysfs and LIO's configfs need exactly one write(2) per value and report
/// everything through errno.
/// </summary>
internal static unsafe partial class RawFile
{
    public const int O_RDONLY = 0;
    public const int O_WRONLY = 1;
    public const int O_CLOEXEC = 0x80000;

    [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int OpenNative(string path, int flags);

    [LibraryImport("libc", EntryPoint = "read", SetLastError = true)]
    private static partial nint ReadNative(int fd, byte* buffer, nuint count);

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    private static partial nint WriteNative(int fd, byte* buffer, nuint count);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int CloseNative(int fd);


    /// <summary>Opens a file; returns the descriptor or the negated errno.</summary>
    public static int Open(string path, int flags)
    {
        while (true)
        {
            var fd = OpenNative(path, flags | O_CLOEXEC);
            if (fd >= 0)
            {
                return fd;
            }
            var errno = Marshal.GetLastPInvokeError();
            if (errno != Errno.EINTR)
            {
                return -errno;
            }
        }
    }

    /// <summary>One write(2) of the whole buffer; returns bytes written or the negated errno (EINTR included: the caller decides).</summary>
    public static long Write(int fd, ReadOnlySpan<byte> data)
    {
        fixed (byte* pointer = data)
        {
            var written = WriteNative(fd, pointer, (nuint)data.Length);
            return written >= 0 ? written : -Marshal.GetLastPInvokeError();
        }
    }

    /// <summary>Reads until end of file (sysfs attributes are at most a page); returns bytes or the negated errno.</summary>
    public static int ReadAll(int fd, Span<byte> buffer)
    {
        var total = 0;
        fixed (byte* pointer = buffer)
        {
            while (total < buffer.Length)
            {
                var read = ReadNative(fd, pointer + total, (nuint)(buffer.Length - total));
                if (read == 0)
                {
                    break;
                }
                if (read < 0)
                {
                    var errno = Marshal.GetLastPInvokeError();
                    if (errno == Errno.EINTR)
                    {
                        continue;
                    }
                    return -errno;
                }
                total += (int)read;
            }
        }
        return total;
    }

    public static void Close(int fd) => _ = CloseNative(fd);

}
