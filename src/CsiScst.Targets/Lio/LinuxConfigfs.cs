using System.Runtime.InteropServices;
using System.Text;

namespace CsiScst.Targets.Lio;

/// <summary>
/// configfs through raw system calls: .NET's file APIs turn errno into exception types (EPERM →
/// UnauthorizedAccessException, ENOENT → FileNotFoundException …), may buffer or split writes and cannot
/// make directories without creating parents; LIO needs one write(2) per attribute store and reports every
/// refusal through errno alone.
/// </summary>
public sealed unsafe partial class LinuxConfigfs : IConfigfs
{
    private const int O_RDONLY = 0;
    private const int O_WRONLY = 1;
    private const int O_CLOEXEC = 0x80000;
    // configfs attributes are at most one page; bigger reads are not attributes we use.
    private const int MaxRead = 64 * 1024;

    public int MakeDirectory(string path) => Retry(() => MkdirNative(path, 0x1ED /* 0755 */));

    public int RemoveDirectory(string path) => Retry(() => RmdirNative(path));

    public int CreateSymlink(string target, string linkPath) => Retry(() => SymlinkNative(target, linkPath));

    public int RemoveLink(string path) => Retry(() => UnlinkNative(path));

    public int Write(string path, string value)
    {
        var fd = Open(path, O_WRONLY);
        if (fd < 0)
        {
            return -fd;
        }
        try
        {
            var bytes = Encoding.UTF8.GetBytes(value);
            while (true)
            {
                long written;
                fixed (byte* pointer = bytes)
                {
                    written = WriteNative(fd, pointer, (nuint)bytes.Length);
                }
                if (written >= 0)
                {
                    // A store handler consumes the whole buffer or fails; a short count would mean a split store.
                    return written == bytes.Length ? 0 : LioErrno.EIO;
                }
                var errno = Marshal.GetLastPInvokeError();
                if (errno != LioErrno.EINTR)
                {
                    return errno;
                }
            }
        }
        finally
        {
            _ = CloseNative(fd);
        }
    }

    public (int Errno, string Value) Read(string path)
    {
        var fd = Open(path, O_RDONLY);
        if (fd < 0)
        {
            return (-fd, "");
        }
        try
        {
            var buffer = new byte[8192];
            var total = 0;
            while (true)
            {
                if (total == buffer.Length)
                {
                    if (buffer.Length >= MaxRead)
                    {
                        break;
                    }
                    Array.Resize(ref buffer, buffer.Length * 2);
                }
                long read;
                fixed (byte* pointer = buffer)
                {
                    read = ReadNative(fd, pointer + total, (nuint)(buffer.Length - total));
                }
                if (read == 0)
                {
                    break;
                }
                if (read < 0)
                {
                    var errno = Marshal.GetLastPInvokeError();
                    if (errno == LioErrno.EINTR)
                    {
                        continue;
                    }
                    return (errno, "");
                }
                total += (int)read;
            }
            return (0, Encoding.UTF8.GetString(buffer, 0, total));
        }
        finally
        {
            _ = CloseNative(fd);
        }
    }

    public string? ReadLink(string path)
    {
        try
        {
            return new FileInfo(path).LinkTarget;
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }

    public IReadOnlyList<ConfigfsEntry> List(string path)
    {
        var entries = new List<ConfigfsEntry>();
        try
        {
            // readdir's d_type tells the kind without a stat per entry.
            foreach (var info in new DirectoryInfo(path).EnumerateFileSystemInfos())
            {
                var kind = info.LinkTarget is not null ? ConfigfsEntryKind.Symlink
                    : (info.Attributes & FileAttributes.Directory) != 0 ? ConfigfsEntryKind.Directory
                    : ConfigfsEntryKind.File;
                entries.Add(new ConfigfsEntry(info.Name, kind));
            }
        }
        catch (DirectoryNotFoundException)
        {
            // A missing directory has no entries: callers treat the object as absent.
        }
        entries.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));
        return entries;
    }

    public bool DirectoryExists(string path) => Directory.Exists(path);

    private static int Open(string path, int flags)
    {
        while (true)
        {
            var fd = OpenNative(path, flags | O_CLOEXEC);
            if (fd >= 0)
            {
                return fd;
            }
            var errno = Marshal.GetLastPInvokeError();
            if (errno != LioErrno.EINTR)
            {
                return -errno;
            }
        }
    }

    private static int Retry(Func<int> call)
    {
        while (true)
        {
            if (call() == 0)
            {
                return 0;
            }
            var errno = Marshal.GetLastPInvokeError();
            if (errno != LioErrno.EINTR)
            {
                return errno;
            }
        }
    }

    [LibraryImport("libc", EntryPoint = "mkdir", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int MkdirNative(string path, uint mode);

    [LibraryImport("libc", EntryPoint = "rmdir", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int RmdirNative(string path);

    [LibraryImport("libc", EntryPoint = "symlink", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int SymlinkNative(string target, string linkPath);

    [LibraryImport("libc", EntryPoint = "unlink", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int UnlinkNative(string path);

    [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int OpenNative(string path, int flags);

    [LibraryImport("libc", EntryPoint = "read", SetLastError = true)]
    private static partial nint ReadNative(int fd, byte* buffer, nuint count);

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    private static partial nint WriteNative(int fd, byte* buffer, nuint count);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int CloseNative(int fd);
}
