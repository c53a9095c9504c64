using System.Globalization;
using CsiScst.Core;
using CsiScst.Core.Errors;
using CsiScst.Core.Ids;
using CsiScst.Initiator.Iscsi;
using Google.Protobuf.Collections;

namespace CsiScst.Csi.Node;

/// <summary>
/// Reads what NodeStageVolume needs from publish_context, volume_context and the node-stage secret,
/// with the node's flags as defaults. Every bad value is INVALID_ARGUMENT naming the key (never a secret).
/// </summary>
public static class StageParameters
{
    public static IscsiVolumeTarget Parse(
        string volumeId,
        MapField<string, string> publishContext,
        MapField<string, string> volumeContext,
        MapField<string, string> secrets,
        DriverOptions driver,
        IscsiOptions defaults)
    {
        VolumeId.TryParse(volumeId, out var id);

        var portalsText = Lookup(VolumeContextKeys.Portals, publishContext, volumeContext)
            ?? throw StatusException.InvalidArgument(
                $"publish_context has no {VolumeContextKeys.Portals}: the node needs the portals ControllerPublishVolume returns");
        IReadOnlyList<Portal> portals;
        try
        {
            portals = Portal.ParseList(portalsText);
        }
        catch (FormatException e)
        {
            throw StatusException.InvalidArgument($"{VolumeContextKeys.Portals} '{portalsText}' is not a list of portals: {e.Message}");
        }
        if (portals.Count == 0)
        {
            throw StatusException.InvalidArgument($"{VolumeContextKeys.Portals} is empty");
        }

        var iqn = Lookup(VolumeContextKeys.TargetIqn, publishContext, volumeContext)
            ?? (id is not null ? new ObjectNames(id.Instance, driver.IqnPrefix).TargetIqn(id.Key) : null)
            ?? throw StatusException.InvalidArgument($"publish_context has no {VolumeContextKeys.TargetIqn} and volume id '{volumeId}' is not one of ours to derive it from");
        if (!Names.IsValidInitiatorName(iqn))
        {
            throw StatusException.InvalidArgument($"{VolumeContextKeys.TargetIqn} '{iqn}' is not a valid iSCSI name");
        }

        var lunText = Lookup(VolumeContextKeys.Lun, publishContext, volumeContext)
            ?? throw StatusException.InvalidArgument($"publish_context has no {VolumeContextKeys.Lun}");
        if (!int.TryParse(lunText, NumberStyles.None, CultureInfo.InvariantCulture, out var lun) || lun > 16383)
        {
            throw StatusException.InvalidArgument($"{VolumeContextKeys.Lun} '{lunText}' must be a LUN number from 0 to 16383");
        }

        var serial = volumeContext.GetValueOrDefault(VolumeContextKeys.Serial) is { Length: > 0 } s
            ? s
            : id is not null
                ? Names.Serial(id.Key)
                : throw StatusException.InvalidArgument(
                    $"volume_context has no {VolumeContextKeys.Serial} and volume id '{volumeId}' is not one of ours to derive it from: the node must know the SCSI serial to verify the device");

        var multipath = portals.Count > 1;
        var settings = new NodeRecordSettings(
            Int(volumeContext, VolumeContextKeys.ReplacementTimeout, multipath ? defaults.MultipathReplacementTimeout : defaults.ReplacementTimeout, 0, 86400),
            Int(volumeContext, VolumeContextKeys.LoginTimeout, defaults.LoginTimeout, 1, 600),
            Int(volumeContext, VolumeContextKeys.LoginRetries, defaults.LoginRetries, 0, 100),
            Int(volumeContext, VolumeContextKeys.NoopOutInterval, defaults.NoopOutInterval, 0, 3600),
            Int(volumeContext, VolumeContextKeys.NoopOutTimeout, defaults.NoopOutTimeout, 0, 3600));

        var chap = Chap(secrets);
        var required = volumeContext.GetValueOrDefault(VolumeContextKeys.Chap) ?? VolumeContextKeys.ChapNone;
        if (required is VolumeContextKeys.ChapOneWay or VolumeContextKeys.ChapMutual && chap is null)
        {
            throw StatusException.FailedPrecondition(
                $"volume {volumeId} requires CHAP ({VolumeContextKeys.Chap}={required}) but NodeStageVolume got no credentials: set csi.storage.k8s.io/node-stage-secret-name and -namespace in the StorageClass");
        }
        if (required == VolumeContextKeys.ChapMutual && chap is { IsMutual: false })
        {
            throw StatusException.FailedPrecondition(
                $"volume {volumeId} requires mutual CHAP but the node-stage secret has no '{NodeStageSecretKeys.UsernameIn}'/'{NodeStageSecretKeys.PasswordIn}'");
        }
        return new IscsiVolumeTarget(iqn, portals, lun, serial, settings, chap);
    }

    /// <summary>The filesystem asked for: the capability's, else the StorageClass hint in the volume context, else none.</summary>
    public static string RequestedFsType(string capabilityFsType, MapField<string, string> volumeContext) =>
        capabilityFsType.Length > 0 ? capabilityFsType
        : volumeContext.GetValueOrDefault(VolumeContextKeys.FsType) is { Length: > 0 } hint ? hint
        : "";

    /// <summary>Whether the volume's filesystem is a copy (restored snapshot or clone).</summary>
    public static bool IsCopy(MapField<string, string> volumeContext) =>
        volumeContext.GetValueOrDefault(VolumeContextKeys.ContentSource) is VolumeContextKeys.ContentSourceSnapshot or VolumeContextKeys.ContentSourceVolume;

    private static ChapCredentials? Chap(MapField<string, string> secrets)
    {
        var user = Secret(secrets, NodeStageSecretKeys.Username);
        var password = Secret(secrets, NodeStageSecretKeys.Password);
        var userIn = Secret(secrets, NodeStageSecretKeys.UsernameIn);
        var passwordIn = Secret(secrets, NodeStageSecretKeys.PasswordIn);
        if (user is null && password is null && userIn is null && passwordIn is null)
        {
            return null;
        }
        if (user is null || password is null)
        {
            throw StatusException.InvalidArgument(
                $"the node-stage secret must hold both '{NodeStageSecretKeys.Username}' and '{NodeStageSecretKeys.Password}' for CHAP (it has {Present(user, password)})");
        }
        if ((userIn is null) != (passwordIn is null))
        {
            throw StatusException.InvalidArgument(
                $"mutual CHAP needs both '{NodeStageSecretKeys.UsernameIn}' and '{NodeStageSecretKeys.PasswordIn}' in the node-stage secret");
        }
        return new ChapCredentials(user, password, userIn, passwordIn);
    }

    private static string Present(string? user, string? password) =>
        user is null && password is null ? "neither" : user is null ? "only the password" : "only the user name";

    // Accept open-iscsi's own names too (node.session.auth.username …), as other iSCSI drivers use them.
    private static string? Secret(MapField<string, string> secrets, string key) =>
        secrets.GetValueOrDefault(key) is { Length: > 0 } value ? value
        : secrets.GetValueOrDefault("node.session.auth." + key) is { Length: > 0 } alias ? alias
        : null;

    private static string? Lookup(string key, MapField<string, string> first, MapField<string, string> second) =>
        first.GetValueOrDefault(key) is { Length: > 0 } a ? a
        : second.GetValueOrDefault(key) is { Length: > 0 } b ? b
        : null;

    private static int Int(MapField<string, string> context, string key, int fallback, int min, int max)
    {
        if (context.GetValueOrDefault(key) is not { Length: > 0 } text)
        {
            return fallback;
        }
        if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) || value < min || value > max)
        {
            throw StatusException.InvalidArgument($"volume_context {key} '{text}' must be a whole number from {min} to {max}");
        }
        return value;
    }
}
