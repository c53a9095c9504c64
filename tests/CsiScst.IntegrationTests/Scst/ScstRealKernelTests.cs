using Xunit.Abstractions;

namespace CsiScst.IntegrationTests.Scst;

/// <summary>Assumptions the engine makes about SCST that only a real kernel module can confirm.</summary>
public sealed class ScstRealKernelTests(ITestOutputHelper output) : IAsyncLifetime
{
    private ScstTestTarget _scst = null!;

    public async Task InitializeAsync() => _scst = await ScstTestTarget.StartAsync(output);

    public async Task DisposeAsync() => await _scst.DisposeAsync();

    [ScstFact]
    public void The_vdisk_handlers_accept_every_add_device_parameter_the_engine_writes()
    {
        foreach (var handler in new[] { "vdisk_blockio", "vdisk_fileio" })
        {
            var help = File.ReadAllText(_scst.PathOf($"handlers/{handler}/mgmt"));
            output.WriteLine(help);
            foreach (var parameter in new[] { "filename", "blocksize", "rotational", "write_through", "nv_cache", "thin_provisioned", "t10_dev_id" })
            {
                Assert.Contains(parameter, help);
            }
        }
        var driverHelp = File.ReadAllText(_scst.PathOf("targets/iscsi/mgmt"));
        foreach (var attribute in new[] { "IncomingUser", "OutgoingUser", "allowed_portal" })
        {
            Assert.Contains(attribute, driverHelp);
        }
    }

    [ScstFact]
    public async Task Probe_reads_the_real_version_and_daemon_state()
    {
        var engine = _scst.CreateEngine();
        var health = await engine.ProbeAsync(CancellationToken.None);
        Assert.Equal(File.ReadAllText(_scst.PathOf("targets/iscsi/open_state")).Trim() == "open", health.Ready);
    }
}
