using CsiScst.Core.Errors;
using CsiScst.Core.Exec;
using Microsoft.Extensions.Logging;

namespace CsiScst.Initiator.Mounts;

/// <summary>What low-level probing found on a device.</summary>
public sealed record DeviceContent(string? Type, string? Usage, string? PartitionTable, string? Uuid)
{
    public static readonly DeviceContent Blank = new(null, null, null, null);

    public bool IsBlank => Type is null && PartitionTable is null;

    public override string ToString() =>
        IsBlank ? "nothing" : PartitionTable is not null ? $"a {PartitionTable} partition table" : $"{Usage ?? "data"} of type {Type}";
}

/// <summary>Probing (blkid), creating (mkfs) and growing (resize2fs, xfs_growfs) filesystems.</summary>
public sealed class Filesystems
{
    public static readonly string[] Supported = ["ext4", "xfs"];

    private readonly IToolRunner _tools;
    private readonly MountOptions _options;
    private readonly ILogger<Filesystems> _logger;

    public Filesystems(IToolRunner tools, MountOptions options, ILogger<Filesystems> logger)
    {
        _tools = tools;
        _options = options;
        _logger = logger;
    }

    /// <summary>
    /// <c>blkid -p</c> reads the device itself (no cache). Exit 2 means no signature at all; anything
    /// else that is not a clean answer counts as "not blank", so we never format over it.
    /// </summary>
    public async Task<DeviceContent> ProbeAsync(string device, CancellationToken cancellationToken)
    {
        var command = new ToolCommand("blkid", "-p", "-o", "export", device)
        {
            Timeout = _options.CommandTimeout,
            SuccessExitCodes = [0, 2],
        };
        ToolResult result;
        try
        {
            result = await _tools.RunAsync(command, cancellationToken).ConfigureAwait(false);
        }
        catch (ToolException e)
        {
            // Exit 8: ambivalent result (several signatures). Refuse rather than guess.
            throw new StatusException(e.ExitCode == 8 ? Grpc.Core.StatusCode.FailedPrecondition : e.SuggestedStatus,
                $"probing {device} for existing data failed; refusing to format it: {e.Message}", e);
        }
        return result.ExitCode == 2 ? DeviceContent.Blank : ParseExport(result.StandardOutput);
    }

    /// <summary>Parses <c>blkid -o export</c>: KEY=value lines.</summary>
    public static DeviceContent ParseExport(string output)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var eq = line.IndexOf('=', StringComparison.Ordinal);
            if (eq > 0)
            {
                values[line[..eq]] = line[(eq + 1)..];
            }
        }
        return new DeviceContent(
            values.GetValueOrDefault("TYPE"),
            values.GetValueOrDefault("USAGE"),
            values.GetValueOrDefault("PTTYPE"),
            values.GetValueOrDefault("UUID"));
    }

    /// <summary>Creates a filesystem. Callers probe first: this never runs on a device with content.</summary>
    public async Task FormatAsync(string device, string fsType, CancellationToken cancellationToken)
    {
        // No discard: a new volume from the engine is already empty, and discarding a large LUN over
        // iSCSI can take minutes. mkfs.xfs without -f refuses an existing filesystem: a second guard.
        var command = fsType switch
        {
            "ext4" => new ToolCommand("mkfs.ext4", "-q", "-F", "-E", "nodiscard", device),
            "xfs" => new ToolCommand("mkfs.xfs", "-q", "-K", device),
            _ => throw StatusException.InvalidArgument($"fs_type '{fsType}' is not supported; use one of {string.Join(", ", Supported)}"),
        };
        try
        {
            await _tools.RunAsync(command with { Timeout = _options.FormatTimeout }, cancellationToken).ConfigureAwait(false);
        }
        catch (ToolException e)
        {
            throw new StatusException(e.SuggestedStatus, $"creating {fsType} on {device} failed: {e.Message}", e);
        }
        _logger.LogInformation("Created {FsType} on {Device}", fsType, device);
    }

    /// <summary>Grows a mounted filesystem to its device's size (both work online).</summary>
    public async Task GrowAsync(string device, string mountPoint, string fsType, CancellationToken cancellationToken)
    {
        var command = fsType switch
        {
            "ext4" or "ext3" or "ext2" => new ToolCommand("resize2fs", device),
            "xfs" => new ToolCommand("xfs_growfs", "-d", mountPoint),
            _ => throw StatusException.InvalidArgument($"cannot grow a {fsType} filesystem; supported: {string.Join(", ", Supported)}"),
        };
        try
        {
            await _tools.RunAsync(command with { Timeout = _options.FormatTimeout }, cancellationToken).ConfigureAwait(false);
        }
        catch (ToolException e)
        {
            throw new StatusException(e.SuggestedStatus, $"growing {fsType} on {device} (mounted at {mountPoint}) failed: {e.Message}", e);
        }
        _logger.LogInformation("Grew {FsType} on {Device} at {MountPoint}", fsType, device, mountPoint);
    }

    /// <summary>Writes dirty buffers of a block device (before its SCSI disk is deleted).</summary>
    public async Task FlushAsync(string device, CancellationToken cancellationToken)
    {
        try
        {
            await _tools.RunAsync(new ToolCommand("blockdev", "--flushbufs", device) { Timeout = _options.CommandTimeout }, cancellationToken).ConfigureAwait(false);
        }
        catch (ToolException e)
        {
            throw new StatusException(e.SuggestedStatus, $"flushing {device} failed: {e.Message}", e);
        }
    }
}
