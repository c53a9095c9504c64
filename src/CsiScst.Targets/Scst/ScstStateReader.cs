using System.Globalization;
using System.Text.RegularExpressions;
using CsiScst.Core.Ids;

namespace CsiScst.Targets.Scst;

/// <summary>
/// Reads our devices and targets from sysfs. Only objects whose names carry this instance's prefix are
/// read at all, so the cost of a bulk read is proportional to our exports, never to foreign objects;
/// per export it is a fixed number of small reads (no quadratic scans).
/// </summary>
internal sealed partial class ScstStateReader(ScstSysfs sysfs)
{
    [GeneratedRegex("^IncomingUser[0-9]*$")]
    private static partial Regex IncomingUserAttribute();

    [GeneratedRegex("^OutgoingUser[0-9]*$")]
    private static partial Regex OutgoingUserAttribute();

    [GeneratedRegex("^allowed_portal[0-9]*$")]
    private static partial Regex AllowedPortalAttribute();

    /// <summary>
    /// One device. <paramref name="full"/> also reads the creation parameters (block size, caching, thin,
    /// rotational) and the size, which SCST cannot change in place; without it only what identifies the export
    /// is read (handler, filename, serials, active).
    /// </summary>
    public async Task<ScstDeviceState?> ReadDeviceAsync(string name, CancellationToken cancellationToken, bool full = true)
    {
        if (!sysfs.DirectoryExists(ScstPaths.Device(name)))
        {
            return null;
        }
        var handler = sysfs.ReadLinkName(ScstPaths.DeviceAttribute(name, "handler"));
        if (handler is null)
        {
            return new ScstDeviceState { Name = name };
        }
        async Task<string?> Line(string attribute) =>
            await sysfs.ReadLineAsync(ScstPaths.DeviceAttribute(name, attribute), cancellationToken).ConfigureAwait(false);

        var device = new ScstDeviceState
        {
            Name = name,
            Handler = handler,
            Filename = await Line("filename").ConfigureAwait(false),
            T10DevId = await Line("t10_dev_id").ConfigureAwait(false),
            Usn = await Line("usn").ConfigureAwait(false),
            Active = ParseBool(await Line("active").ConfigureAwait(false)),
        };
        if (!full)
        {
            return device;
        }
        return device with
        {
            BlockSize = ParseInt(await Line("blocksize").ConfigureAwait(false)),
            WriteThrough = ParseBool(await Line("write_through").ConfigureAwait(false)),
            NvCache = ParseBool(await Line("nv_cache").ConfigureAwait(false)),
            ThinProvisioned = ParseBool(await Line("thin_provisioned").ConfigureAwait(false)),
            Rotational = ParseBool(await Line("rotational").ConfigureAwait(false)),
            SizeBytes = ParseLong(await Line("size").ConfigureAwait(false)),
        };
    }

    public async Task<ScstTargetState?> ReadTargetAsync(string iqn, CancellationToken cancellationToken)
    {
        var entries = sysfs.List(ScstPaths.Target(iqn));
        if (entries.Count == 0)
        {
            return null;
        }
        var incoming = new List<ScstChapEntry>();
        ScstChapEntry? outgoing = null;
        var portals = new List<ScstPortalEntry>();
        foreach (var entry in entries.Where(e => e.Kind == ScstEntryKind.File).OrderBy(e => e.Name, StringComparer.Ordinal))
        {
            if (IncomingUserAttribute().IsMatch(entry.Name))
            {
                if (await ReadChapAsync(iqn, entry.Name, cancellationToken).ConfigureAwait(false) is { } user)
                {
                    incoming.Add(user);
                }
            }
            else if (OutgoingUserAttribute().IsMatch(entry.Name))
            {
                outgoing ??= await ReadChapAsync(iqn, entry.Name, cancellationToken).ConfigureAwait(false);
            }
            else if (AllowedPortalAttribute().IsMatch(entry.Name))
            {
                var pattern = await sysfs.ReadLineAsync(ScstPaths.TargetAttribute(iqn, entry.Name), cancellationToken).ConfigureAwait(false);
                if (!string.IsNullOrWhiteSpace(pattern))
                {
                    portals.Add(new ScstPortalEntry(entry.Name, pattern.Trim()));
                }
            }
        }

        var groups = new List<ScstGroup>();
        foreach (var group in sysfs.ListDirectories(ScstPaths.Groups(iqn)).Order(StringComparer.Ordinal))
        {
            var initiators = sysfs.List(ScstPaths.GroupInitiators(iqn, group))
                .Where(e => e.Kind == ScstEntryKind.File && e.Name != ScstPaths.Mgmt)
                .Select(e => e.Name)
                .Order(StringComparer.Ordinal)
                .ToList();
            groups.Add(new ScstGroup(group, initiators, await ReadLunsAsync(ScstPaths.GroupLuns(iqn, group), cancellationToken).ConfigureAwait(false)));
        }

        return new ScstTargetState
        {
            Iqn = iqn,
            Enabled = ParseBool(await sysfs.ReadLineAsync(ScstPaths.TargetAttribute(iqn, "enabled"), cancellationToken).ConfigureAwait(false)) ?? false,
            RelTgtId = ParseInt(await sysfs.ReadLineAsync(ScstPaths.TargetAttribute(iqn, "rel_tgt_id"), cancellationToken).ConfigureAwait(false)),
            DefaultLuns = await ReadLunsAsync(ScstPaths.TargetLuns(iqn), cancellationToken).ConfigureAwait(false),
            Groups = groups,
            IncomingUsers = incoming,
            OutgoingUser = outgoing,
            AllowedPortals = portals,
            Sessions = sysfs.ListDirectories(ScstPaths.Sessions(iqn)).Order(StringComparer.Ordinal).ToList(),
        };
    }

    private async Task<ScstChapEntry?> ReadChapAsync(string iqn, string attribute, CancellationToken cancellationToken)
    {
        var line = await sysfs.ReadLineAsync(ScstPaths.TargetAttribute(iqn, attribute), cancellationToken).ConfigureAwait(false);
        if (string.IsNullOrWhiteSpace(line))
        {
            return null;
        }
        var parts = line.Trim().Split(' ', 2, StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return new ScstChapEntry(attribute, parts[0], parts.Length > 1 ? parts[1] : "");
    }

    private async Task<IReadOnlyList<ScstLun>> ReadLunsAsync(string lunsPath, CancellationToken cancellationToken)
    {
        var luns = new List<ScstLun>();
        foreach (var name in sysfs.ListDirectories(lunsPath))
        {
            if (!int.TryParse(name, NumberStyles.None, CultureInfo.InvariantCulture, out var number))
            {
                continue;
            }
            var device = sysfs.ReadLinkName($"{lunsPath}/{name}/device");
            var readOnly = ParseBool(await sysfs.ReadLineAsync($"{lunsPath}/{name}/read_only", cancellationToken).ConfigureAwait(false)) ?? false;
            luns.Add(new ScstLun(number, device, readOnly));
        }
        luns.Sort((a, b) => a.Number.CompareTo(b.Number));
        return luns;
    }

    /// <summary>
    /// All devices and iSCSI targets carrying this instance's prefix, read by a few workers in parallel (sysfs
    /// reads need no lock). The caller accounts the whole pass as external time: the workers do not flow the
    /// caller's context, so parallel reads are not counted twice.
    /// </summary>
    public async Task<ScstSnapshot> ReadOursAsync(ObjectNames names, bool full, CancellationToken cancellationToken)
    {
        var deviceNames = sysfs.ListDirectories(ScstPaths.Devices).Where(n => names.KeyFromDeviceName(n) is not null).ToList();
        var targetNames = sysfs.ListDirectories(ScstPaths.IscsiRoot).Where(n => names.KeyFromTargetIqn(n) is not null).ToList();
        var devices = new System.Collections.Concurrent.ConcurrentDictionary<string, ScstDeviceState>(StringComparer.Ordinal);
        var targets = new System.Collections.Concurrent.ConcurrentDictionary<string, ScstTargetState>(StringComparer.Ordinal);
        var work = deviceNames.Select(n => (Device: true, Name: n)).Concat(targetNames.Select(n => (Device: false, Name: n)));
        var options = new ParallelOptions { MaxDegreeOfParallelism = ReadParallelism, CancellationToken = cancellationToken };
        Task pass;
        using (ExecutionContext.SuppressFlow())
        {
            pass = Parallel.ForEachAsync(work, options, async (item, token) =>
            {
                if (item.Device)
                {
                    if (await ReadDeviceAsync(item.Name, token, full).ConfigureAwait(false) is { Handler: not null } device)
                    {
                        devices[item.Name] = device;
                    }
                }
                else if (await ReadTargetAsync(item.Name, token).ConfigureAwait(false) is { } target)
                {
                    targets[item.Name] = target;
                }
            });
        }
        await pass.ConfigureAwait(false);
        return new ScstSnapshot(
            new Dictionary<string, ScstDeviceState>(devices, StringComparer.Ordinal),
            new Dictionary<string, ScstTargetState>(targets, StringComparer.Ordinal));
    }

    private const int ReadParallelism = 4;

    internal static bool? ParseBool(string? text) => text?.Trim() switch
    {
        "1" or "Y" or "y" => true,
        "0" or "N" or "n" => false,
        _ => null,
    };

    internal static int? ParseInt(string? text) =>
        int.TryParse(text?.Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value) ? value : null;

    internal static long? ParseLong(string? text) =>
        long.TryParse(text?.Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value) ? value : null;
}
