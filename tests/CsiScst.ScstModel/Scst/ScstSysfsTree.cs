using System.Collections.Immutable;
using System.Globalization;
using CsiScst.ScstModel.Scst.Devices;
using CsiScst.ScstModel.Vfs;

namespace CsiScst.ScstModel.Scst;

/// <summary>
/// The layout of /sys/kernel/scst_tgt (interfaces.md A.2), built afresh from the state on each lookup.
/// Values carry the second "[key]" line on non-default values as SCST prints them. Stores that SCST
/// queues to its sysfs work thread hand their work to the queue (A.3); the others act at once.
/// </summary>
internal sealed partial class ScstSysfsTree(ScstSystem model)
{
    public const string Version = "3.11.0-pre";

    private const int ModeRo = 0x124;   // 0444
    private const int ModeRw = 0x1A4;   // 0644
    private const int ModeWo = 0x080;   // 0200

    private ScstState S => model.State;

    private KernelLog Log => model.Log;

    public VDir Root() => new("scst_tgt", () =>
    [
        Ro("version", () => Version + "\n"),
        Rw("setup_id", () => $"0x{S.SetupId:x}\n{(S.SetupId == 0 ? "" : "[key]")}\n", StoreSetupId),
        Rw("threads", () => Key(S.Threads, S.Threads != S.Cpus), StoreThreads),
        Rw("suspend", () => $"{S.Suspend}\n", StoreSuspend),
        Rw("trace_level", TraceLevelText, StoreTraceLevel),
        new VFile("last_sysfs_mgmt_res", ModeRo, ShowLastResult, null),
        Rw("measure_latency", () => $"{S.MeasureLatency}\n", t => StoreSwitch(t, v => S.MeasureLatency = v)),
        Rw("poll_us", () => Key(S.PollUs, S.PollUs != 0), StorePollUs),
        Rw("cluster_name", () => S.ClusterName.Length == 0 ? "" : $"{S.ClusterName}\n[key]\n", StoreClusterName),
        Dir("handlers", () => S.Handlers.Select(HandlerDir)),
        Dir("devices", () => S.Devices.Values.Select(DeviceDir), name => S.Devices.TryGetValue(name, out ScstDevice? d) ? DeviceDir(d) : null),
        Dir("targets", () => S.Drivers.Select(DriverDir)),
        Dir("sgv", SgvEntries),
    ]);

    // ---- helpers ----

    private static VFile Ro(string name, Func<string> show) => new(name, ModeRo, () => ShowResult.Ok(show()), null);

    private static VFile Rw(string name, Func<string> show, StoreFn store) => new(name, ModeRw, () => ShowResult.Ok(show()), store);

    private static VFile Wo(string name, StoreFn store) => new(name, ModeWo, null, store);

    private static VDir Dir(string name, Func<IEnumerable<VNode>> children) => new(name, children);

    /// <summary>A directory that grows with the exports: <paramref name="lookup"/> finds one child without building the others.</summary>
    private static VDir Dir(string name, Func<IEnumerable<VNode>> children, Func<string, VNode?> lookup) => new(name, children, lookup);

    /// <summary>A value line, plus the "[key]" line when it is not the default.</summary>
    private static string Key(object value, bool key) =>
        string.Create(CultureInfo.InvariantCulture, $"{value}\n") + (key ? "[key]\n" : "");

    private static string Bit(bool value) => value ? "1" : "0";

    /// <summary>
    /// The relative target sysfs gives a symlink in <paramref name="fromDir"/> to <paramref name="to"/> (both under
    /// scst_tgt): up to their common ancestor, then down (kernfs_get_target_path).
    /// </summary>
    private static string Rel(string fromDir, string to)
    {
        string[] from = fromDir.Split('/');
        string[] target = to.Split('/');
        int common = 0;
        while (common < from.Length && common < target.Length - 1 && from[common] == target[common])
        {
            common++;
        }

        return string.Concat(Enumerable.Repeat("../", from.Length - common)) + string.Join('/', target[common..]);
    }

    private StoreResult StoreSwitch(string text, Action<int> set)
    {
        int errno = KernelNumbers.ParseULong(text, out ulong v);
        if (errno != 0)
        {
            return StoreResult.Fail(errno);
        }

        if (v > 1)
        {
            return StoreResult.Fail(Errno.EINVAL);
        }

        set((int)v);
        return StoreResult.Ok;
    }

    // ---- root attributes ----

    private ShowResult ShowLastResult() =>
        model.Queue.LastResult is { } last ? ShowResult.Ok($"{last}\n") : ShowResult.Fail(Errno.EAGAIN);

    private StoreResult StoreSetupId(string text)
    {
        int errno = KernelNumbers.ParseULong(text, uint.MaxValue, out ulong v);
        if (errno != 0)
        {
            Log.Error("scst", $"strict_strtoul() for {text.TrimEnd()} failed: {-errno}");
            return StoreResult.Fail(errno);
        }

        S.SetupId = (uint)v;
        Log.Info("scst", $"Changed scst_setup_id to {v:x}");
        return StoreResult.Ok;
    }

    private StoreResult StoreThreads(string text)
    {
        int errno = KernelNumbers.ParseLong(text, out long v);
        if (errno != 0)
        {
            return StoreResult.Fail(errno);
        }

        if (v <= 0 || v > 1024)
        {
            Log.Error("scst", $"Illegal threads num value {v}");
            return StoreResult.Fail(Errno.EINVAL);
        }

        return StoreResult.Queued(() =>
        {
            S.Threads = (int)v;
            return 0;
        });
    }

    private StoreResult StoreSuspend(string text)
    {
        int errno = KernelNumbers.ParseLong(text, out long v);
        if (errno != 0)
        {
            return StoreResult.Fail(errno);
        }

        // Suspending activity has no effect in a model without I/O: the value is only remembered.
        S.Suspend = v;
        return StoreResult.Ok;
    }

    private StoreResult StorePollUs(string text)
    {
        int errno = KernelNumbers.ParseULong(text, out ulong v);
        if (errno != 0)
        {
            return StoreResult.Fail(errno);
        }

        S.PollUs = v;
        return StoreResult.Ok;
    }

    private StoreResult StoreClusterName(string text)
    {
        string name = text.TrimEnd('\n');
        if (name.Length > 64)
        {
            return StoreResult.Fail(Errno.EINVAL);
        }

        S.ClusterName = name;
        return StoreResult.Ok;
    }

    private static readonly ImmutableArray<string> TraceTokens =
    [
        "out_of_mem", "minor", "sg", "mem", "buff", "entryexit", "pid", "line", "function", "debug", "special",
        "scsi", "mgmt", "mgmt_dbg", "flow_control", "pr", "retry", "scsi_serializing", "data_send", "data_received", "block",
    ];

    private string TraceLevelText() =>
        S.TraceLevel + "\n\n\nUsage:\n" +
        "\techo \"all|none|default\" >trace_level\n" +
        "\techo \"value DEC|0xHEX|0OCT\" >trace_level\n" +
        "\techo \"add|del TOKEN\" >trace_level\n" +
        "\nwhere TOKEN is one of [" + string.Join(", ", TraceTokens) + "]\n";

    /// <summary>scst_write_trace: all|none|null|default|value N|add TOKEN|del TOKEN.</summary>
    private StoreResult StoreTraceLevel(string text)
    {
        var lx = new ScstLexer(text);
        string action = lx.NextLexem().ToLowerInvariant();
        string arg = lx.NextLexem();
        switch (action)
        {
            case "all":
                S.TraceLevel = string.Join(" | ", TraceTokens);
                return StoreResult.Ok;
            case "none":
            case "null":
                S.TraceLevel = "";
                return StoreResult.Ok;
            case "default":
                S.TraceLevel = "out_of_mem | minor | pid | line | function | special | mgmt | mgmt_dbg";
                return StoreResult.Ok;
            case "value":
                int errno = KernelNumbers.ParseULong(arg, out ulong value);
                if (errno != 0)
                {
                    Log.Error("scst", $"Invalid trace value \"{arg}\"");
                    return StoreResult.Fail(Errno.EINVAL);
                }

                S.TraceLevel = string.Join(" | ", TraceTokens.Where((_, i) => i < 64 && (value & (1UL << i)) != 0));
                return StoreResult.Ok;
            case "add":
            case "del":
                if (!TraceTokens.Contains(arg, StringComparer.OrdinalIgnoreCase))
                {
                    Log.Error("scst", $"Unknown token \"{arg}\"");
                    return StoreResult.Fail(Errno.EINVAL);
                }

                var tokens = S.TraceLevel.Split(" | ", StringSplitOptions.RemoveEmptyEntries).ToList();
                tokens.RemoveAll(t => t.Equals(arg, StringComparison.OrdinalIgnoreCase));
                if (action == "add")
                {
                    tokens.Add(arg.ToLowerInvariant());
                }

                S.TraceLevel = string.Join(" | ", tokens);
                return StoreResult.Ok;
            default:
                Log.Error("scst", $"Unknown action \"{action}\"");
                return StoreResult.Fail(Errno.EINVAL);
        }
    }

    // ---- handlers ----

    private VDir HandlerDir(ScstHandler h) => Dir(
        h.Name,
        () => HandlerAttributes(h).Concat(S.Devices.Values.Where(d => d.Handler == h).Select(HandlerDeviceLink)),
        name => VDir.Find(HandlerAttributes(h), name)
            ?? (S.Devices.TryGetValue(name, out ScstDevice? d) && d.Handler == h ? HandlerDeviceLink(d) : null));

    private IEnumerable<VNode> HandlerAttributes(ScstHandler h) =>
    [
        Rw("mgmt", () => model.Devices.MgmtHelp(h), text => StoreResult.Queued(() => model.Devices.ProcessMgmt(h, text))),
        Ro("type", () => VdiskHandlers.TypeText(h.ScsiType) + "\n"),
        Rw("trace_level", TraceLevelText, StoreTraceLevel),
    ];

    private static VLink HandlerDeviceLink(ScstDevice d) => new(d.Name, $"../../devices/{d.Name}");

    // ---- sgv ----

    private static IEnumerable<VNode> SgvEntries() =>
    [
        Ro("global_stats", () => "Inactive/active pages\t\t0/0\nHi/lo watermarks [pages]\t0/0\nHi watermark releases/failures\t0/0\nOther allocs\t\t\t0\n"),
        Dir("sgv", () => [Ro("stats", () => "Name: sgv, size 1 pages\nHit: 0, total: 0, other 0\n")]),
        Dir("sgv-clust", () => [Ro("stats", () => "Name: sgv-clust, size 1 pages\nHit: 0, total: 0, other 0\n")]),
        Dir("sgv-dma", () => [Ro("stats", () => "Name: sgv-dma, size 1 pages\nHit: 0, total: 0, other 0\n")]),
    ];
}
