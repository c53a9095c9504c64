using CsiScst.Core.Locking;

namespace CsiScst.Csi.Node;

/// <summary>
/// The node's locks: one per volume id (a second RPC for a volume in flight gets ABORTED, as the spec
/// asks), and one per target IQN, so the start-up cleanup never logs out a target a stage is using.
/// </summary>
public sealed class NodeLocks
{
    private readonly KeyedLocks _locks = new();

    public IDisposable TryAcquireVolume(string volumeId) => _locks.TryAcquire("volume\n" + volumeId, $"volume {volumeId}");

    public IDisposable TryAcquireTarget(string targetIqn) => _locks.TryAcquire("target\n" + targetIqn, $"iSCSI target {targetIqn}");

    public int Count => _locks.Count;
}
