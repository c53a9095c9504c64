using System.Globalization;
using CsiScst.Core.Exec;
using CsiScst.Core.Ids;
using CsiScst.Core.Metrics;
using CsiScst.Targets;
using CsiScst.Targets.Lio;
using Microsoft.Extensions.Logging;

// lio-driver COMMAND [options] — drives LioEngine against the real configfs (VM scenario only).
//   probe [--no-modules]
//   names NAME                                  key, IQN, backstore name and serial of a volume name
//   ensure NAME --backing PATH [--file] [--rw IQN]... [--ro IQN]... [--chap USER:SECRET]
//          [--mutual USER:SECRET] [--portal IP:PORT]... [--write-back] [--thin]
//                                              converges the export and records its spec in --state
//   resync NAME | remove NAME | reconcile | list | sessions | stats
//   --state DIR (default /var/tmp/lio-driver), --instance ID (default vm), --root CONFIGFS_ROOT
var argsList = args.ToList();
string Option(string name, string fallback)
{
    var i = argsList.IndexOf(name);
    if (i < 0 || i + 1 >= argsList.Count)
    {
        return fallback;
    }
    var value = argsList[i + 1];
    argsList.RemoveRange(i, 2);
    return value;
}
List<string> Options(string name)
{
    var values = new List<string>();
    int i;
    while ((i = argsList.IndexOf(name)) >= 0 && i + 1 < argsList.Count)
    {
        values.Add(argsList[i + 1]);
        argsList.RemoveRange(i, 2);
    }
    return values;
}
bool Flag(string name) => argsList.Remove(name);

var stateDir = Option("--state", "/var/tmp/lio-driver");
var names = new ObjectNames(Option("--instance", "vm"));
var options = new LioOptions { ConfigfsRoot = Option("--root", LioOptions.DefaultConfigfsRoot), LoadModules = !Flag("--no-modules") };
using var loggerFactory = LoggerFactory.Create(b => b.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Information));
var runner = new ToolRunner(new DriverMetrics(), new ExternalTime(), loggerFactory.CreateLogger<ToolRunner>());
var engine = new LioEngine(new LinuxConfigfs(), runner, options, names, loggerFactory.CreateLogger<LioEngine>());
var command = argsList.Count > 0 ? argsList[0] : "help";
var ct = CancellationToken.None;
Directory.CreateDirectory(stateDir);

try
{
    switch (command)
    {
        case "probe":
            var health = await engine.ProbeAsync(ct);
            Console.WriteLine(health.Ready ? "ready" : "not ready: " + health.Reason);
            return health.Ready ? 0 : 1;
        case "names":
        {
            var key = names.VolumeKey(argsList[1]);
            Console.WriteLine($"{key} {names.TargetIqn(key)} {names.DeviceName(key)} {ObjectNames.Serial(key)}");
            return 0;
        }
        case "ensure":
        {
            var name = argsList[1];
            var key = names.VolumeKey(name);
            var chap = Option("--chap", "");
            var mutual = Option("--mutual", "");
            var spec = new ExportSpec
            {
                Key = key,
                TargetIqn = names.TargetIqn(key),
                DeviceName = names.DeviceName(key),
                BackingPath = Option("--backing", ""),
                IsFile = Flag("--file"),
                Serial = ObjectNames.Serial(key),
                WriteCache = Flag("--write-back") ? WriteCacheMode.WriteBack : WriteCacheMode.WriteThrough,
                ThinProvisioned = Flag("--thin"),
                Initiators = [.. Options("--rw").Select(i => new InitiatorAccess(i, false)), .. Options("--ro").Select(i => new InitiatorAccess(i, true))],
                Portals = Options("--portal"),
                Chap = chap.Length == 0 ? null : new ChapSpec(chap.Split(':')[0], chap.Split(':')[1],
                    mutual.Length == 0 ? null : mutual.Split(':')[0], mutual.Length == 0 ? null : mutual.Split(':')[1]),
            };
            await engine.EnsureExportAsync(spec, ct);
            File.WriteAllLines(Path.Combine(stateDir, name + ".spec"), Save(name, spec));
            Console.WriteLine($"{spec.TargetIqn} {spec.Serial}");
            return 0;
        }
        case "resync":
            await engine.ResyncSizeAsync(Load(Path.Combine(stateDir, argsList[1] + ".spec")), ct);
            return 0;
        case "remove":
            await engine.RemoveExportAsync(names.VolumeKey(argsList[1]), ct);
            File.Delete(Path.Combine(stateDir, argsList[1] + ".spec"));
            return 0;
        case "reconcile":
        {
            var specs = Directory.GetFiles(stateDir, "*.spec").Select(Load).ToList();
            var result = await engine.ReconcileAsync(specs, ct);
            Console.WriteLine($"checked={result.Checked} repaired={result.Repaired} orphans={result.OrphansRemoved} errors={result.Errors.Count}");
            foreach (var error in result.Errors)
            {
                Console.WriteLine("error: " + error);
            }
            return result.Errors.Count == 0 ? 0 : 1;
        }
        case "list":
            foreach (var e in await engine.ListExportsAsync(ct))
            {
                Console.WriteLine($"{e.Key} {e.TargetIqn} backing={e.BackingPath} serial={e.Serial} enabled={e.Enabled} size={e.SizeBytes} chap={e.ChapEnabled} "
                    + "initiators=" + string.Join(",", e.Initiators.Select(i => i.InitiatorIqn + (i.ReadOnly ? ":ro" : ":rw"))));
            }
            return 0;
        case "sessions":
            foreach (var s in await engine.ListSessionsAsync(ct))
            {
                Console.WriteLine($"{s.Key} {s.TargetIqn} {s.InitiatorIqn} {s.InitiatorAddress}");
            }
            return 0;
        case "stats":
            foreach (var s in await engine.GetStatsAsync(ct))
            {
                Console.WriteLine($"{s.Key} read_bytes={s.ReadBytes} written_bytes={s.WrittenBytes} sessions={s.Sessions} commands={engine.ReadCommandCount(s.Key)}");
            }
            return 0;
        default:
            Console.Error.WriteLine("usage: lio-driver probe|names|ensure|resync|remove|reconcile|list|sessions|stats …");
            return 2;
    }
}
catch (CsiScst.Core.Errors.StatusException e)
{
    Console.Error.WriteLine($"{e.Code}: {e.Message}");
    return 3;
}

static IEnumerable<string> Save(string name, ExportSpec spec)
{
    yield return "name=" + name;
    yield return "backing=" + spec.BackingPath;
    yield return "file=" + (spec.IsFile ? "1" : "0");
    yield return "writeback=" + (spec.WriteCache == WriteCacheMode.WriteBack ? "1" : "0");
    yield return "thin=" + (spec.ThinProvisioned ? "1" : "0");
    foreach (var i in spec.Initiators)
    {
        yield return (i.ReadOnly ? "ro=" : "rw=") + i.InitiatorIqn;
    }
    foreach (var p in spec.Portals)
    {
        yield return "portal=" + p;
    }
    if (spec.Chap is { } chap)
    {
        yield return $"chap={chap.User}:{chap.Secret}";
        if (chap.Mutual)
        {
            yield return $"mutual={chap.MutualUser}:{chap.MutualSecret}";
        }
    }
}

ExportSpec Load(string path)
{
    var lines = File.ReadAllLines(path).Select(l => (K: l[..l.IndexOf('=', StringComparison.Ordinal)], V: l[(l.IndexOf('=', StringComparison.Ordinal) + 1)..])).ToList();
    string One(string k) => lines.FirstOrDefault(l => l.K == k).V ?? "";
    var key = names.VolumeKey(One("name"));
    var chap = One("chap");
    var mutual = One("mutual");
    return new ExportSpec
    {
        Key = key,
        TargetIqn = names.TargetIqn(key),
        DeviceName = names.DeviceName(key),
        BackingPath = One("backing"),
        IsFile = One("file") == "1",
        Serial = ObjectNames.Serial(key),
        WriteCache = One("writeback") == "1" ? WriteCacheMode.WriteBack : WriteCacheMode.WriteThrough,
        ThinProvisioned = One("thin") == "1",
        Initiators = [.. lines.Where(l => l.K is "rw" or "ro").Select(l => new InitiatorAccess(l.V, l.K == "ro"))],
        Portals = [.. lines.Where(l => l.K == "portal").Select(l => l.V)],
        Chap = chap.Length == 0 ? null : new ChapSpec(chap.Split(':')[0], chap.Split(':')[1],
            mutual.Length == 0 ? null : mutual.Split(':')[0], mutual.Length == 0 ? null : mutual.Split(':')[1]),
    };
}
