using System.Runtime.InteropServices;

namespace CsiScst.ScstModel.Fuse;

/// <summary>The few libc calls the FUSE transport needs: the device, mount(2) and umount2(2).</summary>
internal static unsafe partial class FuseNative
{
    public const int ORdWr = 2;
    public const int ONonBlock = 0x800;
    public const int OCloExec = 0x80000;

    public const short PollIn = 0x1;

    public const ulong MsNoSuid = 2;
    public const ulong MsNoDev = 4;
    public const int MntDetach = 2;

    [StructLayout(LayoutKind.Sequential)]
    public struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "read", SetLastError = true)]
    public static partial nint Read(int fd, byte* buffer, nuint count);

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    public static partial nint Write(int fd, byte* buffer, nuint count);

    [LibraryImport("libc", EntryPoint = "poll", SetLastError = true)]
    public static partial int Poll(PollFd* fds, nuint count, int timeoutMs);

    [LibraryImport("libc", EntryPoint = "mount", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Mount(string source, string target, string fsType, ulong flags, string data);

    [LibraryImport("libc", EntryPoint = "umount2", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Umount2(string target, int flags);

    public static int Errno => Marshal.GetLastPInvokeError();

    public static nint WriteAll(int fd, ReadOnlySpan<byte> data)
    {
        fixed (byte* p = data)
        {
            return Write(fd, p, (nuint)data.Length);
        }
    }
}
