using System.Runtime.InteropServices;
using System.Text;

namespace CsiScst.ScstModel.Tests.Infrastructure;

/// <summary>
/// open/read/write/close through P/Invoke, so a test sees the errno of each syscall exactly as the
/// engine will (interfaces.md A.3: .NET's own file APIs turn some errno values into exception types).
/// </summary>
internal static unsafe partial class Sys
{
    public const int ORdOnly = 0;
    public const int OWrOnly = 1;
    public const int ORdWr = 2;
    public const int OCreat = 0x40;
    public const int OTrunc = 0x200;
    public const int OCloExec = 0x80000;

    public const int EPERM = 1;
    public const int ENOENT = 2;
    public const int EINTR = 4;
    public const int EIO = 5;
    public const int EAGAIN = 11;
    public const int EACCES = 13;
    public const int EBUSY = 16;
    public const int EEXIST = 17;
    public const int ENODEV = 19;
    public const int EISDIR = 21;
    public const int EINVAL = 22;
    public const int ERANGE = 34;
    public const int EBADSLT = 57;
    public const int ENOTCONN = 107;
    public const int EMEDIUMTYPE = 124;

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int OpenNative(string path, int flags, int mode);

    [LibraryImport("libc", EntryPoint = "read", SetLastError = true)]
    private static partial nint ReadNative(int fd, byte* buffer, nuint count);

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    private static partial nint WriteNative(int fd, byte* buffer, nuint count);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int CloseNative(int fd);

    [LibraryImport("libc", EntryPoint = "mkdir", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int MkdirNative(string path, int mode);

    [LibraryImport("libc", EntryPoint = "unlink", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int UnlinkNative(string path);

    private static int Errno => Marshal.GetLastPInvokeError();

    /// <summary>open(2): the fd, or -errno.</summary>
    public static int Open(string path, int flags)
    {
        int fd = OpenNative(path, flags | OCloExec, 0x1A4);
        return fd >= 0 ? fd : -Errno;
    }

    public static void Close(int fd) => CloseNative(fd);

    /// <summary>One write(2) of the whole text on an open fd: 0 or the errno.</summary>
    public static int WriteFd(int fd, string text)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(text);
        fixed (byte* p = bytes)
        {
            nint n = WriteNative(fd, p, (nuint)bytes.Length);
            return n < 0 ? Errno : 0;
        }
    }

    /// <summary>open(O_WRONLY) + one write(2) + close, as echo does: 0 or the errno of the failing call.</summary>
    public static int Write(string path, string text, int extraFlags = 0)
    {
        int fd = Open(path, OWrOnly | extraFlags);
        if (fd < 0)
        {
            return -fd;
        }

        try
        {
            return WriteFd(fd, text);
        }
        finally
        {
            Close(fd);
        }
    }

    /// <summary>open(O_RDONLY) + read(2) until EOF + close: 0 or the errno of the failing call.</summary>
    public static int Read(string path, out string text)
    {
        text = "";
        int fd = Open(path, ORdOnly);
        if (fd < 0)
        {
            return -fd;
        }

        try
        {
            var all = new List<byte>();
            byte[] buffer = new byte[4096];
            while (true)
            {
                nint n;
                fixed (byte* p = buffer)
                {
                    n = ReadNative(fd, p, (nuint)buffer.Length);
                }

                if (n < 0)
                {
                    return Errno;
                }

                if (n == 0)
                {
                    break;
                }

                all.AddRange(buffer.AsSpan(0, (int)n));
            }

            text = Encoding.UTF8.GetString(all.ToArray());
            return 0;
        }
        finally
        {
            Close(fd);
        }
    }

    public static int Mkdir(string path) => MkdirNative(path, 0x1ED) == 0 ? 0 : Errno;

    public static int Unlink(string path) => UnlinkNative(path) == 0 ? 0 : Errno;
}
