using System.Collections.Immutable;
using CsiScst.ScstModel.Scst.Targets;
using CsiScst.ScstModel.Vfs;

namespace CsiScst.ScstModel.Scst;

/// <summary>targets/iscsi/TGT/sessions/&lt;initiator&gt;[_N]/ (interfaces.md A.2, A.6).</summary>
internal sealed partial class ScstSysfsTree
{
    private static readonly ImmutableArray<string> IoCounters =
    [
        "unknown_cmd_count", "write_cmd_count", "write_io_count_kb", "read_cmd_count",
        "read_io_count_kb", "bidi_cmd_count", "bidi_io_count_kb", "none_cmd_count",
    ];

    private VDir SessionDir(ScstSession s, string dir) => Dir(s.DirName, () => SessionEntries(s, dir));

    private IEnumerable<VNode> SessionEntries(ScstSession s, string dir)
    {
        yield return Ro("initiator_name", () => s.InitiatorName + "\n");
        yield return Ro("sid", () => SessionManager.SidText(s) + "\n");
        yield return Ro("reinstating", () => "0\n");
        yield return Ro("thread_pid", () => "0\n");
        yield return Ro("commands", () => "0\n");
        yield return Ro("active_commands", () => "0\n");

        // A.6: "echo 1 > sessions/X/force_close" closes the session (any value; at once, not queued).
        yield return Wo("force_close", _ =>
        {
            model.Sessions.Close(s, "force_close");
            return StoreResult.Ok;
        });

        // A.6: the luns link shows which LUN set the session uses.
        string luns = s.Acg.IsDefault ? "luns" : $"ini_groups/{s.Acg.Name}/luns";
        yield return new VLink("luns", Rel(dir, $"targets/{s.Target.Driver.Name}/{s.Target.Name}/{luns}"));
        foreach (ScstLun lun in s.Acg.Luns.Values)
        {
            yield return Dir($"lun{lun.Number}", () => [Ro("active_commands", () => "0\n")]);
        }

        foreach ((string name, string value) in s.Negotiated)
        {
            yield return Ro(name, () => value + "\n");
        }

        foreach (string counter in IoCounters)
        {
            yield return Rw(counter, () => "0\n", _ => StoreResult.Ok);
        }

        // A.6: the initiator IP names the connection directory and is in its ip file.
        yield return Dir(s.Ip, () =>
        [
            Ro("cid", () => "0\n"),
            Ro("ip", () => s.Ip + "\n"),
            Ro("state", () => "established\n"),
        ]);
    }
}
