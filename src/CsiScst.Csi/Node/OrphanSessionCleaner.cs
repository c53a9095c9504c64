using CsiScst.Core;
using CsiScst.Core.Ids;
using CsiScst.Core.Locking;
using CsiScst.Initiator.Devices;
using CsiScst.Initiator.Iscsi;
using CsiScst.Initiator.Mounts;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace CsiScst.Csi.Node;

/// <summary>
/// At start-up, logs out of this instance's iSCSI sessions (target IQN with our prefix, on our iface)
/// whose disks back no mount and no device bind: what a deleted PV, a crash between login and mount,
/// or an unstage that never came left behind. Nothing else is touched.
/// </summary>
public sealed class OrphanSessionCleaner : IHostedService
{
    private readonly IscsiAdm _iscsiadm;
    private readonly IscsiVolumes _volumes;
    private readonly SysfsBlockDevices _devices;
    private readonly Mounter _mounter;
    private readonly NodeLocks _locks;
    private readonly NodeMetrics _metrics;
    private readonly ObjectNames _names;
    private readonly NodePluginOptions _options;
    private readonly ILogger<OrphanSessionCleaner> _logger;

    public OrphanSessionCleaner(IscsiAdm iscsiadm, IscsiVolumes volumes, SysfsBlockDevices devices, Mounter mounter, NodeLocks locks, NodeMetrics metrics,
        DriverOptions driver, NodePluginOptions options, ILogger<OrphanSessionCleaner> logger)
    {
        _iscsiadm = iscsiadm;
        _volumes = volumes;
        _devices = devices;
        _mounter = mounter;
        _locks = locks;
        _metrics = metrics;
        _names = new ObjectNames(driver.InstanceId, driver.IqnPrefix);
        _options = options;
        _logger = logger;
    }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (!_options.CleanOrphanSessions)
        {
            return;
        }
        try
        {
            var cleaned = await CleanAsync(cancellationToken).ConfigureAwait(false);
            _logger.LogInformation("Start-up cleanup: logged out of {Targets} orphaned target(s) with prefix {Prefix} on iface {Iface}", cleaned.Count, _names.TargetIqnPrefix, _iscsiadm.Iface);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // A node without iscsid yet must still register: stage reports the problem precisely.
            _logger.LogWarning(e, "Start-up cleanup of orphaned iSCSI sessions failed: {Error}", e.Message);
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Returns the targets it logged out of.</summary>
    public async Task<IReadOnlyList<string>> CleanAsync(CancellationToken cancellationToken)
    {
        var sessions = (await _iscsiadm.ListSessionsAsync(cancellationToken).ConfigureAwait(false))
            .Where(s => s.Iface == _iscsiadm.Iface && _names.KeyFromTargetIqn(s.Target) is not null)
            .ToArray();
        if (sessions.Length == 0)
        {
            return [];
        }
        var mounts = await _mounter.ReadMountsAsync(cancellationToken).ConfigureAwait(false);
        var used = VolumeLayout.DeviceUsers(mounts).Select(u => u.Device).ToHashSet();

        var cleaned = new List<string>();
        foreach (var target in sessions.GroupBy(s => s.Target))
        {
            var disks = target.SelectMany(s => s.Luns).Select(l => l.Disk).OfType<string>().Where(_devices.Exists).ToArray();
            var stack = disks.SelectMany(Upwards).Distinct(StringComparer.Ordinal).ToArray();
            var inUse = stack.Select(_devices.NumberOf).OfType<DeviceNumber>().Any(used.Contains);
            if (inUse)
            {
                continue;
            }
            IDisposable held;
            try
            {
                held = _locks.TryAcquireTarget(target.Key);
            }
            catch (Core.Errors.StatusException)
            {
                continue; // a stage is working on it right now
            }
            using (held)
            {
                _logger.LogWarning("iSCSI target {Target} ({Sessions} session(s), disks {Disks}) backs no staged volume; logging out", target.Key, target.Count(), string.Join(",", disks));
                await _volumes.DetachAsync(target.Key, disks, cancellationToken).ConfigureAwait(false);
                _metrics.OrphanSessions.Inc(target.Count());
                cleaned.Add(target.Key);
            }
        }
        return cleaned;
    }

    /// <summary>A disk and everything stacked on it (multipath maps, and whatever holds those).</summary>
    private IEnumerable<string> Upwards(string name)
    {
        yield return name;
        foreach (var holder in _devices.Holders(name))
        {
            foreach (var above in Upwards(holder))
            {
                yield return above;
            }
        }
    }
}
