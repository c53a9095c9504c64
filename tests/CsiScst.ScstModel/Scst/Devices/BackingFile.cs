using System.Runtime.InteropServices;

namespace CsiScst.ScstModel.Scst.Devices;

/// <summary>
/// Opens the backing file of a vdisk on the real host, as vdisk_get_file_size does: a missing path is
/// ENOENT. Deviation (the host has no SCSI/device-mapper): vdisk_blockio also takes a regular file;
/// a loop device (or any block device) is sized with BLKGETSIZE64.
/// </summary>
internal static unsafe partial class BackingFile
{
    private const int ORdOnly = 0;
    private const int OCloExec = 0x80000;
    private const ulong BlkGetSize64 = 0x80081272;

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    private static partial int Ioctl(int fd, ulong request, ulong* arg);

    /// <summary>0 and the size in bytes, or an errno.</summary>
    public static int Probe(string path, out long size)
    {
        size = 0;
        if (Directory.Exists(path))
        {
            return Errno.EISDIR;
        }

        int fd = Open(path, ORdOnly | OCloExec);
        if (fd < 0)
        {
            return Marshal.GetLastPInvokeError();
        }

        try
        {
            ulong bytes;
            if (Ioctl(fd, BlkGetSize64, &bytes) == 0)
            {
                size = (long)bytes;
                return 0;
            }

            size = new FileInfo(path).Length;
            return 0;
        }
        finally
        {
            Close(fd);
        }
    }
}
