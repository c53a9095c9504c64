namespace CsiScst.ScstModel.Fuse;

/// <summary>What a path is, as far as the kernel needs to know.</summary>
internal enum FsKind
{
    Directory,
    File,
    Symlink,
}

/// <summary>Attributes of one node. <paramref name="Permissions"/> holds only the permission bits.</summary>
internal readonly record struct FsNodeInfo(FsKind Kind, int Permissions, long Size);

internal readonly record struct FsDirEntry(string Name, FsKind Kind);

/// <summary>
/// The filesystem the FUSE transport serves. Paths are relative to the mount root, '/'-separated,
/// "" being the root. Errors are positive errno values (0 = success), exactly what the caller's
/// syscall will report.
/// </summary>
internal interface IFuseFileSystem
{
    FsNodeInfo? Lookup(string path);

    /// <summary>Children of a directory (without "." and ".."), or null when it is no directory.</summary>
    IReadOnlyList<FsDirEntry>? ReadDirectory(string path);

    int ReadLink(string path, out string target);

    /// <summary>Checks an open(2) of a file for reading and/or writing.</summary>
    int Open(string path, bool read, bool write);

    /// <summary>Produces the whole content of a file, as one read of a sysfs attribute does.</summary>
    int Read(string path, CancellationToken cancel, out byte[] content);

    /// <summary>One write(2): one store of the attribute. <paramref name="accepted"/> is what write(2) returns.</summary>
    int Write(string path, ReadOnlySpan<byte> data, CancellationToken cancel, out int accepted);
}
