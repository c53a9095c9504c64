using CsiScst.Core.Exec;
using CsiScst.Core.Metrics;
using CsiScst.Initiator.Devices;
using CsiScst.Initiator.Mounts;
using Microsoft.Extensions.Logging.Abstractions;

namespace CsiScst.IntegrationTests.NodePlugin;

/// <summary>The real node components, wired as the plugin wires them, over the real tool runner.</summary>
internal sealed class Components
{
    public Components()
    {
        Tools = new ToolRunner(new DriverMetrics(), new ExternalTime(), NullLogger<ToolRunner>.Instance);
        MountOptions = new MountOptions();
        Mounter = new Mounter(Tools, MountOptions, NullLogger<Mounter>.Instance);
        Filesystems = new Filesystems(Tools, MountOptions, NullLogger<Filesystems>.Instance);
        Devices = new SysfsBlockDevices(new DeviceOptions());
        Ownership = new VolumeOwnership(NullLogger<VolumeOwnership>.Instance);
    }

    public IToolRunner Tools { get; }
    public MountOptions MountOptions { get; }
    public Mounter Mounter { get; }
    public Filesystems Filesystems { get; }
    public SysfsBlockDevices Devices { get; }
    public VolumeOwnership Ownership { get; }
}
