using CsiScst.ScstModel.Scst.Devices;
using CsiScst.ScstModel.Scst.Targets;
using CsiScst.ScstModel.Vfs;

namespace CsiScst.ScstModel.Scst;

/// <summary>
/// The modelled SCST: its configuration (<see cref="State"/>, wiped by a reboot), the one lock that plays
/// scst_mutex, the sysfs work queue, the kernel log, and the services that implement the commands.
/// </summary>
internal sealed class ScstSystem : IDisposable
{
    public ScstSystem(ScstModelOptions options)
    {
        Options = options;
        Queue = new SysfsWorkQueue(Sync, options.WorkMs, options.WaitMs);
        ForciblyCloseSessions = options.ForciblyCloseSessions;
        State = NewState();
        Devices = new DeviceManager(this);
        Luns = new LunManager(this);
        Groups = new GroupManager(this);
        Sessions = new SessionManager(this);
        Iscsi = new IscsiDaemon(this);
        if (options.IscsiScstdRunningAtBoot)
        {
            Iscsi.Start();
        }
    }

    public ScstModelOptions Options { get; }

    /// <summary>scst_mutex: every show, store and queued work runs under it.</summary>
    public object Sync { get; } = new();

    public ScstState State { get; private set; }

    public KernelLog Log { get; } = new();

    public OpsLog Ops { get; } = new();

    public SysfsWorkQueue Queue { get; }

    public DeviceManager Devices { get; }

    public LunManager Luns { get; }

    public GroupManager Groups { get; }

    public SessionManager Sessions { get; }

    public IscsiDaemon Iscsi { get; }

    public bool ForciblyCloseSessions { get; set; }

    public int Boots { get; private set; }

    /// <summary>The mount's root: scst_tgt (the sysfs root the engine gets) and .model (test controls).</summary>
    public VDir BuildRoot()
    {
        VDir scst = new ScstSysfsTree(this).Root();
        VDir controls = new ModelControls(this).Root();
        return new VDir("", () => [scst, controls]);
    }

    /// <summary>Everything gone as after a reboot or module reload; the copy manager comes back (A.2).</summary>
    public void Reboot()
    {
        lock (Sync)
        {
            foreach (ScstTarget t in State.AllTargets)
            {
                foreach (ScstSession s in t.Sessions.Values)
                {
                    s.Alive = false;
                }

                foreach (ScstAcg g in t.AllAcgs)
                {
                    g.Alive = false;
                }

                t.Alive = false;
            }

            foreach (ScstDevice d in State.Devices.Values)
            {
                d.Alive = false;
            }

            Queue.Reset();
            State = NewState();
            Boots++;
            Log.Clear();
            Ops.Mark($"reboot {Boots}");
            if (Options.IscsiScstdRunningAtBoot)
            {
                Iscsi.Start();
            }
        }
    }

    public void Dispose() => Queue.Dispose();

    private ScstState NewState() => new(VdiskHandlers.Create(), Math.Max(1, Options.Cpus));
}
