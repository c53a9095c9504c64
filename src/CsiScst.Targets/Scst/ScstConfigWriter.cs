using System.Globalization;
using System.Text;
using CsiScst.Core;
using CsiScst.Core.Files;
using CsiScst.Core.Ids;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace CsiScst.Targets.Scst;

/// <summary>What one engine operation wrote to, so that cached config sections of those objects are re-read.</summary>
internal sealed class ScstChanges
{
    public HashSet<string> Devices { get; } = new(StringComparer.Ordinal);
    public HashSet<string> Targets { get; } = new(StringComparer.Ordinal);
    public bool Driver { get; set; }

    public bool Any => Devices.Count > 0 || Targets.Count > 0 || Driver;

    public void Device(string name) => Devices.Add(name);
    public void Target(string iqn) => Targets.Add(iqn);
}

/// <summary>
/// Saves the <b>whole</b> live SCST configuration, in the syntax <c>scstadmin -write_config</c> produces
/// (interfaces.md A.7), so that the boot-time <c>scstadmin -config /etc/scst.conf</c> restores every export
/// before csi-scst itself is back. Like scstadmin, it saves what SCST marks as key attributes (<c>[key]</c>),
/// <c>enabled</c>, and read-only attributes only where they are creation parameters; foreign objects are read
/// and written as they are (never changed) because scstadmin's restore clears everything the file lacks.
/// Deliberate differences: the LUNs of <c>copy_manager_tgt</c> are not listed, since SCST adds every device
/// to it on its own and listing them makes a restore add them twice under other numbers.
/// Sections of our own objects are cached and re-read only after the engine touched them, so saving after
/// one change costs a few directory listings, not a read of every export.
/// </summary>
public sealed class ScstConfigWriter
{
    private static readonly string[] SkippedAttributes = ["mgmt", "uevent", "module", ScstSysfs.LastResultFile];

    // Used when a mgmt file's help text lists no parameters (older SCST): the vdisk creation parameters.
    private static readonly string[] KnownDeviceCreateParameters =
    [
        "active", "bind_alua_state", "blocksize", "cluster_mode", "dif_filename", "dif_mode", "dif_static_app_tag", "dif_type",
        "dummy", "filename", "numa_node_id", "nv_cache", "o_direct", "read_only", "removable", "rotational", "size", "size_mb",
        "t10_dev_id", "thin_provisioned", "tst", "write_through",
    ];

    private readonly ScstSysfs _sysfs;
    private readonly ScstOptions _options;
    private readonly ObjectNames _names;
    private readonly ILogger<ScstConfigWriter> _logger;
    private readonly SemaphoreSlim _saveLock = new(1, 1);
    private readonly Dictionary<string, string> _sections = new(StringComparer.Ordinal);
    private readonly Dictionary<string, HashSet<string>> _createParameters = new(StringComparer.Ordinal);
    private string? _lastWritten;

    public ScstConfigWriter(ScstSysfs sysfs, IOptions<ScstOptions> options, DriverOptions driver, ILogger<ScstConfigWriter> logger)
    {
        _sysfs = sysfs;
        _options = options.Value;
        _names = new ObjectNames(driver.InstanceId, driver.IqnPrefix);
        _logger = logger;
    }

    public bool Enabled => !string.IsNullOrEmpty(_options.ConfigFile);

    internal void Invalidate(ScstChanges changes)
    {
        lock (_sections)
        {
            foreach (var device in changes.Devices)
            {
                _sections.Remove(DeviceKey(device));
            }
            foreach (var target in changes.Targets)
            {
                _sections.Remove(TargetKey(ScstPaths.IscsiDriver, target));
            }
            if (changes.Driver)
            {
                _sections.Remove(DriverKey(ScstPaths.IscsiDriver));
            }
        }
    }

    /// <summary>Forgets every cached section (reconcile: someone else may have changed our objects).</summary>
    internal void InvalidateAll()
    {
        lock (_sections)
        {
            _sections.Clear();
        }
    }

    /// <summary>Writes the configuration file (mode 0600, atomically) when its content changed.</summary>
    internal async Task SaveAsync(ScstChanges changes, CancellationToken cancellationToken)
    {
        if (!Enabled)
        {
            return;
        }
        Invalidate(changes);
        await _saveLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var text = await RenderAsync(cancellationToken).ConfigureAwait(false);
            if (string.Equals(text, _lastWritten, StringComparison.Ordinal))
            {
                return;
            }
            await AtomicFile.WriteAsync(_options.ConfigFile, Encoding.UTF8.GetBytes(text), AtomicFile.OwnerOnly, cancellationToken).ConfigureAwait(false);
            _lastWritten = text;
            _logger.LogDebug("Saved the SCST configuration to {ConfigFile} ({Bytes} bytes)", _options.ConfigFile, text.Length);
        }
        finally
        {
            _saveLock.Release();
        }
    }

    /// <summary>The whole configuration as scst.conf text.</summary>
    internal async Task<string> RenderAsync(CancellationToken cancellationToken)
    {
        var output = new StringBuilder();
        output.Append("# Automatically generated by csi-scst ").Append(DriverOptions.Version)
            .Append(" in the format of scstadmin -write_config; restore with scstadmin -config.\n\n");

        // SCST-wide and driver-wide attributes are ours to change only through the driver's "enabled": they are
        // cached like our own objects and re-read after such a change and at every reconcile.
        if (!TryCached("root", out var root))
        {
            root = SerializeKeyAttributes("", await ReadAttributesAsync("", cancellationToken).ConfigureAwait(false), null);
            Cache("root", root);
        }
        output.Append(root);
        output.Append('\n');

        foreach (var handler in _sysfs.ListDirectories(ScstPaths.Handlers).Order(StringComparer.Ordinal))
        {
            output.Append(await RenderHandlerAsync(handler, cancellationToken).ConfigureAwait(false));
        }
        foreach (var driver in _sysfs.ListDirectories(ScstPaths.Targets).Order(StringComparer.Ordinal))
        {
            output.Append(await RenderDriverAsync(driver, cancellationToken).ConfigureAwait(false));
        }
        return output.ToString();
    }

    private async Task<string> RenderHandlerAsync(string handler, CancellationToken cancellationToken)
    {
        var path = $"{ScstPaths.Handlers}/{handler}";
        var entries = _sysfs.List(path);
        var attributes = await ReadAttributesAsync(path, cancellationToken, entries).ConfigureAwait(false);
        var handlerBuffer = SerializeKeyAttributes("\t", attributes, null);
        var createParameters = await CreateParametersAsync($"{path}/mgmt", KnownDeviceCreateParameters, cancellationToken).ConfigureAwait(false);

        var devices = new StringBuilder();
        foreach (var device in entries.Where(e => e.Kind == ScstEntryKind.Link && e.Name != "module").Select(e => e.Name).Order(StringComparer.Ordinal))
        {
            devices.Append(await RenderDeviceAsync(device, createParameters, cancellationToken).ConfigureAwait(false));
        }
        var body = handlerBuffer + CollapseTrailingNewlines(devices.ToString(), "\n");
        return body.Length == 0 ? "" : $"HANDLER {handler} {{\n{body}}}\n\n";
    }

    private async Task<string> RenderDeviceAsync(string device, HashSet<string> createParameters, CancellationToken cancellationToken)
    {
        var ours = _names.KeyFromDeviceName(device) is not null;
        if (ours && TryCached(DeviceKey(device), out var cached))
        {
            return cached;
        }
        var attributes = await ReadAttributesAsync(ScstPaths.Device(device), cancellationToken).ConfigureAwait(false);
        var body = SerializeKeyAttributes("\t\t", attributes, createParameters);
        var section = body.Length == 0 ? $"\tDEVICE {device}\n" : $"\tDEVICE {device} {{\n{body}\t}}\n\n";
        if (ours)
        {
            Cache(DeviceKey(device), section);
        }
        return section;
    }

    private async Task<string> RenderDriverAsync(string driver, CancellationToken cancellationToken)
    {
        var path = $"{ScstPaths.Targets}/{driver}";
        if (!TryCached(DriverKey(driver), out var driverBuffer))
        {
            driverBuffer = SerializeKeyAttributes("\t", await ReadAttributesAsync(path, cancellationToken).ConfigureAwait(false), null);
            Cache(DriverKey(driver), driverBuffer);
        }
        if (driverBuffer.Length > 0)
        {
            driverBuffer += "\n";
        }
        var targetCreate = await CreateParametersAsync($"{path}/mgmt", [], cancellationToken).ConfigureAwait(false);
        var targets = new StringBuilder();
        foreach (var target in _sysfs.ListDirectories(path).Where(t => t != "module").Order(StringComparer.Ordinal))
        {
            targets.Append(await RenderTargetAsync(driver, target, targetCreate, cancellationToken).ConfigureAwait(false));
        }
        var body = driverBuffer + targets;
        if (body.EndsWith("\n\n", StringComparison.Ordinal))
        {
            body = body[..^1];
        }
        return body.Length == 0 ? "" : $"TARGET_DRIVER {driver} {{\n{body}}}\n\n";
    }

    private async Task<string> RenderTargetAsync(string driver, string target, HashSet<string> targetCreate, CancellationToken cancellationToken)
    {
        var ours = driver == ScstPaths.IscsiDriver && _names.KeyFromTargetIqn(target) is not null;
        if (ours && TryCached(TargetKey(driver, target), out var cached))
        {
            return cached;
        }
        var path = $"{ScstPaths.Targets}/{driver}/{target}";
        var attributes = await ReadAttributesAsync(path, cancellationToken).ConfigureAwait(false);
        var attributeBuffer = SerializeKeyAttributes("\t\t", attributes, targetCreate);
        if (attributeBuffer.Length > 0)
        {
            attributeBuffer += "\n";
        }

        var lunBuffer = "";
        if (driver != ScstPaths.CopyManagerDriver)
        {
            lunBuffer = await RenderLunsAsync($"{path}/luns", "\t\t", cancellationToken).ConfigureAwait(false);
            if (lunBuffer.Length > 0)
            {
                lunBuffer = CollapseTrailingNewlines(lunBuffer + "\n", "\n\n");
            }
        }

        var groupBuffer = new StringBuilder();
        foreach (var group in _sysfs.ListDirectories($"{path}/ini_groups").Order(StringComparer.Ordinal))
        {
            groupBuffer.Append(await RenderGroupAsync($"{path}/ini_groups/{group}", group, cancellationToken).ConfigureAwait(false));
        }

        string section;
        if (attributeBuffer.Length > 0 || lunBuffer.Length > 0 || groupBuffer.Length > 0)
        {
            var body = attributeBuffer + lunBuffer + groupBuffer;
            if (body.EndsWith("\n\n", StringComparison.Ordinal))
            {
                body = body[..^1];
            }
            section = $"\tTARGET {target} {{\n{body}\t}}\n\n";
        }
        else
        {
            section = $"\tTARGET {target}\n";
        }
        if (ours)
        {
            Cache(TargetKey(driver, target), section);
        }
        return section;
    }

    private async Task<string> RenderLunsAsync(string lunsPath, string prefix, CancellationToken cancellationToken)
    {
        // Every LUN set prints the same help text: read it once.
        var lunCreate = await CreateParametersAsync($"{lunsPath}/mgmt", ["read_only"], cancellationToken, cacheKey: "luns").ConfigureAwait(false);
        var output = new StringBuilder();
        var luns = _sysfs.ListDirectories(lunsPath)
            .Select(n => (Name: n, Number: int.TryParse(n, NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? v : -1))
            .Where(l => l.Number >= 0)
            .OrderBy(l => l.Number);
        foreach (var (name, number) in luns)
        {
            var device = _sysfs.ReadLinkName($"{lunsPath}/{name}/device");
            if (device is null)
            {
                continue;
            }
            output.Append(prefix).Append("LUN ").Append(number.ToString(CultureInfo.InvariantCulture)).Append(' ').Append(device);
            var attributes = await ReadAttributesAsync($"{lunsPath}/{name}", cancellationToken).ConfigureAwait(false);
            var body = SerializeKeyAttributes(prefix + "\t", attributes, lunCreate);
            output.Append(body.Length == 0 ? "\n" : $" {{\n{body}{prefix}}}\n");
        }
        return output.ToString();
    }

    private async Task<string> RenderGroupAsync(string path, string group, CancellationToken cancellationToken)
    {
        var lunBuffer = await RenderLunsAsync($"{path}/luns", "\t\t\t", cancellationToken).ConfigureAwait(false);
        var initiatorBuffer = new StringBuilder();
        foreach (var initiator in _sysfs.List($"{path}/initiators")
                     .Where(e => e.Kind == ScstEntryKind.File && e.Name != ScstPaths.Mgmt)
                     .Select(e => e.Name)
                     .Order(StringComparer.Ordinal))
        {
            initiatorBuffer.Append("\n\t\t\tINITIATOR ").Append(EscapeValue(initiator)).Append('\n');
        }
        var attributes = await ReadAttributesAsync(path, cancellationToken).ConfigureAwait(false);
        var attributeBuffer = SerializeKeyAttributes("\t\t\t", attributes, null);

        var section = new StringBuilder("\t\tGROUP ").Append(group);
        if (lunBuffer.Length > 0 || initiatorBuffer.Length > 0 || attributeBuffer.Length > 0)
        {
            section.Append(" {\n").Append(lunBuffer).Append(initiatorBuffer);
            if (attributeBuffer.Length > 0)
            {
                section.Append('\n').Append(attributeBuffer);
            }
            section.Append("\t\t}\n");
        }
        else
        {
            section.Append('\n');
        }
        return section.Append('\n').ToString();
    }

    /// <summary>One attribute file as scstadmin sees it.</summary>
    internal sealed record Attribute(string Name, string? Value, bool IsKey, bool IsStatic);

    private async Task<List<Attribute>> ReadAttributesAsync(string path, CancellationToken cancellationToken, IReadOnlyList<ScstEntry>? entries = null)
    {
        var result = new List<Attribute>();
        foreach (var entry in entries ?? _sysfs.List(path))
        {
            if (entry.Kind != ScstEntryKind.File || SkippedAttributes.Contains(entry.Name))
            {
                continue;
            }
            var file = path.Length == 0 ? entry.Name : $"{path}/{entry.Name}";
            UnixFileMode mode;
            try
            {
                mode = File.GetUnixFileMode(_sysfs.PathOf(file));
            }
            catch (IOException)
            {
                continue;
            }
            var isStatic = (mode & UnixFileMode.UserWrite) == 0;
            if ((mode & UnixFileMode.UserRead) == 0)
            {
                result.Add(new Attribute(entry.Name, null, false, isStatic));
                continue;
            }
            var value = await _sysfs.ReadAsync(file, cancellationToken).ConfigureAwait(false);
            result.Add(new Attribute(entry.Name, value?.FirstLine, value?.IsKey ?? false, isStatic));
        }
        return result;
    }

    /// <summary>
    /// scstadmin's key-attribute serialisation: key attributes (numbered ones such as IncomingUser1 folded
    /// into one name, values sorted), plus <c>enabled</c>; read-only attributes only when they are creation
    /// parameters. Values with blanks are quoted, '\' and '#' escaped.
    /// </summary>
    internal static string SerializeKeyAttributes(string prefix, IReadOnlyList<Attribute> attributes, HashSet<string>? createParameters)
    {
        var merged = new SortedDictionary<string, (List<string> Values, string? Plain, bool HasKeys)>(StringComparer.Ordinal);
        foreach (var attribute in attributes)
        {
            if (attribute.Value is null)
            {
                continue;
            }
            var name = attribute.IsKey ? FoldNumbered(attribute.Name) : attribute.Name;
            if (attribute.IsStatic && (createParameters is null || !createParameters.Contains(name)))
            {
                continue;
            }
            if (!merged.TryGetValue(name, out var slot))
            {
                slot = ([], null, false);
            }
            if (attribute.IsKey)
            {
                if (attribute.Value.Length > 0)
                {
                    slot.Values.Add(attribute.Value);
                }
                slot.HasKeys = true;
            }
            else
            {
                slot.Plain = attribute.Value;
            }
            merged[name] = slot;
        }
        var output = new StringBuilder();
        foreach (var (name, slot) in merged)
        {
            if (slot.HasKeys)
            {
                foreach (var value in slot.Values.Order(StringComparer.Ordinal))
                {
                    output.Append(prefix).Append(name).Append(' ').Append(EscapeValue(value)).Append('\n');
                }
            }
            else if (name is "enabled" or "hw_target" && slot.Plain is not null)
            {
                output.Append(prefix).Append(name).Append(' ').Append(slot.Plain).Append('\n');
            }
        }
        return output.ToString();
    }

    /// <summary>IncomingUser1 → IncomingUser (a name made of non-digits followed by digits).</summary>
    internal static string FoldNumbered(string name)
    {
        var end = name.Length;
        while (end > 0 && char.IsAsciiDigit(name[end - 1]))
        {
            end--;
        }
        return end > 0 && end < name.Length && !name[..end].Any(char.IsAsciiDigit) ? name[..end] : name;
    }

    /// <summary>scst.conf value quoting: escape '\' and '#', quote when there is a blank.</summary>
    internal static string EscapeValue(string value)
    {
        var escaped = value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("#", "\\#", StringComparison.Ordinal);
        return escaped.Contains(' ', StringComparison.Ordinal) ? $"\"{escaped}\"" : escaped;
    }

    /// <summary>The names listed after "The following parameters available:" in a mgmt file's help text.</summary>
    internal static HashSet<string> ParseCreateParameters(string help)
    {
        const string Marker = "The following parameters available:";
        var result = new HashSet<string>(StringComparer.Ordinal);
        foreach (var line in help.Split('\n'))
        {
            if (!line.StartsWith(Marker, StringComparison.Ordinal))
            {
                continue;
            }
            foreach (var name in line[Marker.Length..].TrimEnd().TrimEnd('.').Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            {
                result.Add(name);
            }
        }
        return result;
    }

    private async Task<HashSet<string>> CreateParametersAsync(string mgmtPath, string[] fallback, CancellationToken cancellationToken, string? cacheKey = null)
    {
        cacheKey ??= mgmtPath;
        lock (_createParameters)
        {
            if (_createParameters.TryGetValue(cacheKey, out var known))
            {
                return known;
            }
        }
        var help = await _sysfs.ReadAsync(mgmtPath, cancellationToken).ConfigureAwait(false);
        var parsed = help is null ? [] : ParseCreateParameters(help.Value.Text);
        if (parsed.Count == 0)
        {
            parsed = new HashSet<string>(fallback, StringComparer.Ordinal);
        }
        // A mgmt file's help text is fixed while its module is loaded.
        if (help is not null)
        {
            lock (_createParameters)
            {
                _createParameters[cacheKey] = parsed;
            }
        }
        return parsed;
    }

    private static string CollapseTrailingNewlines(string text, string replacement)
    {
        var end = text.Length;
        while (end > 0 && text[end - 1] == '\n')
        {
            end--;
        }
        return end == text.Length ? text : text[..end] + (end == 0 ? "" : replacement);
    }

    private bool TryCached(string key, out string section)
    {
        lock (_sections)
        {
            return _sections.TryGetValue(key, out section!);
        }
    }

    private void Cache(string key, string section)
    {
        lock (_sections)
        {
            _sections[key] = section;
        }
    }

    private static string DeviceKey(string device) => "device\n" + device;
    private static string DriverKey(string driver) => "driver\n" + driver;
    private static string TargetKey(string driver, string target) => $"target\n{driver}\n{target}";
}
