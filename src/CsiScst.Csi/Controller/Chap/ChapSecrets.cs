using System.Net;
using System.Security.Cryptography;
using System.Text;
using CsiScst.Core;
using CsiScst.Core.Errors;
using CsiScst.Core.Ids;
using CsiScst.Csi.Controller.Kubernetes;
using CsiScst.Engine.V1;
using Google.Protobuf.Collections;
using k8s;
using k8s.Autorest;
using k8s.Models;
using Microsoft.Extensions.Logging;
using CsiScst.Csi;

namespace CsiScst.Csi.Controller.Chap;

/// <summary>
/// CHAP credentials of a volume. <c>chap: static</c> takes them from the CreateVolume secrets (the
/// StorageClass's provisioner secret). <c>chap: generated</c> makes a mutual pair per volume and keeps it
/// in a Kubernetes Secret named <c>&lt;pv&gt;-chap</c> in the driver's namespace, which the StorageClass's
/// node-stage secret points at; the Secret is labelled with the volume key so DeleteVolume (which only
/// gets the volume id) finds and removes it. Values are never logged or put into messages.
/// </summary>
public sealed class ChapSecrets
{
    public const int MinimumSecretLength = 12;
    public const int MaximumLength = 128;
    public const int GeneratedLength = 24;
    public const string SecretSuffix = "-chap";

    public const string ManagedByLabel = "app.kubernetes.io/managed-by";
    public const string ManagedByValue = "csi-scst";
    public const string InstanceLabel = "csi-scst.io/instance";
    public const string VolumeKeyLabel = "csi-scst.io/volume-key";
    public const string PvAnnotation = "csi-scst.io/pv";

    // Letters, digits and a few marks: nothing SCST's sysfs lexer splits on (space, '=', ';') or that
    // scstadmin/iscsid configs treat specially ('#', quotes, '\').
    private const string GeneratedCharset = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789-_.+";

    private readonly KubernetesAccess _kubernetes;
    private readonly ControllerOptions _options;
    private readonly string _instanceId;
    private readonly ObjectNames _names;
    private readonly ILogger<ChapSecrets> _logger;

    public ChapSecrets(KubernetesAccess kubernetes, ControllerOptions options, DriverOptions driver, ILogger<ChapSecrets> logger)
    {
        _kubernetes = kubernetes;
        _options = options;
        _instanceId = driver.InstanceId;
        _names = new ObjectNames(driver.InstanceId, driver.IqnPrefix);
        _logger = logger;
    }

    public bool CanGenerate => _kubernetes.Available;

    /// <summary>Credentials from the CreateVolume secrets for <c>chap: static</c>.</summary>
    public static ChapCredentials FromSecrets(MapField<string, string> secrets)
    {
        if (!secrets.TryGetValue(NodeStageSecretKeys.Username, out var user) || !secrets.TryGetValue(NodeStageSecretKeys.Password, out var secret))
        {
            throw StatusException.InvalidArgument(
                $"parameter chap=static needs CHAP credentials in the CreateVolume secrets (StorageClass csi.storage.k8s.io/provisioner-secret-name) with keys '{NodeStageSecretKeys.Username}' and '{NodeStageSecretKeys.Password}' (mutual CHAP: also '{NodeStageSecretKeys.UsernameIn}' and '{NodeStageSecretKeys.PasswordIn}')");
        }
        var credentials = new ChapCredentials { User = user, Secret = secret };
        Check(user, NodeStageSecretKeys.Username, isSecret: false);
        Check(secret, NodeStageSecretKeys.Password, isSecret: true);
        var hasUserIn = secrets.TryGetValue(NodeStageSecretKeys.UsernameIn, out var userIn);
        var hasSecretIn = secrets.TryGetValue(NodeStageSecretKeys.PasswordIn, out var secretIn);
        if (hasUserIn != hasSecretIn)
        {
            throw StatusException.InvalidArgument(
                $"mutual CHAP needs both '{NodeStageSecretKeys.UsernameIn}' and '{NodeStageSecretKeys.PasswordIn}' in the secret; only one is set");
        }
        if (hasUserIn)
        {
            Check(userIn!, NodeStageSecretKeys.UsernameIn, isSecret: false);
            Check(secretIn!, NodeStageSecretKeys.PasswordIn, isSecret: true);
            if (secretIn == secret)
            {
                throw StatusException.InvalidArgument(
                    $"'{NodeStageSecretKeys.PasswordIn}' must differ from '{NodeStageSecretKeys.Password}': initiators refuse mutual CHAP with the same secret both ways");
            }
            credentials.MutualUser = userIn;
            credentials.MutualSecret = secretIn;
        }
        return credentials;
    }

    /// <summary>Checks a user name or secret without ever echoing a secret's value.</summary>
    public static void Check(string value, string key, bool isSecret)
    {
        var min = isSecret ? MinimumSecretLength : 1;
        if (value.Length < min || value.Length > MaximumLength)
        {
            throw StatusException.InvalidArgument(
                $"CHAP secret key '{key}' must be {min} to {MaximumLength} characters long (it has {value.Length}){(isSecret ? "; SCST and tgt refuse shorter CHAP secrets" : "")}");
        }
        var bad = value.FirstOrDefault(c => c is <= ' ' or > '~' or '=' or ';' or '#' or '"' or '\'' or '\\');
        if (bad != default)
        {
            var shown = isSecret ? "a character" : $"'{(bad is > ' ' and <= '~' ? bad.ToString() : $"U+{(int)bad:X4}")}'";
            throw StatusException.InvalidArgument(
                $"CHAP secret key '{key}' contains {shown} the target cannot take: use printable ASCII without spaces, '=', ';', '#', quotes or '\\'");
        }
    }

    public static string Generate() => RandomNumberGenerator.GetString(GeneratedCharset, GeneratedLength);

    public static string SecretName(string pvName) => pvName + SecretSuffix;

    /// <summary>
    /// The generated credentials of a volume: read back from its Secret when a previous attempt made it
    /// (so a retried CreateVolume configures the same ones), else generated and stored first, before the
    /// engine ever sees them.
    /// </summary>
    public async Task<ChapCredentials> EnsureGeneratedAsync(string pvName, string volumeKey, CancellationToken cancellationToken)
    {
        var client = RequireClient();
        var name = SecretName(pvName);
        var existing = await ReadAsync(client, name, cancellationToken).ConfigureAwait(false);
        if (existing is null)
        {
            var secret = new V1Secret
            {
                Metadata = new V1ObjectMeta
                {
                    Name = name,
                    NamespaceProperty = _options.Namespace,
                    Labels = new Dictionary<string, string>
                    {
                        [ManagedByLabel] = ManagedByValue,
                        [InstanceLabel] = _instanceId,
                        [VolumeKeyLabel] = volumeKey,
                    },
                    Annotations = new Dictionary<string, string> { [PvAnnotation] = pvName },
                },
                Type = "Opaque",
                StringData = new Dictionary<string, string>
                {
                    // The per-volume account names of design.md: tgt keeps CHAP accounts in one global
                    // namespace, so a generated pair must be unique to the volume on every engine.
                    [NodeStageSecretKeys.Username] = _names.TgtIncomingAccount(volumeKey),
                    [NodeStageSecretKeys.Password] = Generate(),
                    [NodeStageSecretKeys.UsernameIn] = _names.TgtOutgoingAccount(volumeKey),
                    [NodeStageSecretKeys.PasswordIn] = Generate(),
                },
            };
            try
            {
                await client.CoreV1.CreateNamespacedSecretAsync(secret, _options.Namespace, cancellationToken: cancellationToken).ConfigureAwait(false);
                _logger.LogInformation("Created CHAP Secret {Namespace}/{Secret} for volume key {VolumeKey}", _options.Namespace, name, volumeKey);
            }
            catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.Conflict)
            {
                // Another attempt created it in between: use that one.
            }
            catch (HttpOperationException e)
            {
                throw ApiFailure($"create Secret {_options.Namespace}/{name}", e);
            }
            catch (HttpRequestException e)
            {
                throw StatusException.Unavailable($"the Kubernetes API did not answer while creating Secret {_options.Namespace}/{name}: {e.Message}; retry", e);
            }
            existing = await ReadAsync(client, name, cancellationToken).ConfigureAwait(false)
                ?? throw StatusException.Unavailable($"the CHAP Secret {_options.Namespace}/{name} vanished right after it was created; retry");
        }
        if (existing.Metadata?.Labels is not { } labels || !labels.TryGetValue(VolumeKeyLabel, out var owner) || owner != volumeKey
            || !labels.TryGetValue(InstanceLabel, out var instance) || instance != _instanceId)
        {
            throw StatusException.FailedPrecondition(
                $"Secret {_options.Namespace}/{name} exists but was not generated by csi-scst instance '{_instanceId}' for this volume (label {VolumeKeyLabel}={volumeKey}); remove or rename it");
        }
        string Value(string key) =>
            existing.Data is { } data && data.TryGetValue(key, out var bytes) && bytes is { Length: > 0 }
                ? Encoding.UTF8.GetString(bytes)
                : throw StatusException.FailedPrecondition($"Secret {_options.Namespace}/{name} lacks key '{key}'; delete it so a new one is generated");
        var credentials = new ChapCredentials
        {
            User = Value(NodeStageSecretKeys.Username),
            Secret = Value(NodeStageSecretKeys.Password),
            MutualUser = Value(NodeStageSecretKeys.UsernameIn),
            MutualSecret = Value(NodeStageSecretKeys.PasswordIn),
        };
        Check(credentials.User, NodeStageSecretKeys.Username, false);
        Check(credentials.Secret, NodeStageSecretKeys.Password, true);
        Check(credentials.MutualUser, NodeStageSecretKeys.UsernameIn, false);
        Check(credentials.MutualSecret, NodeStageSecretKeys.PasswordIn, true);
        return credentials;
    }

    /// <summary>Removes the generated Secret(s) of a volume; none: OK. Without the Kubernetes API there can be none.</summary>
    public async Task DeleteGeneratedAsync(string volumeKey, CancellationToken cancellationToken)
    {
        if (_kubernetes.Client is not { } client)
        {
            return;
        }
        try
        {
            var secrets = await client.CoreV1.ListNamespacedSecretAsync(_options.Namespace,
                labelSelector: $"{InstanceLabel}={_instanceId},{VolumeKeyLabel}={volumeKey}", cancellationToken: cancellationToken).ConfigureAwait(false);
            foreach (var secret in secrets.Items)
            {
                try
                {
                    await client.CoreV1.DeleteNamespacedSecretAsync(secret.Metadata.Name, _options.Namespace, cancellationToken: cancellationToken).ConfigureAwait(false);
                    _logger.LogInformation("Deleted CHAP Secret {Namespace}/{Secret} of volume key {VolumeKey}", _options.Namespace, secret.Metadata.Name, volumeKey);
                }
                catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
                {
                }
            }
        }
        catch (HttpOperationException e)
        {
            throw ApiFailure($"delete the CHAP Secret of volume key {volumeKey} in namespace {_options.Namespace}", e);
        }
        catch (HttpRequestException e)
        {
            throw StatusException.Unavailable($"the Kubernetes API did not answer while deleting the CHAP Secret of volume key {volumeKey}: {e.Message}; retry", e);
        }
    }

    private IKubernetes RequireClient() => _kubernetes.Client
        ?? throw StatusException.InvalidArgument(
            "parameter chap=generated stores the credentials in a Kubernetes Secret, but this controller has no Kubernetes API (run in a pod or pass --kubeconfig); use chap=static or chap=none");

    private async Task<V1Secret?> ReadAsync(IKubernetes client, string name, CancellationToken cancellationToken)
    {
        try
        {
            return await client.CoreV1.ReadNamespacedSecretAsync(name, _options.Namespace, cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
        catch (HttpOperationException e)
        {
            throw ApiFailure($"read Secret {_options.Namespace}/{name}", e);
        }
        catch (HttpRequestException e)
        {
            throw StatusException.Unavailable($"the Kubernetes API did not answer while reading Secret {_options.Namespace}/{name}: {e.Message}; retry", e);
        }
    }

    private static StatusException ApiFailure(string what, HttpOperationException e) => e.Response.StatusCode switch
    {
        HttpStatusCode.Forbidden or HttpStatusCode.Unauthorized => StatusException.FailedPrecondition(
            $"the Kubernetes API refused to {what} ({(int)e.Response.StatusCode}): give the controller's service account get/create/list/delete on secrets in its namespace"),
        _ => StatusException.Unavailable($"the Kubernetes API failed to {what}: HTTP {(int)e.Response.StatusCode}; retry", e),
    };
}
