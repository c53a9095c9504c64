using System.Diagnostics;
using System.Text;
using Csi.V1;
using CsiScst.Core.Faults;
using CsiScst.Csi.Controller;
using Grpc.Core;
using static CsiScst.IntegrationTests.CsiController.ControllerCluster;
using CsiScst.Csi;

namespace CsiScst.IntegrationTests.CsiController;

/// <summary>
/// Generated per-volume CHAP end to end: the real controller process stores the credentials in a Secret
/// (through KubernetesClient against the fake API server), the real tgt target requires them, and libiscsi
/// logs in only with them; a controller killed right after the Secret was written converges on retry.
/// </summary>
[Collection("controller-cluster")]
public sealed class GeneratedChapTests : IClassFixture<ControllerCluster>
{
    private readonly ControllerCluster _cluster;

    public GeneratedChapTests(ControllerCluster cluster)
    {
        _cluster = cluster;
    }

    private static (int Code, string Output) Inq(string url, string initiator)
    {
        var start = new ProcessStartInfo("iscsi-inq") { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var argument in new[] { "-i", initiator, "-e", "1", "-c", "128", url })
        {
            start.ArgumentList.Add(argument);
        }
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEnd() + process.StandardError.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, output);
    }

    [Fact]
    public async Task Generated_mutual_chap_is_required_by_the_target_survives_a_controller_kill_and_goes_with_the_volume()
    {
        await using var api = await FakeKubernetesApi.StartAsync();
        string[] kube = ["--kubeconfig", api.KubeconfigPath, "--namespace", api.Namespace];
        var request = Create("chap-gen", 8 * MiB, ("chap", "generated"), (VolumeParameters.PvNameKey, "pv-chap-gen"));
        try
        {
            await _cluster.StopControllerAsync();
            await _cluster.StartControllerAsync(new Dictionary<string, string> { [FaultPoints.EnvironmentVariable] = ControllerFaults.CreateAfterChapSecret }, null, kube);
            await Assert.ThrowsAsync<RpcException>(async () => await _cluster.Client.CreateVolumeAsync(request));
            await _cluster.ControllerProcess!.WaitForExitAsync();
            Assert.True(api.Secrets.ContainsKey("pv-chap-gen-chap"));
            Assert.Empty(_cluster.A.StateFiles().Concat(_cluster.B.StateFiles()));

            await _cluster.StopControllerAsync();
            await _cluster.StartControllerAsync(null, null, kube);
            var volume = (await _cluster.Client.CreateVolumeAsync(request)).Volume;
            Assert.Equal("mutual", volume.VolumeContext[VolumeContextKeys.Chap]);
            Assert.Single(api.Requests, r => r.StartsWith("POST", StringComparison.Ordinal));
            var data = api.Secrets["pv-chap-gen-chap"]["data"]!;
            string Value(string key) => Encoding.UTF8.GetString(Convert.FromBase64String(data[key]!.GetValue<string>()));
            Assert.DoesNotContain(Value("password"), volume.ToString());

            var publish = (await _cluster.Client.ControllerPublishVolumeAsync(new ControllerPublishVolumeRequest
            {
                VolumeId = volume.VolumeId, NodeId = NodeX, VolumeCapability = BlockWriter,
            })).PublishContext;
            Assert.DoesNotContain(Value("password"), publish.ToString());
            var where = $"{publish[VolumeContextKeys.Portals]}/{publish[VolumeContextKeys.TargetIqn]}/{publish[VolumeContextKeys.Lun]}";
            var withChap = Inq($"iscsi://{Value("username")}%{Value("password")}@{where}", InitiatorA);
            Assert.True(withChap.Code == 0, withChap.Output);
            Assert.Contains(volume.VolumeContext[VolumeContextKeys.Serial], withChap.Output);
            Assert.NotEqual(0, Inq($"iscsi://{Value("username")}%wrong-password-123@{where}", InitiatorA).Code);
            Assert.NotEqual(0, Inq($"iscsi://{where}", InitiatorA).Code);

            await _cluster.Client.ControllerUnpublishVolumeAsync(new ControllerUnpublishVolumeRequest { VolumeId = volume.VolumeId, NodeId = NodeX });
            await _cluster.Client.DeleteVolumeAsync(new DeleteVolumeRequest { VolumeId = volume.VolumeId });
            Assert.Empty(api.Secrets);
            _cluster.AssertNothingLeft();
        }
        finally
        {
            await _cluster.StopControllerAsync();
            await _cluster.StartControllerAsync();
        }
    }
}
