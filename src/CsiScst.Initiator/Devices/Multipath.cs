using CsiScst.Core.Errors;
using CsiScst.Core.Exec;
using Microsoft.Extensions.Logging;

namespace CsiScst.Initiator.Devices;

/// <summary>
/// dm-multipath for volumes with several portals. multipathd builds the map itself when the paths
/// appear (we never write multipath.conf); we find the map through sysfs (the dm holder of the
/// paths whose dm uuid is "mpath-…"), resize it after an expansion and flush it before logout.
/// </summary>
public sealed class Multipath
{
    private readonly IToolRunner _tools;
    private readonly HostTools _host;
    private readonly SysfsBlockDevices _devices;
    private readonly DeviceOptions _options;
    private readonly ILogger<Multipath> _logger;

    public Multipath(IToolRunner tools, HostTools host, SysfsBlockDevices devices, DeviceOptions options, ILogger<Multipath> logger)
    {
        _tools = tools;
        _host = host;
        _devices = devices;
        _options = options;
        _logger = logger;
    }

    /// <summary>Whether multipathd answers on this node.</summary>
    public async Task<bool> IsDaemonRunningAsync(CancellationToken cancellationToken)
    {
        try
        {
            await _tools.RunAsync(_host.Multipathd(["show", "status"]) with { Timeout = TimeSpan.FromSeconds(10) }, cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (ToolException)
        {
            return false;
        }
    }

    /// <summary>The multipath map holding all the given disks, if there is one.</summary>
    public string? FindMap(IReadOnlyCollection<string> disks)
    {
        string? map = null;
        foreach (var disk in disks)
        {
            var holder = _devices.Holders(disk).FirstOrDefault(_devices.IsMultipath);
            if (holder is null || (map is not null && holder != map))
            {
                return null;
            }
            map = holder;
        }
        return map;
    }

    /// <summary>Waits for multipathd to assemble the map of the given paths.</summary>
    public async Task<string> WaitForMapAsync(IReadOnlyCollection<string> disks, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + _options.DeviceTimeout;
        while (true)
        {
            if (FindMap(disks) is { } map)
            {
                _logger.LogInformation("Multipath map {Map} ({DmName}) holds {Disks}", map, _devices.DmName(map), string.Join(",", disks));
                return map;
            }
            if (DateTime.UtcNow >= deadline)
            {
                throw StatusException.Internal(
                    $"multipathd did not assemble a map over {string.Join(", ", disks)} within {_options.DeviceTimeout.TotalSeconds:0} s; " +
                    "check that multipathd runs and that /etc/multipath.conf does not exclude these disks (find_multipaths \"strict\" needs their WWID in /etc/multipath/wwids; \"greedy\" or \"yes\" take them at once)");
            }
            await Task.Delay(_options.PollInterval, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Makes the map take the new size of its paths (after they were rescanned).</summary>
    public async Task ResizeAsync(string map, CancellationToken cancellationToken)
    {
        var name = _devices.DmName(map) ?? map;
        await Run(_host.Multipathd(["resize", "map", name]), $"resizing multipath map {name}", cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Removes the map (its paths stay until they are deleted).</summary>
    public async Task FlushAsync(string map, CancellationToken cancellationToken)
    {
        var name = _devices.DmName(map) ?? map;
        await Run(_host.Multipath(["-f", name]), $"flushing multipath map {name}", cancellationToken).ConfigureAwait(false);
    }

    private async Task Run(ToolCommand command, string what, CancellationToken cancellationToken)
    {
        try
        {
            await _tools.RunAsync(command with { Timeout = TimeSpan.FromSeconds(60) }, cancellationToken).ConfigureAwait(false);
        }
        catch (ToolException e)
        {
            throw new StatusException(e.SuggestedStatus, $"{what} failed: {e.Message}", e);
        }
    }
}
