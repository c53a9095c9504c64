using Csi.V1;

namespace CsiScst.Bench.Infra;

/// <summary>The CSI controller calls the bench makes, as the external-provisioner and -attacher make them.</summary>
internal sealed class CsiCalls(Controller.ControllerClient controller)
{
    public const string NodeId = "bench-node/iqn.2026-11.io.csi-scst:bench-node";

    private static VolumeCapability Block() => new()
    {
        Block = new VolumeCapability.Types.BlockVolume(),
        AccessMode = new VolumeCapability.Types.AccessMode { Mode = VolumeCapability.Types.AccessMode.Types.Mode.SingleNodeWriter },
    };

    public async Task<string> CreateAsync(string name, CancellationToken ct = default)
    {
        var request = new CreateVolumeRequest
        {
            Name = name,
            CapacityRange = new CapacityRange { RequiredBytes = 16L << 20 },
        };
        request.VolumeCapabilities.Add(Block());
        request.Parameters["pool"] = "files";
        request.Parameters["thinProvisioned"] = "true";
        var response = await controller.CreateVolumeAsync(request, cancellationToken: ct);
        return response.Volume.VolumeId;
    }

    public async Task PublishAsync(string volumeId, CancellationToken ct = default) =>
        await controller.ControllerPublishVolumeAsync(new ControllerPublishVolumeRequest
        {
            VolumeId = volumeId,
            NodeId = NodeId,
            VolumeCapability = Block(),
        }, cancellationToken: ct);

    public async Task UnpublishAsync(string volumeId, CancellationToken ct = default) =>
        await controller.ControllerUnpublishVolumeAsync(new ControllerUnpublishVolumeRequest { VolumeId = volumeId, NodeId = NodeId }, cancellationToken: ct);

    public async Task DeleteAsync(string volumeId, CancellationToken ct = default) =>
        await controller.DeleteVolumeAsync(new DeleteVolumeRequest { VolumeId = volumeId }, cancellationToken: ct);

    public async Task GetAsync(string volumeId, CancellationToken ct = default) =>
        await controller.ControllerGetVolumeAsync(new ControllerGetVolumeRequest { VolumeId = volumeId }, cancellationToken: ct);

    public async Task<int> ListPageAsync(int max, CancellationToken ct = default) =>
        (await controller.ListVolumesAsync(new ListVolumesRequest { MaxEntries = max }, cancellationToken: ct)).Entries.Count;

    public async Task CapacityAsync(CancellationToken ct = default) =>
        await controller.GetCapacityAsync(new GetCapacityRequest(), cancellationToken: ct);

    /// <summary>Runs <paramref name="work"/> for each item with at most <paramref name="parallel"/> at a time; returns the failures.</summary>
    public static async Task<List<string>> ForEachAsync<T>(IEnumerable<T> items, int parallel, Func<T, Task> work)
    {
        var errors = new List<string>();
        using var slots = new SemaphoreSlim(parallel);
        var tasks = items.Select(async item =>
        {
            await slots.WaitAsync();
            try
            {
                await work(item);
            }
            catch (Exception e) when (e is Grpc.Core.RpcException or InvalidOperationException)
            {
                lock (errors)
                {
                    errors.Add($"{item}: {e.Message}");
                }
            }
            finally
            {
                slots.Release();
            }
        }).ToList();
        await Task.WhenAll(tasks);
        return errors;
    }
}
