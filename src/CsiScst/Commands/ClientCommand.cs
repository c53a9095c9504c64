using System.CommandLine;
using Csi.V1;
using CsiScst.Core.Grpc;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using static Csi.V1.VolumeCapability.Types;

namespace CsiScst.Commands;

/// <summary>
/// <c>csi-scst client …</c>: calls any CSI RPC on a socket, in the spirit of the csc tool. Prints the
/// response as JSON (or just the id / publish context with <c>-o id</c>). Exit codes: 0 success,
/// 2 bad command line, 100 + the gRPC status code on an RPC error (e.g. 103 INVALID_ARGUMENT,
/// 105 NOT_FOUND, 114 UNAVAILABLE).
/// </summary>
internal static class ClientCommand
{
    public const int RpcErrorBase = 100;

    private static readonly JsonFormatter Json = new(JsonFormatter.Settings.Default.WithIndentation());

    public static Command Create()
    {
        var endpoint = new Option<string>("--endpoint")
        {
            Description = "CSI socket to call: unix:///abs/path.sock. Also read from CSI_ENDPOINT.",
            Recursive = true,
            DefaultValueFactory = _ => Environment.GetEnvironmentVariable("CSI_ENDPOINT") is { Length: > 0 } env ? env : "unix:///run/csi-scst/csi.sock",
        };
        var output = new Option<string>("--output", "-o")
        {
            Description = "json (default) or id: only the new volume/snapshot id, or the publish context as key=value lines.",
            Recursive = true,
            DefaultValueFactory = _ => "json",
        };
        output.AcceptOnlyFromAmong("json", "id");
        var timeout = new Option<TimeSpan>("--timeout")
        {
            Description = "Deadline of the call (hh:mm:ss).",
            Recursive = true,
            DefaultValueFactory = _ => TimeSpan.FromMinutes(5),
        };
        var command = new Command("client", "Call a CSI RPC on a socket and print the answer (for debugging nodes, the quick start and tests).");
        command.Options.Add(endpoint);
        command.Options.Add(output);
        command.Options.Add(timeout);

        var context = new CallSetup(endpoint, output, timeout);
        foreach (var sub in Identity(context).Concat(Controller(context)).Concat(Node(context)))
        {
            command.Subcommands.Add(sub);
        }
        return command;
    }

    private sealed record CallSetup(Option<string> Endpoint, Option<string> Output, Option<TimeSpan> Timeout);

    private static IEnumerable<Command> Identity(CallSetup setup)
    {
        yield return Rpc(setup, "plugin-info", "Identity.GetPluginInfo", [],
            _ => new GetPluginInfoRequest(), (c, r, o) => new global::Csi.V1.Identity.IdentityClient(c).GetPluginInfoAsync(r, o));
        yield return Rpc(setup, "plugin-capabilities", "Identity.GetPluginCapabilities", [],
            _ => new GetPluginCapabilitiesRequest(), (c, r, o) => new global::Csi.V1.Identity.IdentityClient(c).GetPluginCapabilitiesAsync(r, o));
        yield return Rpc(setup, "probe", "Identity.Probe", [],
            _ => new ProbeRequest(), (c, r, o) => new global::Csi.V1.Identity.IdentityClient(c).ProbeAsync(r, o));
    }

    private static IEnumerable<Command> Controller(CallSetup setup)
    {
        static global::Csi.V1.Controller.ControllerClient Client(GrpcChannel c) => new(c);

        var name = Required<string>("--name", "Name of the volume or snapshot.");
        var size = new Option<string?>("--size") { Description = "Required capacity: bytes or 1Gi, 512Mi, 10G …" };
        var limit = new Option<string?>("--limit") { Description = "Capacity limit: bytes or 1Gi …" };
        var parameters = Pairs("--param", "StorageClass parameter key=value (repeatable).");
        var secrets = Pairs("--secret", "Secret key=value (repeatable).");
        var volumeContext = Pairs("--volume-context", "Volume context key=value (repeatable).");
        var fromSnapshot = new Option<string?>("--from-snapshot") { Description = "Create from this snapshot id." };
        var fromVolume = new Option<string?>("--from-volume") { Description = "Clone this volume id." };
        var volumeId = Required<string>("--volume-id", "Volume id.");
        var nodeId = new Option<string>("--node-id") { Description = "Node id (as NodeGetInfo reports it)." };
        var readOnly = new Option<bool>("--readonly") { Description = "Publish read-only." };
        var snapshotId = Required<string>("--snapshot-id", "Snapshot id.");
        var sourceVolumeId = Required<string>("--source-volume-id", "Volume to snapshot.");
        var maxEntries = new Option<int>("--max-entries") { Description = "Page size (0: the plugin decides)." };
        var startingToken = new Option<string?>("--starting-token") { Description = "Token from the previous page." };
        var filterSnapshot = new Option<string?>("--snapshot-id") { Description = "Only this snapshot." };
        var filterSource = new Option<string?>("--source-volume-id") { Description = "Only snapshots of this volume." };
        var cap = new CapabilityOptions();

        yield return Rpc(setup, "controller-capabilities", "Controller.ControllerGetCapabilities", [],
            _ => new ControllerGetCapabilitiesRequest(), (c, r, o) => Client(c).ControllerGetCapabilitiesAsync(r, o));

        yield return Rpc(setup, "create-volume", "Controller.CreateVolume",
            [name, size, limit, parameters, secrets, fromSnapshot, fromVolume, .. cap.All],
            p =>
            {
                var request = new CreateVolumeRequest { Name = p.GetValue(name)!, CapacityRange = Range(p.GetValue(size), p.GetValue(limit)) };
                request.VolumeCapabilities.Add(cap.Build(p));
                request.Parameters.Add(Parsing.ParsePairs(p.GetValue(parameters), "--param"));
                request.Secrets.Add(Parsing.ParsePairs(p.GetValue(secrets), "--secret"));
                if (p.GetValue(fromSnapshot) is { Length: > 0 } snap)
                {
                    request.VolumeContentSource = new VolumeContentSource { Snapshot = new VolumeContentSource.Types.SnapshotSource { SnapshotId = snap } };
                }
                else if (p.GetValue(fromVolume) is { Length: > 0 } vol)
                {
                    request.VolumeContentSource = new VolumeContentSource { Volume = new VolumeContentSource.Types.VolumeSource { VolumeId = vol } };
                }
                return request;
            },
            (c, r, o) => Client(c).CreateVolumeAsync(r, o),
            response => response.Volume?.VolumeId);

        yield return Rpc(setup, "delete-volume", "Controller.DeleteVolume", [volumeId, secrets],
            p => new DeleteVolumeRequest { VolumeId = p.GetValue(volumeId)!, Secrets = { Parsing.ParsePairs(p.GetValue(secrets), "--secret") } },
            (c, r, o) => Client(c).DeleteVolumeAsync(r, o));

        yield return Rpc(setup, "publish", "Controller.ControllerPublishVolume", [volumeId, nodeId, readOnly, volumeContext, secrets, .. cap.All],
            p => new ControllerPublishVolumeRequest
            {
                VolumeId = p.GetValue(volumeId)!,
                NodeId = p.GetValue(nodeId) ?? "",
                Readonly = p.GetValue(readOnly),
                VolumeCapability = cap.Build(p),
                VolumeContext = { Parsing.ParsePairs(p.GetValue(volumeContext), "--volume-context") },
                Secrets = { Parsing.ParsePairs(p.GetValue(secrets), "--secret") },
            },
            (c, r, o) => Client(c).ControllerPublishVolumeAsync(r, o),
            response => string.Join('\n', response.PublishContext.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => $"{kv.Key}={kv.Value}")));

        yield return Rpc(setup, "unpublish", "Controller.ControllerUnpublishVolume", [volumeId, nodeId, secrets],
            p => new ControllerUnpublishVolumeRequest
            {
                VolumeId = p.GetValue(volumeId)!,
                NodeId = p.GetValue(nodeId) ?? "",
                Secrets = { Parsing.ParsePairs(p.GetValue(secrets), "--secret") },
            },
            (c, r, o) => Client(c).ControllerUnpublishVolumeAsync(r, o));

        yield return Rpc(setup, "validate-capabilities", "Controller.ValidateVolumeCapabilities", [volumeId, volumeContext, parameters, .. cap.All],
            p => new ValidateVolumeCapabilitiesRequest
            {
                VolumeId = p.GetValue(volumeId)!,
                VolumeCapabilities = { cap.Build(p) },
                VolumeContext = { Parsing.ParsePairs(p.GetValue(volumeContext), "--volume-context") },
                Parameters = { Parsing.ParsePairs(p.GetValue(parameters), "--param") },
            },
            (c, r, o) => Client(c).ValidateVolumeCapabilitiesAsync(r, o));

        yield return Rpc(setup, "list-volumes", "Controller.ListVolumes", [maxEntries, startingToken],
            p => new ListVolumesRequest { MaxEntries = p.GetValue(maxEntries), StartingToken = p.GetValue(startingToken) ?? "" },
            (c, r, o) => Client(c).ListVolumesAsync(r, o));

        yield return Rpc(setup, "get-volume", "Controller.ControllerGetVolume", [volumeId],
            p => new ControllerGetVolumeRequest { VolumeId = p.GetValue(volumeId)! },
            (c, r, o) => Client(c).ControllerGetVolumeAsync(r, o));

        yield return Rpc(setup, "get-capacity", "Controller.GetCapacity", [parameters],
            p => new GetCapacityRequest { Parameters = { Parsing.ParsePairs(p.GetValue(parameters), "--param") } },
            (c, r, o) => Client(c).GetCapacityAsync(r, o));

        yield return Rpc(setup, "expand-volume", "Controller.ControllerExpandVolume", [volumeId, size, limit, secrets, .. cap.All],
            p => new ControllerExpandVolumeRequest
            {
                VolumeId = p.GetValue(volumeId)!,
                CapacityRange = Range(p.GetValue(size), p.GetValue(limit)) ?? new CapacityRange(),
                VolumeCapability = cap.Build(p),
                Secrets = { Parsing.ParsePairs(p.GetValue(secrets), "--secret") },
            },
            (c, r, o) => Client(c).ControllerExpandVolumeAsync(r, o));

        yield return Rpc(setup, "create-snapshot", "Controller.CreateSnapshot", [sourceVolumeId, name, parameters, secrets],
            p => new CreateSnapshotRequest
            {
                SourceVolumeId = p.GetValue(sourceVolumeId)!,
                Name = p.GetValue(name)!,
                Parameters = { Parsing.ParsePairs(p.GetValue(parameters), "--param") },
                Secrets = { Parsing.ParsePairs(p.GetValue(secrets), "--secret") },
            },
            (c, r, o) => Client(c).CreateSnapshotAsync(r, o),
            response => response.Snapshot?.SnapshotId);

        yield return Rpc(setup, "delete-snapshot", "Controller.DeleteSnapshot", [snapshotId, secrets],
            p => new DeleteSnapshotRequest { SnapshotId = p.GetValue(snapshotId)!, Secrets = { Parsing.ParsePairs(p.GetValue(secrets), "--secret") } },
            (c, r, o) => Client(c).DeleteSnapshotAsync(r, o));

        yield return Rpc(setup, "list-snapshots", "Controller.ListSnapshots", [maxEntries, startingToken, filterSnapshot, filterSource],
            p => new ListSnapshotsRequest
            {
                MaxEntries = p.GetValue(maxEntries),
                StartingToken = p.GetValue(startingToken) ?? "",
                SnapshotId = p.GetValue(filterSnapshot) ?? "",
                SourceVolumeId = p.GetValue(filterSource) ?? "",
            },
            (c, r, o) => Client(c).ListSnapshotsAsync(r, o));

        yield return Rpc(setup, "get-snapshot", "Controller.GetSnapshot", [snapshotId],
            p => new GetSnapshotRequest { SnapshotId = p.GetValue(snapshotId)! },
            (c, r, o) => Client(c).GetSnapshotAsync(r, o));
    }

    private static IEnumerable<Command> Node(CallSetup setup)
    {
        static global::Csi.V1.Node.NodeClient Client(GrpcChannel c) => new(c);

        var volumeId = Required<string>("--volume-id", "Volume id.");
        var stagingPath = new Option<string>("--staging-path") { Description = "Staging target path (global mount)." };
        var targetPath = Required<string>("--target-path", "Target path (the pod's mount point or block file).");
        var volumePath = Required<string>("--volume-path", "Path the volume is published at.");
        var publishContext = Pairs("--publish-context", "Publish context key=value from ControllerPublishVolume (repeatable).");
        var volumeContext = Pairs("--volume-context", "Volume context key=value from CreateVolume (repeatable).");
        var secrets = Pairs("--secret", "Secret key=value (repeatable).");
        var readOnly = new Option<bool>("--readonly") { Description = "Publish read-only." };
        var size = new Option<string?>("--size") { Description = "Required capacity: bytes or 1Gi …" };
        var cap = new CapabilityOptions();

        yield return Rpc(setup, "node-capabilities", "Node.NodeGetCapabilities", [],
            _ => new NodeGetCapabilitiesRequest(), (c, r, o) => Client(c).NodeGetCapabilitiesAsync(r, o));
        yield return Rpc(setup, "node-info", "Node.NodeGetInfo", [],
            _ => new NodeGetInfoRequest(), (c, r, o) => Client(c).NodeGetInfoAsync(r, o), response => response.NodeId);

        yield return Rpc(setup, "stage", "Node.NodeStageVolume", [volumeId, stagingPath, publishContext, volumeContext, secrets, .. cap.All],
            p => new NodeStageVolumeRequest
            {
                VolumeId = p.GetValue(volumeId)!,
                StagingTargetPath = p.GetValue(stagingPath) ?? "",
                VolumeCapability = cap.Build(p),
                PublishContext = { Parsing.ParsePairs(p.GetValue(publishContext), "--publish-context") },
                VolumeContext = { Parsing.ParsePairs(p.GetValue(volumeContext), "--volume-context") },
                Secrets = { Parsing.ParsePairs(p.GetValue(secrets), "--secret") },
            },
            (c, r, o) => Client(c).NodeStageVolumeAsync(r, o));

        yield return Rpc(setup, "unstage", "Node.NodeUnstageVolume", [volumeId, stagingPath],
            p => new NodeUnstageVolumeRequest { VolumeId = p.GetValue(volumeId)!, StagingTargetPath = p.GetValue(stagingPath) ?? "" },
            (c, r, o) => Client(c).NodeUnstageVolumeAsync(r, o));

        yield return Rpc(setup, "node-publish", "Node.NodePublishVolume", [volumeId, stagingPath, targetPath, readOnly, publishContext, volumeContext, secrets, .. cap.All],
            p => new NodePublishVolumeRequest
            {
                VolumeId = p.GetValue(volumeId)!,
                StagingTargetPath = p.GetValue(stagingPath) ?? "",
                TargetPath = p.GetValue(targetPath)!,
                Readonly = p.GetValue(readOnly),
                VolumeCapability = cap.Build(p),
                PublishContext = { Parsing.ParsePairs(p.GetValue(publishContext), "--publish-context") },
                VolumeContext = { Parsing.ParsePairs(p.GetValue(volumeContext), "--volume-context") },
                Secrets = { Parsing.ParsePairs(p.GetValue(secrets), "--secret") },
            },
            (c, r, o) => Client(c).NodePublishVolumeAsync(r, o));

        yield return Rpc(setup, "node-unpublish", "Node.NodeUnpublishVolume", [volumeId, targetPath],
            p => new NodeUnpublishVolumeRequest { VolumeId = p.GetValue(volumeId)!, TargetPath = p.GetValue(targetPath)! },
            (c, r, o) => Client(c).NodeUnpublishVolumeAsync(r, o));

        yield return Rpc(setup, "stats", "Node.NodeGetVolumeStats", [volumeId, volumePath, stagingPath],
            p => new NodeGetVolumeStatsRequest { VolumeId = p.GetValue(volumeId)!, VolumePath = p.GetValue(volumePath)!, StagingTargetPath = p.GetValue(stagingPath) ?? "" },
            (c, r, o) => Client(c).NodeGetVolumeStatsAsync(r, o));

        yield return Rpc(setup, "node-expand", "Node.NodeExpandVolume", [volumeId, volumePath, stagingPath, size, .. cap.All],
            p => new NodeExpandVolumeRequest
            {
                VolumeId = p.GetValue(volumeId)!,
                VolumePath = p.GetValue(volumePath)!,
                StagingTargetPath = p.GetValue(stagingPath) ?? "",
                CapacityRange = Range(p.GetValue(size), null),
                VolumeCapability = cap.Build(p),
            },
            (c, r, o) => Client(c).NodeExpandVolumeAsync(r, o));
    }

    private static Command Rpc<TRequest, TResponse>(
        CallSetup setup, string name, string rpc, Option[] options,
        Func<ParseResult, TRequest> build,
        Func<GrpcChannel, TRequest, CallOptions, AsyncUnaryCall<TResponse>> call,
        Func<TResponse, string?>? id = null)
        where TResponse : IMessage
    {
        var command = new Command(name, $"Call {rpc}.");
        foreach (var option in options)
        {
            command.Options.Add(option);
        }
        command.SetAction(async (parse, cancellationToken) =>
        {
            TRequest request;
            try
            {
                request = build(parse);
            }
            catch (FormatException e)
            {
                await Console.Error.WriteLineAsync($"error: {e.Message}").ConfigureAwait(false);
                return 2;
            }
            var endpoint = EndpointAddress.Parse(parse.GetValue(setup.Endpoint)!);
            using var channel = Channels.For(endpoint);
            try
            {
                var deadline = DateTime.UtcNow + parse.GetValue(setup.Timeout);
                var response = await call(channel, request, new CallOptions(deadline: deadline, cancellationToken: cancellationToken)).ConfigureAwait(false);
                var text = parse.GetValue(setup.Output) == "id" && id is not null ? id(response) ?? "" : Json.Format(response);
                Console.WriteLine(text);
                return 0;
            }
            catch (RpcException e)
            {
                await Console.Error.WriteLineAsync($"error: {rpc}: {e.StatusCode}: {e.Status.Detail}").ConfigureAwait(false);
                return RpcErrorBase + (int)e.StatusCode;
            }
        });
        return command;
    }

    private static CapacityRange? Range(string? required, string? limit)
    {
        if (required is null && limit is null)
        {
            return null;
        }
        return new CapacityRange { RequiredBytes = Size(required, "--size"), LimitBytes = Size(limit, "--limit") };
    }

    private static long Size(string? text, string option)
    {
        if (text is null)
        {
            return 0;
        }
        return Parsing.TryParseSize(text, out var bytes) ? bytes : throw new FormatException($"{option} '{text}' is not a size (bytes, or with Ki/Mi/Gi/Ti or K/M/G/T)");
    }

    private static Option<T> Required<T>(string name, string description) => new(name) { Description = description, Required = true };

    private static Option<string[]> Pairs(string name, string description) =>
        new(name) { Description = description, AllowMultipleArgumentsPerToken = false, Arity = ArgumentArity.ZeroOrMore };

    /// <summary>The flags that describe one VolumeCapability.</summary>
    private sealed class CapabilityOptions
    {
        private readonly Option<string> _accessType = new("--access-type") { Description = "mount (default) or block.", DefaultValueFactory = _ => "mount" };
        private readonly Option<string?> _fsType = new("--fs-type") { Description = "Filesystem for mount volumes: ext4 or xfs (empty: the plugin's default)." };
        private readonly Option<string[]> _mountFlags = new("--mount-flag") { Description = "Mount option (repeatable).", Arity = ArgumentArity.ZeroOrMore };
        private readonly Option<string?> _mountGroup = new("--mount-group") { Description = "VOLUME_MOUNT_GROUP: group id that must own the volume." };
        private readonly Option<string> _accessMode = new("--access-mode")
        {
            Description = "single-node-writer (default), single-node-reader-only, multi-node-reader-only, multi-node-single-writer, multi-node-multi-writer, single-node-single-writer, single-node-multi-writer.",
            DefaultValueFactory = _ => "single-node-writer",
        };

        public Option[] All => [_accessType, _fsType, _mountFlags, _mountGroup, _accessMode];

        public VolumeCapability Build(ParseResult parse)
        {
            var capability = new VolumeCapability { AccessMode = new AccessMode { Mode = Mode(parse.GetValue(_accessMode)!) } };
            switch (parse.GetValue(_accessType))
            {
                case "block":
                    capability.Block = new BlockVolume();
                    break;
                case "mount":
                    capability.Mount = new MountVolume { FsType = parse.GetValue(_fsType) ?? "", VolumeMountGroup = parse.GetValue(_mountGroup) ?? "" };
                    capability.Mount.MountFlags.Add(parse.GetValue(_mountFlags) ?? []);
                    break;
                default:
                    throw new FormatException($"--access-type '{parse.GetValue(_accessType)}' must be mount or block");
            }
            return capability;
        }

        private static AccessMode.Types.Mode Mode(string text) => text.Replace('_', '-').ToLowerInvariant() switch
        {
            "single-node-writer" => AccessMode.Types.Mode.SingleNodeWriter,
            "single-node-reader-only" => AccessMode.Types.Mode.SingleNodeReaderOnly,
            "multi-node-reader-only" => AccessMode.Types.Mode.MultiNodeReaderOnly,
            "multi-node-single-writer" => AccessMode.Types.Mode.MultiNodeSingleWriter,
            "multi-node-multi-writer" => AccessMode.Types.Mode.MultiNodeMultiWriter,
            "single-node-single-writer" => AccessMode.Types.Mode.SingleNodeSingleWriter,
            "single-node-multi-writer" => AccessMode.Types.Mode.SingleNodeMultiWriter,
            _ => throw new FormatException($"--access-mode '{text}' is not a CSI access mode"),
        };
    }
}
