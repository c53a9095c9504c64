using System.Security.Cryptography.X509Certificates;
using CsiScst.Core.Files;
using CsiScst.Core.Tls;

namespace CsiScst.Tests.Foundation;

public sealed class AtomicFileAndTlsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("csi-scst-unit-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task Atomic_write_replaces_content_with_owner_only_mode_and_leaves_no_temp_file()
    {
        var path = Path.Combine(_dir, "state", "v.json");
        await AtomicFile.WriteAsync(path, "one"u8.ToArray(), AtomicFile.OwnerOnly, CancellationToken.None);
        await AtomicFile.WriteAsync(path, "two"u8.ToArray(), AtomicFile.OwnerOnly, CancellationToken.None);
        Assert.Equal("two", await File.ReadAllTextAsync(path));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        Assert.Single(Directory.GetFiles(Path.GetDirectoryName(path)!));
        Assert.True(AtomicFile.IsTempFile(Path.Combine(_dir, ".v.json.123.abc.tmp")));
        Assert.False(AtomicFile.IsTempFile(path));
        AtomicFile.Delete(path);
        AtomicFile.Delete(path);
        Assert.False(File.Exists(path));
    }

    [Fact]
    public void Generated_certificates_pass_only_in_their_own_role_and_only_for_their_own_ca()
    {
        var a = Path.Combine(_dir, "a");
        var b = Path.Combine(_dir, "b");
        MutualTls.GenerateFiles(a, ["127.0.0.1", "localhost"], TimeSpan.FromDays(1));
        MutualTls.GenerateFiles(b, ["127.0.0.1"], TimeSpan.FromDays(1));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(a, "server.key")));

        var server = MutualTls.Load(Path.Combine(a, "ca.crt"), Path.Combine(a, "server.crt"), Path.Combine(a, "server.key"));
        var client = MutualTls.Load(Path.Combine(a, "ca.crt"), Path.Combine(a, "client.crt"), Path.Combine(a, "client.key"));
        var foreignClient = MutualTls.Load(Path.Combine(b, "ca.crt"), Path.Combine(b, "client.crt"), Path.Combine(b, "client.key"));

        Assert.True(server.ValidateClient(client.Certificate));
        Assert.True(client.ValidateServer(server.Certificate));
        // A server certificate cannot act as a controller, nor a client certificate as an engine.
        Assert.False(server.ValidateClient(server.Certificate));
        Assert.False(client.ValidateServer(client.Certificate));
        // Another installation's CA is not trusted, and no certificate at all is refused.
        Assert.False(server.ValidateClient(foreignClient.Certificate));
        Assert.False(server.ValidateClient(null));
        Assert.True(client.Certificate.HasPrivateKey);
        Assert.Contains("CN=csi-scst controller", client.Certificate.Subject);
        Assert.Contains(server.Certificate.Extensions.OfType<X509SubjectAlternativeNameExtension>(), e => e.EnumerateIPAddresses().Any());
    }
}
