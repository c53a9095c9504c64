namespace CsiScst.Targets;

/// <summary>
/// Optional, for engines with rules beyond <see cref="ITargetEngine"/>'s contract (tgt: CHAP accounts are
/// global, so their user names must be the per-volume names; one read-only flag per LUN). The engine
/// service checks a request against them before it creates anything, so a request the engine cannot
/// serve fails with a clear status and leaves nothing behind.
/// </summary>
public interface IExportRules
{
    /// <summary>Throws StatusException (INVALID_ARGUMENT / FAILED_PRECONDITION) naming what this engine cannot do.</summary>
    void Check(string key, ChapSpec? chap, IReadOnlyList<InitiatorAccess> initiators);
}
