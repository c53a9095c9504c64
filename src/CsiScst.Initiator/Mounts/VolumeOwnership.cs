using Microsoft.Extensions.Logging;

namespace CsiScst.Initiator.Mounts;

/// <summary>
/// VOLUME_MOUNT_GROUP: makes a volume usable by a group the way kubelet's fsGroup does (group owner,
/// group read/write, setgid directories so new files inherit the group), skipping the walk when the
/// root already has the group and the setgid bit (kubelet's OnRootMismatch policy) so large volumes
/// are not walked on every publish. Stays on the volume's filesystem and never follows symlinks.
/// </summary>
public sealed class VolumeOwnership
{
    private const UnixFileMode GroupReadWrite = UnixFileMode.GroupRead | UnixFileMode.GroupWrite;

    private readonly ILogger<VolumeOwnership> _logger;

    public VolumeOwnership(ILogger<VolumeOwnership> logger)
    {
        _logger = logger;
    }

    /// <summary>Returns the number of entries changed (0 when the root already matched).</summary>
    public Task<int> ApplyAsync(string root, uint gid, CancellationToken cancellationToken) =>
        Task.Run(() => Apply(root, gid, cancellationToken), cancellationToken);

    private int Apply(string root, uint gid, CancellationToken cancellationToken)
    {
        var rootStatus = Native.Stat(root) ?? throw new DirectoryNotFoundException($"volume root {root} does not exist");
        if (rootStatus.Gid == gid && (File.GetUnixFileMode(root) & UnixFileMode.SetGroup) != 0)
        {
            return 0;
        }
        var changed = 0;
        var pending = new Stack<string>();
        pending.Push(root);
        while (pending.Count > 0)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var directory = pending.Pop();
            changed += Fix(directory, gid, isDirectory: true);
            foreach (var entry in Directory.EnumerateFileSystemEntries(directory))
            {
                var status = Native.Stat(entry);
                if (status is null)
                {
                    continue;
                }
                if (status.IsDirectory)
                {
                    // Another filesystem mounted inside the volume is not ours to change.
                    if (status.DevMajor == rootStatus.DevMajor && status.DevMinor == rootStatus.DevMinor)
                    {
                        pending.Push(entry);
                    }
                }
                else
                {
                    changed += Fix(entry, gid, isDirectory: false, status);
                }
            }
        }
        _logger.LogInformation("Gave group {Gid} access to {Entries} entries under {Root}", gid, changed, root);
        return changed;
    }

    private static int Fix(string path, uint gid, bool isDirectory, FileStatus? status = null)
    {
        status ??= Native.Stat(path);
        if (status is null)
        {
            return 0;
        }
        Native.ChangeGroup(path, gid);
        if (status.IsSymlink)
        {
            return 1;
        }
        var mode = File.GetUnixFileMode(path);
        var wanted = mode | GroupReadWrite;
        if (isDirectory)
        {
            wanted |= UnixFileMode.GroupExecute | UnixFileMode.SetGroup;
        }
        else if ((mode & UnixFileMode.UserExecute) != 0)
        {
            wanted |= UnixFileMode.GroupExecute;
        }
        if (wanted != mode)
        {
            File.SetUnixFileMode(path, wanted);
        }
        return 1;
    }
}
