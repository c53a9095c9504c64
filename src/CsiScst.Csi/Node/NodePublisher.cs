using Csi.V1;
using CsiScst.Core.Errors;
using CsiScst.Csi.Validation;
using CsiScst.Initiator.Mounts;
using Microsoft.Extensions.Logging;

namespace CsiScst.Csi.Node;

/// <summary>
/// NodePublishVolume / NodeUnpublishVolume: bind mounts from the staging path to the pod's target path
/// (a directory for filesystems, a file for block volumes), which the plugin creates and removes.
/// </summary>
public sealed class NodePublisher
{
    private readonly Mounter _mounter;
    private readonly VolumeOwnership _ownership;
    private readonly ILogger<NodePublisher> _logger;

    public NodePublisher(Mounter mounter, VolumeOwnership ownership, ILogger<NodePublisher> logger)
    {
        _mounter = mounter;
        _ownership = ownership;
        _logger = logger;
    }

    public async Task PublishAsync(NodePublishVolumeRequest request, CancellationToken cancellationToken)
    {
        var capability = request.VolumeCapability;
        var block = capability.AccessTypeCase == VolumeCapability.AccessTypeOneofCase.Block;
        var readOnly = request.Readonly || CsiValidation.IsReadOnlyMode(capability.AccessMode.Mode);
        var target = Mounter.Normalize(request.TargetPath);
        var mounts = await _mounter.ReadMountsAsync(cancellationToken).ConfigureAwait(false);

        var staged = VolumeLayout.Inspect(mounts, request.StagingTargetPath);
        if (staged.Kind == StagedKind.None)
        {
            throw StatusException.FailedPrecondition(
                $"volume {request.VolumeId} is not staged at {request.StagingTargetPath}; NodeStageVolume must succeed first");
        }
        if (block != (staged.Kind == StagedKind.Block))
        {
            throw StatusException.FailedPrecondition(
                $"volume {request.VolumeId} is staged as {(staged.Kind == StagedKind.Block ? "a block volume" : "a filesystem")} but published as {(block ? "a block volume" : "a filesystem")}");
        }

        if (Mounter.MountAt(mounts, target) is { } existing)
        {
            var device = block ? VolumeLayout.DeviceNodeOf(target) : existing.Device;
            if (device != staged.Device)
            {
                throw StatusException.AlreadyExists(
                    $"target path {target} already holds device {device}, not volume {request.VolumeId} (device {staged.Device})");
            }
            if (existing.IsReadOnly != readOnly)
            {
                throw StatusException.AlreadyExists(
                    $"volume {request.VolumeId} is already published at {target} {(existing.IsReadOnly ? "read-only" : "read-write")}, but {(readOnly ? "read-only" : "read-write")} was requested");
            }
            _logger.LogInformation("Volume {VolumeId} is already published at {TargetPath}", request.VolumeId, target);
            return;
        }

        if (block)
        {
            if (Directory.Exists(target))
            {
                throw StatusException.FailedPrecondition($"target path {target} is a directory; a block volume is published on a file");
            }
            if (!File.Exists(target))
            {
                await File.WriteAllBytesAsync(target, [], cancellationToken).ConfigureAwait(false);
            }
        }
        else
        {
            if (File.Exists(target))
            {
                throw StatusException.FailedPrecondition($"target path {target} is a file; a filesystem volume is published on a directory");
            }
            Directory.CreateDirectory(target);
            if (capability.Mount.VolumeMountGroup is { Length: > 0 } group)
            {
                await _ownership.ApplyAsync(staged.MountPoint, uint.Parse(group, System.Globalization.CultureInfo.InvariantCulture), cancellationToken).ConfigureAwait(false);
            }
        }

        await _mounter.BindAsync(staged.MountPoint, target, readOnly, cancellationToken).ConfigureAwait(false);
        _logger.LogInformation("Published volume {VolumeId} at {TargetPath} ({Mode})", request.VolumeId, target, readOnly ? "ro" : "rw");
    }

    public async Task UnpublishAsync(string volumeId, string targetPath, CancellationToken cancellationToken)
    {
        var target = Mounter.Normalize(targetPath);
        var mounts = await _mounter.ReadMountsAsync(cancellationToken).ConfigureAwait(false);
        while (Mounter.MountAt(mounts, target) is not null)
        {
            await _mounter.UnmountAsync(target, cancellationToken).ConfigureAwait(false);
            mounts = await _mounter.ReadMountsAsync(cancellationToken).ConfigureAwait(false);
        }
        // Non-recursive on purpose: whatever is left inside is not ours to delete.
        if (Directory.Exists(target))
        {
            try
            {
                Directory.Delete(target, recursive: false);
            }
            catch (IOException e)
            {
                throw StatusException.FailedPrecondition($"target path {target} is not empty after unmounting volume {volumeId}; not removing it: {e.Message}");
            }
        }
        else if (File.Exists(target))
        {
            File.Delete(target);
        }
        _logger.LogInformation("Unpublished volume {VolumeId} from {TargetPath}", volumeId, target);
    }
}
