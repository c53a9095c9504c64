using System.CommandLine;
using CsiScst.Csi;
using CsiScst.Csi.Node;
using CsiScst.Hosting;
using CsiScst.Initiator;
using CsiScst.Initiator.Devices;
using CsiScst.Initiator.Iscsi;
using CsiScst.Initiator.Mounts;

namespace CsiScst.Commands;

/// <summary>Flags of the node role (also used by standalone).</summary>
internal sealed class NodeOptionSet
{
    public Option<string?> InitiatorName { get; } = new("--initiator-name")
    {
        Description = "Initiator IQN to report; default: read from the initiator name file (generated with iscsi-iname when absent). With --iface, it is written into that iface record.",
    };

    public Option<string?> InitiatorNameFile { get; } = new("--initiator-name-file")
    {
        Description = $"open-iscsi's initiator name file (default {InitiatorNameFileReader.DefaultPath}, under --host-root when that is set).",
    };

    public Option<long> MaxVolumesPerNode { get; } = new("--max-volumes-per-node")
    {
        Description = "Most volumes the scheduler may put on this node (0: no limit).",
        DefaultValueFactory = _ => 0,
    };

    public Option<string> IscsiadmPath { get; } = new("--iscsiadm-path")
    {
        Description = "The iscsiadm program. It must match the iscsid that serves this node (in a container, use --host-root to run the host's own).",
        DefaultValueFactory = _ => HostToolOptions.DefaultIscsiadm,
    };

    public Option<string?> HostRoot { get; } = new("--host-root")
    {
        Description = "The host's root filesystem as mounted in the plugin's container (e.g. /host, a hostPath of /; needs hostPID and privileged). When set, iscsiadm, multipath and multipathd run in the host's mount namespace: nsenter --mount=<host-root>/proc/1/ns/mnt -- iscsiadm …, so they use the host's binaries, iscsid.conf and node database.",
    };

    public Option<string?> Iface { get; } = new("--iface")
    {
        Description = "open-iscsi iface record to log in through (default: iscsid's 'default' iface). With its own iface.initiatorname it lets a second plugin act as another node on the same machine.",
    };

    public Option<int> ReplacementTimeout { get; } = new("--iscsi-replacement-timeout")
    {
        Description = "Seconds a single-path session queues I/O while reconnecting before failing it (node.session.timeo.replacement_timeout). StorageClass parameter replacementTimeout overrides it per volume.",
        DefaultValueFactory = _ => 120,
    };

    public Option<int> MultipathReplacementTimeout { get; } = new("--iscsi-multipath-replacement-timeout")
    {
        Description = "The same for each path of a multipath volume: short, so dm-multipath fails over quickly.",
        DefaultValueFactory = _ => 15,
    };

    public Option<int> LoginTimeout { get; } = new("--iscsi-login-timeout")
    {
        Description = "Seconds one login attempt may take (node.conn[0].timeo.login_timeout). StorageClass parameter loginTimeout.",
        DefaultValueFactory = _ => 15,
    };

    public Option<int> LoginRetries { get; } = new("--iscsi-login-retries")
    {
        Description = "Extra login attempts of one NodeStageVolume (node.session.initial_login_retry_max). StorageClass parameter loginRetries.",
        DefaultValueFactory = _ => 2,
    };

    public Option<int> NoopOutInterval { get; } = new("--iscsi-noop-out-interval")
    {
        Description = "Seconds between NOP-Out pings that detect a dead connection (0: off). StorageClass parameter noopOutInterval.",
        DefaultValueFactory = _ => 5,
    };

    public Option<int> NoopOutTimeout { get; } = new("--iscsi-noop-out-timeout")
    {
        Description = "Seconds to wait for a NOP-In answer before the connection counts as failed. StorageClass parameter noopOutTimeout.",
        DefaultValueFactory = _ => 5,
    };

    public Option<TimeSpan> DeviceTimeout { get; } = new("--device-timeout")
    {
        Description = "How long NodeStageVolume waits for the disk of a login (and for a multipath map) to appear (hh:mm:ss).",
        DefaultValueFactory = _ => TimeSpan.FromSeconds(30),
    };

    public Option<string> DefaultFsType { get; } = new("--default-fs-type")
    {
        Description = "Filesystem created on a blank volume whose capability names none: ext4 or xfs.",
        DefaultValueFactory = _ => "ext4",
    };

    public Option<bool> SkipOrphanCleanup { get; } = new("--skip-orphan-cleanup")
    {
        Description = "Do not log out, at start-up, of this instance's iSCSI sessions that back no staged volume.",
    };

    public NodeOptionSet()
    {
        DefaultFsType.AcceptOnlyFromAmong(Filesystems.Supported);
        foreach (var option in new[] { ReplacementTimeout, MultipathReplacementTimeout, LoginRetries, NoopOutInterval, NoopOutTimeout })
        {
            option.Validators.Add(r =>
            {
                if (r.GetValueOrDefault<int>() < 0)
                {
                    r.AddError($"{option.Name} must not be negative");
                }
            });
        }
        LoginTimeout.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<int>() < 1)
            {
                r.AddError("--iscsi-login-timeout must be at least 1 second");
            }
        });
        Iface.Validators.Add(r =>
        {
            var value = r.GetValueOrDefault<string?>();
            if (value is not null && (value.Length is 0 or > 64 || !value.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.')))
            {
                r.AddError($"--iface '{value}' must be 1-64 characters of [A-Za-z0-9._-]");
            }
        });
    }

    public void AddTo(Command command)
    {
        foreach (var option in new Option[]
                 {
                     InitiatorName, InitiatorNameFile, MaxVolumesPerNode, IscsiadmPath, HostRoot, Iface, ReplacementTimeout,
                     MultipathReplacementTimeout, LoginTimeout, LoginRetries, NoopOutInterval, NoopOutTimeout, DeviceTimeout,
                     DefaultFsType, SkipOrphanCleanup,
                 })
        {
            command.Options.Add(option);
        }
    }

    public NodePluginOptions Bind(ParseResult parse)
    {
        var hostRoot = parse.GetValue(HostRoot) is { Length: > 0 } root ? root : null;
        var host = new HostToolOptions { IscsiadmPath = parse.GetValue(IscsiadmPath)!, HostRoot = hostRoot };
        return new NodePluginOptions
        {
            Info = new NodeInfoOptions
            {
                InitiatorName = parse.GetValue(InitiatorName),
                InitiatorNameFile = parse.GetValue(InitiatorNameFile)
                    ?? (hostRoot is null ? InitiatorNameFileReader.DefaultPath : Path.Join(hostRoot, InitiatorNameFileReader.DefaultPath)),
                MaxVolumesPerNode = parse.GetValue(MaxVolumesPerNode),
            },
            Host = host,
            Iscsi = new IscsiOptions
            {
                Iface = parse.GetValue(Iface),
                ReplacementTimeout = parse.GetValue(ReplacementTimeout),
                MultipathReplacementTimeout = parse.GetValue(MultipathReplacementTimeout),
                LoginTimeout = parse.GetValue(LoginTimeout),
                LoginRetries = parse.GetValue(LoginRetries),
                NoopOutInterval = parse.GetValue(NoopOutInterval),
                NoopOutTimeout = parse.GetValue(NoopOutTimeout),
            },
            Devices = new DeviceOptions { DeviceTimeout = parse.GetValue(DeviceTimeout) },
            Mounts = new MountOptions { DefaultFsType = parse.GetValue(DefaultFsType)! },
            CleanOrphanSessions = !parse.GetValue(SkipOrphanCleanup),
        };
    }
}

/// <summary>The node role.</summary>
internal static class NodeCommand
{
    public static Command Create()
    {
        var common = new CommonOptions("unix:///csi/csi.sock");
        var node = new NodeOptionSet();
        var command = new Command("node", "Serve CSI Identity + Node on the kubelet plugin socket (DaemonSet on every node, privileged, host network).");
        common.AddTo(command);
        node.AddTo(command);
        command.SetAction((parse, ct) =>
        {
            var settings = common.Bind(parse);
            var plan = CsiPlans.Create("node", settings);
            var capabilities = new CsiCapabilities();
            var nodeOptions = node.Bind(parse);
            plan.Services.Add(s => s.AddCsiNode(capabilities, nodeOptions));
            plan.Endpoints.Add(app => app.MapCsiServices(controller: false, node: true));
            return RoleRunner.RunAsync([plan], ct);
        });
        return command;
    }
}
