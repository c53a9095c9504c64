using CsiScst.Initiator.Devices;
using CsiScst.Initiator.Mounts;

namespace CsiScst.Csi.Node;

/// <summary>How a staged volume looks in the mount table.</summary>
public enum StagedKind
{
    None,
    /// <summary>The filesystem is mounted on the staging path.</summary>
    Filesystem,
    /// <summary>The block device is bind-mounted on a file inside the staging path.</summary>
    Block,
}

/// <summary>What is at a staging path, as found in mountinfo (and, for block volumes, statx).</summary>
public sealed record StagedVolume(StagedKind Kind, MountEntry? Mount, string MountPoint, DeviceNumber? Device)
{
    public static readonly StagedVolume Nothing = new(StagedKind.None, null, "", null);
}

/// <summary>
/// The on-node layout of staged and published volumes, recovered from the system on every call
/// (never from memory), so a restarted plugin finds exactly what its predecessor left:
/// filesystem volumes are mounted on staging_target_path and bind-mounted on each target_path; block
/// volumes are bind-mounted on the file staging_target_path/device and from there on each target file.
/// </summary>
public static class VolumeLayout
{
    /// <summary>The file a block volume's device is bind-mounted on, inside the staging path.</summary>
    public const string BlockStagingFile = "device";

    public static string BlockFile(string stagingPath) => Path.Join(Mounter.Normalize(stagingPath), BlockStagingFile);

    public static StagedVolume Inspect(IReadOnlyList<MountEntry> mounts, string stagingPath)
    {
        var blockFile = BlockFile(stagingPath);
        if (Mounter.MountAt(mounts, blockFile) is { } block)
        {
            return new StagedVolume(StagedKind.Block, block, blockFile, DeviceNodeOf(blockFile));
        }
        var staging = Mounter.Normalize(stagingPath);
        if (Mounter.MountAt(mounts, staging) is { } fs)
        {
            return new StagedVolume(StagedKind.Filesystem, fs, staging, fs.Device);
        }
        return StagedVolume.Nothing;
    }

    /// <summary>The device number a block-device file (or a bind mount of one) refers to.</summary>
    public static DeviceNumber? DeviceNodeOf(string path)
    {
        var status = Native.Stat(path);
        return status is { IsBlockDevice: true } ? new DeviceNumber(status.RdevMajor, status.RdevMinor) : null;
    }

    /// <summary>
    /// Mounts that make a device busy: filesystem mounts of it, and bind mounts of its device node
    /// (found on devtmpfs/tmpfs mounts whose root is a file, e.g. "/sdb"). Only those are stat'ed, so a
    /// hung network mount elsewhere on the node can never block us.
    /// </summary>
    public static IEnumerable<(MountEntry Mount, DeviceNumber Device)> DeviceUsers(IReadOnlyList<MountEntry> mounts)
    {
        foreach (var mount in mounts)
        {
            if (mount.Root != "/" && mount.FsType is "devtmpfs" or "tmpfs")
            {
                DeviceNumber? node = null;
                try
                {
                    node = DeviceNodeOf(mount.MountPoint);
                }
                catch (IOException)
                {
                    // A mount point we cannot stat is not a device node we created.
                }
                if (node is { } number)
                {
                    yield return (mount, number);
                    continue;
                }
            }
            yield return (mount, mount.Device);
        }
    }
}
