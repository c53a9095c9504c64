namespace CsiScst.ScstModel.Vfs;

/// <summary>
/// One entry of the served tree. Directories compute their children from the current model state on
/// every call, so the tree is never out of step with the state it shows.
/// </summary>
internal abstract class VNode(string name)
{
    public string Name { get; } = name;
}

/// <summary>
/// A directory. <paramref name="lookup"/>, when given, finds one child by name without enumerating the
/// others (directories that grow with the number of exports); it must answer exactly what a search of
/// <paramref name="children"/> would: the first child of that name (ordinal), or null.
/// </summary>
internal sealed class VDir(string name, Func<IEnumerable<VNode>> children, Func<string, VNode?>? lookup = null) : VNode(name)
{
    public IEnumerable<VNode> Children() => children();

    public VNode? Child(string childName) => lookup is null ? Find(children(), childName) : lookup(childName);

    /// <summary>The first node named <paramref name="childName"/> (ordinal), or null.</summary>
    public static VNode? Find(IEnumerable<VNode> nodes, string childName)
    {
        foreach (VNode c in nodes)
        {
            if (string.Equals(c.Name, childName, StringComparison.Ordinal))
            {
                return c;
            }
        }

        return null;
    }
}

/// <summary>A symlink; the target is relative, as sysfs makes them.</summary>
internal sealed class VLink(string name, string target) : VNode(name)
{
    public string Target { get; } = target;
}

/// <summary>
/// An attribute file. <see cref="Show"/> runs for a read, <see cref="Store"/> for each write(2).
/// Both run under the model lock; either may hand back work for the sysfs work queue instead of an
/// immediate result.
/// </summary>
internal sealed class VFile(string name, int permissions, ShowFn? show, StoreFn? store) : VNode(name)
{
    public int Permissions { get; } = permissions;

    public ShowFn? Show { get; } = show;

    public StoreFn? Store { get; } = store;
}

internal delegate ShowResult ShowFn();

internal delegate StoreResult StoreFn(string text);

/// <summary>Outcome of a read: text, an errno, or work to queue (a read-only sysfs work).</summary>
internal readonly record struct ShowResult(int Errno, string? Text, Func<ShowResult>? Work)
{
    public static ShowResult Ok(string text) => new(0, text, null);

    public static ShowResult Fail(int errno) => new(errno, null, null);

    public static ShowResult Queued(Func<ShowResult> work) => new(0, null, work);
}

/// <summary>Outcome of a write: an errno (0 = accepted) or work to queue.</summary>
internal readonly record struct StoreResult(int Errno, Func<int>? Work)
{
    public static StoreResult Ok => new(0, null);

    public static StoreResult Fail(int errno) => new(errno, null);

    public static StoreResult Queued(Func<int> work) => new(0, work);
}
