using System.Net;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace CsiScst.Core.Tls;

/// <summary>
/// Mutual TLS for the controller ↔ engine API. Every certificate is checked against the installation's
/// own CA (pinned; the system trust store is never consulted) and for the right extended key usage:
/// only a client certificate opens the engine API, only a server certificate may serve it. Engines are
/// reached by node IP, so names are not checked; the per-installation CA is the trust boundary.
/// </summary>
public sealed class MutualTls
{
    private static readonly Oid ServerAuth = new("1.3.6.1.5.5.7.3.1");
    private static readonly Oid ClientAuth = new("1.3.6.1.5.5.7.3.2");

    public MutualTls(X509Certificate2 authority, X509Certificate2 certificate)
    {
        if (!certificate.HasPrivateKey)
        {
            throw new ArgumentException("the certificate has no private key", nameof(certificate));
        }
        Authority = authority;
        Certificate = certificate;
    }

    public X509Certificate2 Authority { get; }
    public X509Certificate2 Certificate { get; }

    /// <summary>Loads PEM files: CA certificate, own certificate, own private key.</summary>
    public static MutualTls Load(string caPath, string certificatePath, string keyPath)
    {
        var authority = X509Certificate2.CreateFromPem(File.ReadAllText(caPath));
        using var pem = X509Certificate2.CreateFromPemFile(certificatePath, keyPath);
        // Re-import so the key is usable by SslStream on every platform.
        var certificate = X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
        return new MutualTls(authority, certificate);
    }

    /// <summary>The server side: a client certificate is required and must chain to the CA with clientAuth.</summary>
    public bool ValidateClient(X509Certificate2? certificate) => Validate(certificate, ClientAuth);

    /// <summary>The client side: the server certificate must chain to the CA with serverAuth.</summary>
    public bool ValidateServer(X509Certificate? certificate) =>
        Validate(certificate is null ? null : certificate as X509Certificate2 ?? X509CertificateLoader.LoadCertificate(certificate.GetRawCertData()), ServerAuth);

    public SslClientAuthenticationOptions ClientOptions() => new()
    {
        ClientCertificates = [Certificate],
        RemoteCertificateValidationCallback = (_, certificate, _, _) => ValidateServer(certificate),
        // Kestrel asks for the client certificate during the handshake; offer ours.
        LocalCertificateSelectionCallback = (_, _, _, _, _) => Certificate,
    };

    private bool Validate(X509Certificate2? certificate, Oid usage)
    {
        if (certificate is null)
        {
            return false;
        }
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(Authority);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.ApplicationPolicy.Add(usage);
        return chain.Build(certificate);
    }

    /// <summary>
    /// A fresh CA with one server and one client certificate, written as PEM files (mode 0600) into
    /// <paramref name="directory"/>: ca.crt, server.crt/key, client.crt/key. Used by standalone and tests;
    /// clusters get theirs from the Helm chart.
    /// </summary>
    public static void GenerateFiles(string directory, IEnumerable<string> serverNames, TimeSpan lifetime)
    {
        Directory.CreateDirectory(directory);
        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var caRequest = new CertificateRequest("CN=csi-scst engine CA", caKey, HashAlgorithmName.SHA256);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        caRequest.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(caRequest.PublicKey, false));
        var notBefore = DateTimeOffset.UtcNow.AddMinutes(-5);
        using var ca = caRequest.CreateSelfSigned(notBefore, notBefore + lifetime);

        Write(Path.Combine(directory, "ca.crt"), ca.ExportCertificatePem());
        Issue(ca, caKey, "csi-scst target", ServerAuth, serverNames, notBefore, lifetime, directory, "server");
        Issue(ca, caKey, "csi-scst controller", ClientAuth, [], notBefore, lifetime, directory, "client");
    }

    private static void Issue(X509Certificate2 ca, ECDsa caKey, string commonName, Oid usage, IEnumerable<string> names,
        DateTimeOffset notBefore, TimeSpan lifetime, string directory, string fileName)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={commonName}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyAgreement, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([usage], false));
        var san = new SubjectAlternativeNameBuilder();
        var any = false;
        foreach (var name in names)
        {
            if (IPAddress.TryParse(name, out var ip))
            {
                san.AddIpAddress(ip);
            }
            else
            {
                san.AddDnsName(name);
            }
            any = true;
        }
        if (any)
        {
            request.CertificateExtensions.Add(san.Build());
        }
        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7f;
        using var certificate = request.Create(ca.SubjectName, X509SignatureGenerator.CreateForECDsa(caKey), notBefore, notBefore + lifetime, serial);
        Write(Path.Combine(directory, fileName + ".crt"), certificate.ExportCertificatePem());
        Write(Path.Combine(directory, fileName + ".key"), key.ExportPkcs8PrivateKeyPem());
    }

    private static void Write(string path, string content)
    {
        File.WriteAllText(path, content);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
    }
}
