using CsiScst.Core.Exec;

namespace CsiScst.Initiator;

/// <summary>Where the node's initiator tools live and how to reach the host's daemons.</summary>
public sealed class HostToolOptions
{
    public const string DefaultIscsiadm = "iscsiadm";

    /// <summary>The iscsiadm program (a path or a name on PATH).</summary>
    public string IscsiadmPath { get; set; } = DefaultIscsiadm;

    public string MultipathPath { get; set; } = "multipath";
    public string MultipathdPath { get; set; } = "multipathd";

    /// <summary>
    /// The host's root filesystem as mounted into the plugin's container (e.g. <c>/host</c>), or null when
    /// the plugin runs directly on the host. When set, iscsiadm, multipath and multipathd run in the
    /// host's mount namespace (<c>nsenter --mount=&lt;host-root&gt;/proc/1/ns/mnt -- iscsiadm …</c>), so they
    /// use the host's iscsid.conf, node database and binaries, which always match the host's iscsid.
    /// Needs hostPID (or the host's /proc under the host root) and a privileged container.
    /// </summary>
    public string? HostRoot { get; set; }

    public string NsenterPath { get; set; } = "nsenter";
}

/// <summary>
/// Builds commands for tools that must act on the host's initiator state (iscsiadm, multipath):
/// run directly, or through nsenter into the host's mount namespace when a host root is configured.
/// Tools that work on devices and mounts (mkfs, mount, blkid …) run in the plugin's own namespace.
/// </summary>
public sealed class HostTools
{
    private readonly HostToolOptions _options;

    public HostTools(HostToolOptions options)
    {
        _options = options;
    }

    public ToolCommand Iscsiadm(IReadOnlyList<string> arguments) => Host(_options.IscsiadmPath, arguments);
    public ToolCommand Multipath(IReadOnlyList<string> arguments) => Host(_options.MultipathPath, arguments);
    public ToolCommand Multipathd(IReadOnlyList<string> arguments) => Host(_options.MultipathdPath, arguments);

    private ToolCommand Host(string program, IReadOnlyList<string> arguments)
    {
        if (string.IsNullOrEmpty(_options.HostRoot))
        {
            return new ToolCommand(program, arguments);
        }
        var wrapped = new List<string>(arguments.Count + 3)
        {
            "--mount=" + Path.Join(_options.HostRoot, "proc/1/ns/mnt"),
            "--",
            program,
        };
        wrapped.AddRange(arguments);
        return new ToolCommand(_options.NsenterPath, wrapped) { Label = Path.GetFileName(program) };
    }
}
