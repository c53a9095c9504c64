using CsiScst.Core.Ids;
using CsiScst.Targets;
using Xunit.Abstractions;

namespace CsiScst.IntegrationTests.Scst;

/// <summary>
/// The saved scst.conf, checked without a golden file: it is parsed back (with a parser written here from
/// scst.conf(5), not the engine's writer) and compared with the live sysfs tree in both directions.
/// </summary>
public sealed class ScstConfigFileTests(ITestOutputHelper output) : IAsyncLifetime
{
    private ScstTestTarget _scst = null!;

    public async Task InitializeAsync() => _scst = await ScstTestTarget.StartAsync(output);

    public async Task DisposeAsync() => await _scst.DisposeAsync();

    [Fact]
    public async Task The_saved_configuration_matches_sysfs_in_both_directions()
    {
        var engine = _scst.CreateEngine();
        var plain = _scst.Spec("pvc-conf-a", new InitiatorAccess(ScstTestTarget.Initiator1, false)) with { BlockSize = 4096 };
        var rich = _scst.Spec("pvc-conf-b", new InitiatorAccess(ScstTestTarget.Initiator1, false), new InitiatorAccess(ScstTestTarget.Initiator2, true)) with
        {
            Chap = new ChapSpec("conf-user", "conf-secret-0123", "conf-target", "conf-mutual-3210"),
            Portals = ["198.51.100.7:3260", "198.51.100.8:3260"],
            IsFile = true,
            BackingPath = _scst.NewBackingFile("conf-b"),
            ThinProvisioned = true,
        };
        // An operator's own export must be saved too: scstadmin -config would delete what the file lacks.
        var foreignTarget = "iqn.2026-01.org.example:conf-foreign";
        Assert.Equal(0, _scst.Write("handlers/vdisk_fileio/mgmt", $"add_device conf_foreign filename={_scst.NewBackingFile("conf-foreign")}"));
        Assert.Equal(0, _scst.Write("targets/iscsi/mgmt", $"add_target {foreignTarget}"));
        Assert.Equal(0, _scst.Write($"targets/iscsi/{foreignTarget}/luns/mgmt", "add conf_foreign 0"));
        await engine.EnsureExportAsync(plain, CancellationToken.None);
        await engine.EnsureExportAsync(rich, CancellationToken.None);

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(_scst.ConfigPath));
        var text = File.ReadAllText(_scst.ConfigPath);
        output.WriteLine(text);
        var config = ScstConf.Parse(text);

        // Devices: every device with a handler is in its HANDLER section, with exactly its key attributes.
        var handlers = config.Sections("HANDLER");
        foreach (var device in _scst.Dirs("devices").Where(d => _scst.LinkName($"devices/{d}/handler") is not null))
        {
            var handler = _scst.LinkName($"devices/{device}/handler")!;
            var section = handlers.Single(h => h.Name == handler).Sections("DEVICE").SingleOrDefault(d => d.Name == device);
            Assert.True(section is not null, $"DEVICE {device} is missing from HANDLER {handler}");
            AssertKeyAttributes($"devices/{device}", section!, CreateParameters($"handlers/{handler}/mgmt"));
        }
        Assert.DoesNotContain(handlers.SelectMany(h => h.Sections("DEVICE")), d => d.Name == "2:0:0:0");
        foreach (var spec in new[] { plain, rich })
        {
            var device = handlers.SelectMany(h => h.Sections("DEVICE")).Single(d => d.Name == spec.DeviceName);
            Assert.Equal([spec.BackingPath], device.Values("filename"));
            Assert.Equal([spec.Serial], device.Values("t10_dev_id"));
            Assert.Equal([spec.Serial], device.Values("usn"));
            Assert.Equal(["0"], device.Values("rotational"));
            Assert.Equal(["1"], device.Values("write_through"));
        }
        Assert.Equal(["4096"], handlers.SelectMany(h => h.Sections("DEVICE")).Single(d => d.Name == plain.DeviceName).Values("blocksize"));
        Assert.Equal(["1"], handlers.SelectMany(h => h.Sections("DEVICE")).Single(d => d.Name == rich.DeviceName).Values("thin_provisioned"));

        // Targets: every iSCSI target, its key attributes, LUNs, groups and initiators.
        var iscsi = config.Sections("TARGET_DRIVER").Single(d => d.Name == "iscsi");
        Assert.Equal(["1"], iscsi.Values("enabled"));
        Assert.Equal(_scst.Dirs("targets/iscsi").ToHashSet(), iscsi.Sections("TARGET").Select(t => t.Name).ToHashSet());
        foreach (var target in iscsi.Sections("TARGET"))
        {
            var tgt = $"targets/iscsi/{target.Name}";
            Assert.Equal([_scst.Attr($"{tgt}/enabled")], target.Values("enabled"));
            AssertKeyAttributes(tgt, target, CreateParameters("targets/iscsi/mgmt"));
            Assert.Equal(Luns($"{tgt}/luns"), target.Luns());
            Assert.Equal(_scst.Dirs($"{tgt}/ini_groups").ToHashSet(), target.Sections("GROUP").Select(g => g.Name).ToHashSet());
            foreach (var group in target.Sections("GROUP"))
            {
                Assert.Equal(_scst.Files($"{tgt}/ini_groups/{group.Name}/initiators"), group.Values("INITIATOR").Order(StringComparer.Ordinal));
                Assert.Equal(Luns($"{tgt}/ini_groups/{group.Name}/luns"), group.Luns());
            }
        }
        var richTarget = iscsi.Sections("TARGET").Single(t => t.Name == rich.TargetIqn);
        Assert.Equal(["conf-user conf-secret-0123"], richTarget.Values("IncomingUser"));
        Assert.Equal(["conf-target conf-mutual-3210"], richTarget.Values("OutgoingUser"));
        Assert.Equal(["198.51.100.7", "198.51.100.8"], richTarget.Values("allowed_portal").Order(StringComparer.Ordinal));
        Assert.Equal([(0, rich.DeviceName, true)], richTarget.Sections("GROUP").Single(g => g.Name == ObjectNames.InitiatorGroup(ScstTestTarget.Initiator2)).Luns());
        Assert.Equal([(0, "conf_foreign", false)], iscsi.Sections("TARGET").Single(t => t.Name == foreignTarget).Luns());

        // copy_manager_tgt is saved without the LUNs SCST gives it by itself.
        var copyManager = config.Sections("TARGET_DRIVER").SingleOrDefault(d => d.Name == "copy_manager");
        Assert.Empty(copyManager?.Sections("TARGET").SelectMany(t => t.Luns()) ?? []);

        // After removal the file follows.
        await engine.RemoveExportAsync(rich.Key, CancellationToken.None);
        var after = ScstConf.Parse(File.ReadAllText(_scst.ConfigPath));
        Assert.DoesNotContain(after.Sections("TARGET_DRIVER").Single(d => d.Name == "iscsi").Sections("TARGET"), t => t.Name == rich.TargetIqn);
        Assert.DoesNotContain(after.Sections("HANDLER").SelectMany(h => h.Sections("DEVICE")), d => d.Name == rich.DeviceName);

        Assert.Equal(0, _scst.Write("targets/iscsi/mgmt", $"del_target {foreignTarget}"));
        Assert.Equal(0, _scst.Write("handlers/vdisk_fileio/mgmt", "del_device conf_foreign"));
    }

    /// <summary>What a mgmt file's help lists after "The following parameters available:" (scstadmin saves read-only attributes only then).</summary>
    private HashSet<string> CreateParameters(string mgmt) =>
        File.ReadAllText(_scst.PathOf(mgmt)).Split('\n')
            .Where(l => l.StartsWith("The following parameters available:", StringComparison.Ordinal))
            .SelectMany(l => l.Split(':', 2)[1].Trim().TrimEnd('.').Split(',', StringSplitOptions.TrimEntries))
            .ToHashSet();

    /// <summary>
    /// Each attribute line of the section names a sysfs attribute marked [key] (numbered ones such as IncomingUser1
    /// folded), with the same value; and each [key] attribute of the object appears in the section, read-only ones
    /// only when they are creation parameters.
    /// </summary>
    private void AssertKeyAttributes(string path, ScstConf.Section section, HashSet<string> createParameters)
    {
        var sysfs = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        foreach (var file in _scst.Files(path))
        {
            var full = _scst.PathOf($"{path}/{file}");
            if ((File.GetUnixFileMode(full) & UnixFileMode.UserRead) == 0 || !_scst.IsKey($"{path}/{file}"))
            {
                continue;
            }
            var name = file.TrimEnd('0', '1', '2', '3', '4', '5', '6', '7', '8', '9');
            var value = _scst.Attr($"{path}/{file}");
            if (value.Length > 0)
            {
                (sysfs.TryGetValue(name, out var list) ? list : sysfs[name] = []).Add(value);
            }
        }
        foreach (var (name, values) in section.Attributes.GroupBy(a => a.Name).Select(g => (g.Key, g.Select(a => a.Value).ToList())))
        {
            if (name == "enabled")
            {
                continue;
            }
            Assert.True(sysfs.ContainsKey(name), $"{path}: {name} is saved but not a key attribute in sysfs");
            Assert.Equal(sysfs[name].Order(StringComparer.Ordinal), values.Order(StringComparer.Ordinal));
        }
        foreach (var name in sysfs.Keys)
        {
            var writable = _scst.Files(path).Where(f => f.TrimEnd('0', '1', '2', '3', '4', '5', '6', '7', '8', '9') == name)
                .Any(f => (File.GetUnixFileMode(_scst.PathOf($"{path}/{f}")) & UnixFileMode.UserWrite) != 0);
            if (writable || createParameters.Contains(name))
            {
                Assert.True(section.Values(name).Count > 0, $"{path}: key attribute {name} is not saved");
            }
        }
    }

    private List<(int Lun, string Device, bool ReadOnly)> Luns(string path) =>
        _scst.Dirs(path).Select(l => (int.Parse(l), _scst.LinkName($"{path}/{l}/device")!, _scst.Attr($"{path}/{l}/read_only") == "1")).OrderBy(l => l.Item1).ToList();
}

/// <summary>A reader of scst.conf(5): sections end a line with '{', '}' closes, "name value" lines, quotes, '#' comments, '\' escapes.</summary>
internal static class ScstConf
{
    internal sealed record Attribute(string Name, string Value);

    internal sealed class Section(string keyword, string name)
    {
        public string Keyword { get; } = keyword;
        public string Name { get; } = name;
        public List<Attribute> Attributes { get; } = [];
        public List<Section> Children { get; } = [];

        public IReadOnlyList<Section> Sections(string keyword) => Children.Where(c => c.Keyword == keyword).ToList();

        public IReadOnlyList<string> Values(string name) => Attributes.Where(a => a.Name == name).Select(a => a.Value).ToList();

        public List<(int Lun, string Device, bool ReadOnly)> Luns() =>
            Children.Where(c => c.Keyword == "LUN")
                .Select(c => (int.Parse(c.Name.Split(' ')[0]), c.Name.Split(' ')[1], c.Values("read_only").SingleOrDefault() == "1"))
                .OrderBy(l => l.Item1).ToList();
    }

    private static readonly string[] Keywords = ["HANDLER", "DEVICE", "TARGET_DRIVER", "TARGET", "GROUP", "LUN", "INITIATOR", "DEVICE_GROUP", "TARGET_GROUP"];

    public static Section Parse(string text)
    {
        var root = new Section("", "");
        var stack = new Stack<Section>();
        stack.Push(root);
        foreach (var raw in text.Split('\n'))
        {
            var line = StripComment(raw).Trim();
            if (line.Length == 0)
            {
                continue;
            }
            if (line == "}")
            {
                stack.Pop();
                continue;
            }
            var opens = line.EndsWith('{');
            if (opens)
            {
                line = line[..^1].TrimEnd();
            }
            var space = line.IndexOf(' ');
            var first = space < 0 ? line : line[..space];
            var rest = space < 0 ? "" : Unquote(line[(space + 1)..].Trim());
            if (Keywords.Contains(first) && (opens || first is "DEVICE" or "TARGET" or "LUN" or "GROUP"))
            {
                var section = new Section(first, rest);
                stack.Peek().Children.Add(section);
                if (opens)
                {
                    stack.Push(section);
                }
            }
            else if (first == "INITIATOR")
            {
                stack.Peek().Attributes.Add(new Attribute(first, rest));
            }
            else
            {
                Assert.False(opens, $"unexpected section '{line}'");
                stack.Peek().Attributes.Add(new Attribute(first, rest));
            }
        }
        Assert.Single(stack);
        return root;
    }

    private static string StripComment(string line)
    {
        var result = new System.Text.StringBuilder();
        for (var i = 0; i < line.Length; i++)
        {
            if (line[i] == '\\' && i + 1 < line.Length)
            {
                result.Append(line[++i]);
            }
            else if (line[i] == '#')
            {
                break;
            }
            else
            {
                result.Append(line[i]);
            }
        }
        return result.ToString();
    }

    private static string Unquote(string value) => value.Length >= 2 && value[0] == '"' && value[^1] == '"' ? value[1..^1] : value;
}
