using Csi.V1;
using CsiScst.Csi.Controller;
using Grpc.Core;

namespace CsiScst.Tests.Controller;

/// <summary>Zones: only when the operator turns topology on and engines report a zone.</summary>
public sealed class TopologyTests : ControllerTestBase
{
    private const string Key = "topology.csi-scst.io/zone";

    protected override void Configure(ControllerSetup setup) => setup.Controller.Topology = true;

    private static TopologyRequirement Requisite(params string[] zones)
    {
        var requirement = new TopologyRequirement();
        foreach (var zone in zones)
        {
            requirement.Requisite.Add(new Topology { Segments = { [Key] = zone } });
        }
        return requirement;
    }

    [Fact]
    public async Task Volumes_are_placed_in_an_allowed_zone_and_report_it()
    {
        A.Topology[Key] = "zone-1";
        B.Topology[Key] = "zone-2";
        await Task.Delay(TimeSpan.FromSeconds(2.5)); // the controller's engine-info cache

        var request = Create("pvc-zoned");
        request.AccessibilityRequirements = Requisite("zone-1");
        var volume = (await Client.CreateVolumeAsync(request)).Volume;
        // node-b has more room but is in the wrong zone.
        Assert.Contains(":node-a:", volume.VolumeId);
        Assert.Equal("zone-1", volume.AccessibleTopology.Single().Segments[Key]);

        var nowhere = Create("pvc-nowhere");
        nowhere.AccessibilityRequirements = Requisite("zone-9");
        await Fails(StatusCode.ResourceExhausted, async () => await Client.CreateVolumeAsync(nowhere));

        var capacity = await Client.GetCapacityAsync(new GetCapacityRequest
        {
            Parameters = { ["pool"] = "files" }, AccessibleTopology = new Topology { Segments = { [Key] = "zone-2" } },
        });
        Assert.Equal(20 * GiB, capacity.AvailableCapacity);
    }

    [Fact]
    public async Task Without_zones_on_engines_requirements_do_not_restrict_and_no_topology_is_reported()
    {
        var request = Create("pvc-anywhere");
        request.AccessibilityRequirements = Requisite("zone-1");
        var volume = (await Client.CreateVolumeAsync(request)).Volume;
        Assert.Contains(":node-b:", volume.VolumeId);
        Assert.Empty(volume.AccessibleTopology);
    }
}
