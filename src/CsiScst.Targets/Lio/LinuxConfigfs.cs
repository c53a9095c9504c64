using System.Runtime.InteropServices;
using System.Text;
using CsiScst.Targets.Native;

namespace CsiScst.Targets.Lio;

/// <summary>
/// configfs through raw system calls: .NET's file APIs turn errno into exception types (EPERM →
/// UnauthorizedAccessException, ENOENT → FileNotFoundException …), may buffer or split writes and cannot
/// make directories without creating parents; LIO needs one write(2) per attribute store and reports every
/// refusal through errno alone.
/// </summary>
public sealed partial class LinuxConfigfs : IConfigfs
{
    // configfs attributes are at most one page; bigger reads are not attributes we use.
    private const int MaxRead = 64 * 1024;

    public int MakeDirectory(string path) => Retry(() => MkdirNative(path, 0x1ED /* 0755 */));

    public int RemoveDirectory(string path) => Retry(() => RmdirNative(path));

    public int CreateSymlink(string target, string linkPath) => Retry(() => SymlinkNative(target, linkPath));

    public int RemoveLink(string path) => Retry(() => UnlinkNative(path));

    public int Write(string path, string value)
    {
        var fd = RawFile.Open(path, RawFile.O_WRONLY);
        if (fd < 0)
        {
            return -fd;
        }
        try
        {
            var bytes = Encoding.UTF8.GetBytes(value);
            while (true)
            {
                var written = RawFile.Write(fd, bytes);
                if (written >= 0)
                {
                    // A store handler consumes the whole buffer or fails; a short count would mean a split store.
                    return written == bytes.Length ? 0 : Errno.EIO;
                }
                if (-written != Errno.EINTR)
                {
                    return (int)-written;
                }
            }
        }
        finally
        {
            RawFile.Close(fd);
        }
    }

    public (int Errno, string Value) Read(string path)
    {
        var fd = RawFile.Open(path, RawFile.O_RDONLY);
        if (fd < 0)
        {
            return (-fd, "");
        }
        try
        {
            var buffer = new byte[MaxRead];
            var read = RawFile.ReadAll(fd, buffer);
            return read < 0 ? (-read, "") : (0, Encoding.UTF8.GetString(buffer, 0, read));
        }
        finally
        {
            RawFile.Close(fd);
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

    private static int Retry(Func<int> call)
    {
        while (true)
        {
            if (call() == 0)
            {
                return 0;
            }
            var errno = Marshal.GetLastPInvokeError();
            if (errno != Errno.EINTR)
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
}
