using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using CsiScst.Backends;
using CsiScst.Backends.Pools;
using CsiScst.Backends.Rbd;
using CsiScst.Core.Exec;
using CsiScst.Core.Ids;
using CsiScst.Tests.Fixtures.Ceph;

namespace CsiScst.IntegrationTests.Backends;

/// <summary>
/// The RBD data path over iSCSI without a kernel: images made by the RBD backend, exported by a private tgtd
/// through its librbd backing store (Debian's tgt-rbd, <c>--bstype rbd</c>), written and read by a real
/// initiator (libiscsi through qemu-io and iscsi-readcapacity16).
/// </summary>
[Collection(CephCollection.Name)]
public sealed class RbdTgtDataPathTests
{
    private const long MiB = 1024 * 1024;
    private readonly CephCluster _ceph;
    private readonly IToolRunner _tools = Tools.Runner();

    public RbdTgtDataPathTests(CephCluster ceph) => _ceph = ceph;

    [Fact]
    public async Task Data_written_over_iscsi_lands_in_the_image_and_its_snapshot_clone()
    {
        var ct = Tools.Timeout();
        var backend = new RbdBackend(new RbdPoolOptions
        {
            Name = "ceph",
            Pool = _ceph.Pool,
            Keyring = _ceph.AdminKeyring,
            Conf = _ceph.Conf,
            Flatten = FlattenPolicy.Never,
        }, new ObjectNames("csi"), _tools, new ListLogger<RbdBackend>());
        var (volume, snapshot, clone) = (NewKey(), NewKey(), NewKey());
        await backend.CreateVolumeAsync(new CreateVolumeSpec(volume, 8 * MiB), ct);
        await backend.ExpandVolumeAsync(volume, 16 * MiB, ct);

        await using var tgt = await Tgtd.StartAsync(_tools, ct);
        var volumeUrl = await tgt.ExportAsync(1, volume, _ceph, ct);

        var capacity = await _tools.RunAsync(new ToolCommand("iscsi-readcapacity16", volumeUrl), ct);
        Assert.Contains($"Total size:{16 * MiB}", capacity.StandardOutput, StringComparison.Ordinal);
        await QemuIoAsync(volumeUrl, "write -P 0x6d 1M 2M", ct);
        Assert.Equal(0, (await _ceph.QemuIoAsync($"csi-csi-{volume}", "read -P 0x6d 1M 2M")).ExitCode);

        await backend.CreateSnapshotAsync(volume, snapshot, ct);
        await QemuIoAsync(volumeUrl, "write -P 0x6e 1M 2M", ct);
        await backend.CreateVolumeAsync(new CreateVolumeSpec(clone, 0, new FromSnapshotSource(volume, snapshot)), ct);
        var cloneUrl = await tgt.ExportAsync(2, clone, _ceph, ct);

        await QemuIoAsync(cloneUrl, "read -P 0x6d 1M 2M", ct);
        await QemuIoAsync(volumeUrl, "read -P 0x6e 1M 2M", ct);

        await tgt.DisposeAsync();
        await backend.DeleteVolumeAsync(clone, ct);
        await backend.DeleteSnapshotAsync(volume, snapshot, ct);
        await backend.DeleteVolumeAsync(volume, ct);
    }

    private async Task QemuIoAsync(string url, string command, CancellationToken ct)
    {
        var result = await _tools.RunAsync(new ToolCommand("qemu-io", "-f", "raw", "-c", command, url) { SuccessExitCodes = [0, 1] }, ct);
        Assert.True(result.ExitCode == 0 && !result.StandardOutput.Contains("failed", StringComparison.Ordinal),
            $"qemu-io {command} {url}: {result.StandardOutput}{result.StandardError}");
    }

    private static string NewKey() => Guid.NewGuid().ToString("N")[..16];

    /// <summary>A private tgtd on a free 127.0.0.1 port with its own control port; all targets and the daemon go on dispose.</summary>
    private sealed class Tgtd : IAsyncDisposable
    {
        private readonly IToolRunner _tools;
        private readonly Process _process;
        private readonly string _control;
        private readonly int _port;
        private readonly List<int> _targets = [];
        private bool _stopped;

        private Tgtd(IToolRunner tools, Process process, string control, int port)
        {
            _tools = tools;
            _process = process;
            _control = control;
            _port = port;
        }

        public static async Task<Tgtd> StartAsync(IToolRunner tools, CancellationToken ct)
        {
            var port = Ports.Free();
            var control = Random.Shared.Next(2000, 30000).ToString();
            var process = Process.Start(new ProcessStartInfo("tgtd", ["-f", "-C", control, "--iscsi", $"portal=127.0.0.1:{port}"])
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            })!;
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            var tgtd = new Tgtd(tools, process, control, port);
            // Ready when tgtadm can talk to it.
            while (true)
            {
                Assert.False(process.HasExited, "tgtd exited at start");
                var show = await tools.RunAsync(new ToolCommand("tgtadm", "-C", control, "--lld", "iscsi", "--mode", "target", "--op", "show") { SuccessExitCodes = [0, 107] }, ct);
                if (show.ExitCode == 0)
                {
                    return tgtd;
                }
                await Task.Delay(100, ct);
            }
        }

        public async Task<string> ExportAsync(int tid, string key, CephCluster ceph, CancellationToken ct)
        {
            var iqn = $"iqn.2026-11.io.csi-scst:csi.{key}";
            await Tgtadm(ct, "--mode", "target", "--op", "new", "--tid", tid.ToString(), "-T", iqn);
            _targets.Add(tid);
            await Tgtadm(ct, "--mode", "logicalunit", "--op", "new", "--tid", tid.ToString(), "--lun", "1", "--bstype", "rbd",
                "--backing-store", $"{ceph.Pool}/csi-csi-{key}", "--bsopts", $"conf={ceph.Conf};id=admin");
            await Tgtadm(ct, "--mode", "target", "--op", "bind", "--tid", tid.ToString(), "-I", "ALL");
            return $"iscsi://127.0.0.1:{_port}/{iqn}/1";
        }

        private Task<ToolResult> Tgtadm(CancellationToken ct, params string[] arguments) =>
            _tools.RunAsync(new ToolCommand("tgtadm", ["-C", _control, "--lld", "iscsi", .. arguments]), ct);

        public async ValueTask DisposeAsync()
        {
            if (_stopped)
            {
                return;
            }
            _stopped = true;
            using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(1));
            try
            {
                foreach (var tid in _targets)
                {
                    await Tgtadm(cts.Token, "--mode", "target", "--op", "delete", "--force", "--tid", tid.ToString());
                }
                await _tools.RunAsync(new ToolCommand("tgtadm", "-C", _control, "--mode", "system", "--op", "delete"), cts.Token);
                await _process.WaitForExitAsync(cts.Token);
            }
            finally
            {
                if (!_process.HasExited)
                {
                    _process.Kill();
                }
                _process.Dispose();
            }
        }

    }
}
