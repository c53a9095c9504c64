using Csi.V1;
using CsiScst.Csi.Controller;
using Grpc.Core;
using static Csi.V1.VolumeCapability.Types;

namespace CsiScst.Tests.Controller;

/// <summary>Two fake engines (node-a with 10 GiB, node-b with 20 GiB free in pool "files") and a controller dialing both.</summary>
public abstract class ControllerTestBase : IAsyncLifetime
{
    protected const long GiB = 1L << 30;
    protected const long MiB = 1L << 20;

    protected TestTls Tls { get; } = new();
    protected FakeEngine A { get; } = new("node-a", FakeEngine.Pool("files", 10 * GiB), FakeEngine.Pool("fast", 5 * GiB, backend: "lvm", granularity: 4 * MiB));
    protected FakeEngine B { get; } = new("node-b", FakeEngine.Pool("files", 20 * GiB));
    protected ControllerHarness Harness { get; private set; } = null!;
    protected global::Csi.V1.Controller.ControllerClient Client => Harness.Controller;

    protected virtual void Configure(ControllerSetup setup)
    {
    }

    public async Task InitializeAsync()
    {
        await A.StartAsync(Tls.Server);
        await B.StartAsync(Tls.Server);
        Harness = await ControllerHarness.StartAsync(Tls.Client, [A, B], Configure);
    }

    public async Task DisposeAsync()
    {
        await Harness.DisposeAsync();
        await A.DisposeAsync();
        await B.DisposeAsync();
        Tls.Dispose();
    }

    protected static VolumeCapability Mount(AccessMode.Types.Mode mode = AccessMode.Types.Mode.SingleNodeWriter) =>
        new() { Mount = new MountVolume { FsType = "ext4" }, AccessMode = new AccessMode { Mode = mode } };

    protected static VolumeCapability Block(AccessMode.Types.Mode mode = AccessMode.Types.Mode.SingleNodeWriter) =>
        new() { Block = new BlockVolume(), AccessMode = new AccessMode { Mode = mode } };

    protected static CreateVolumeRequest Create(string name, long required = 0, long limit = 0, params (string Key, string Value)[] parameters)
    {
        var request = new CreateVolumeRequest { Name = name, VolumeCapabilities = { Mount() } };
        if (required > 0 || limit > 0)
        {
            request.CapacityRange = new CapacityRange { RequiredBytes = required, LimitBytes = limit };
        }
        request.Parameters["pool"] = "files";
        foreach (var (key, value) in parameters)
        {
            request.Parameters[key] = value;
        }
        return request;
    }

    protected static async Task<RpcException> Fails(StatusCode code, Func<Task> call)
    {
        var e = await Assert.ThrowsAsync<RpcException>(call);
        Assert.True(code == e.StatusCode, $"expected {code}, got {e.StatusCode}: {e.Status.Detail}");
        return e;
    }

    protected const string NodeX = "worker-1/iqn.1993-08.org.debian:01:aaaa";
    protected const string NodeY = "worker-2/iqn.1993-08.org.debian:01:bbbb";
}
