namespace CsiScst.Targets.Lio;

public enum ConfigfsEntryKind
{
    File,
    Directory,
    Symlink,
}

public readonly record struct ConfigfsEntry(string Name, ConfigfsEntryKind Kind);

/// <summary>
/// The system calls the LIO engine makes on configfs. Every mutating call returns 0 or the exact errno the
/// kernel gave (configfs reports LIO's refusals only through errno: EEXIST, EINVAL, EBUSY, ENODEV …), so the
/// engine can tell "already there" and "already gone" from real failures. Two implementations: the real one
/// (<see cref="LinuxConfigfs"/>) and, in tests, a wrapper that plays the kernel's part on a plain directory.
/// </summary>
public interface IConfigfs
{
    /// <summary>mkdir(2). In configfs this creates a LIO object (backstore, target, TPG, LUN, ACL, portal).</summary>
    int MakeDirectory(string path);

    /// <summary>rmdir(2). In configfs this deletes the object (and can block while LIO closes sessions).</summary>
    int RemoveDirectory(string path);

    /// <summary>symlink(2): <paramref name="linkPath"/> pointing at <paramref name="target"/> (LUN → backstore, mapped LUN → LUN).</summary>
    int CreateSymlink(string target, string linkPath);

    /// <summary>unlink(2) of a symlink.</summary>
    int RemoveLink(string path);

    /// <summary>One write(2) of the whole value to an attribute (no trailing newline is added).</summary>
    int Write(string path, string value);

    /// <summary>Reads an attribute; errno 0 on success.</summary>
    (int Errno, string Value) Read(string path);

    /// <summary>readlink(2), or null when the path is not a symlink.</summary>
    string? ReadLink(string path);

    /// <summary>The entries of a directory (none when it does not exist).</summary>
    IReadOnlyList<ConfigfsEntry> List(string path);

    bool DirectoryExists(string path);
}
