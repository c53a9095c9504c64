using System.Globalization;
using CsiScst.ScstModel.Scst.Targets;
using CsiScst.ScstModel.Vfs;

namespace CsiScst.ScstModel.Scst;

/// <summary>
/// M/.model/: plain files that let a test (in any process, or a shell) drive what is outside SCST's sysfs:
/// the daemon, reboots, iSCSI logins, timing of the work queue, the kernel log, SCSI disks of the machine.
/// Writes here act at once and are not recorded in ops.
/// </summary>
internal sealed class ModelControls(ScstSystem model)
{
    private const int ModeRw = 0x1A4;
    private const int ModeRo = 0x124;

    public VDir Root() => new(".model", () =>
    [
        Rw("iscsi_scstd", () => model.Iscsi.Running ? "running\n" : "stopped\n", StoreDaemon),
        Rw("reboot", () => $"{model.Boots}\n", StoreReboot),
        Rw("login", () => SessionManager.LoginHelp, text => StoreResult.Fail(model.Sessions.Login(text))),
        Rw("logout", () => "Usage: echo \"TARGET_IQN SESSION_DIR_NAME\" >logout\n", text => StoreResult.Fail(model.Sessions.Logout(text))),
        Rw("work_ms", () => $"{model.Queue.WorkMs}\n", text => StoreInt(text, v => model.Queue.WorkMs = v)),
        Rw("wait_ms", () => $"{model.Queue.WaitMs}\n", text => StoreInt(text, v => model.Queue.WaitMs = v)),
        Rw("dmesg", () => model.Log.Text, text => StoreClear(text, model.Log.Clear)),
        Rw("scsi_disk", ScsiDisks, StoreScsiDisk),
        Rw("forcibly_close_sessions", () => model.ForciblyCloseSessions ? "1\n" : "0\n", text => StoreInt(text, v => model.ForciblyCloseSessions = v != 0)),
        Rw("ops", () => model.Ops.Text, text => StoreClear(text, model.Ops.Clear)),
        new VFile("README", ModeRo, () => ShowResult.Ok(Readme), null),
    ]);

    private const string Readme =
        "iscsi_scstd  write start|stop; read running|stopped\n" +
        "reboot       write 1: all SCST configuration gone, as after a reboot\n" +
        "login        write \"TARGET INITIATOR IP [portal=IP] [user=U] [secret=S]\": EACCES when refused (reason in dmesg)\n" +
        "logout       write \"TARGET SESSION_DIR\"\n" +
        "work_ms      how long each queued sysfs work takes\n" +
        "wait_ms      how long a writer waits before EAGAIN (SCST: 15000)\n" +
        "dmesg        the kernel log; write clear to empty it\n" +
        "scsi_disk    write H:C:I:L to add a SCSI disk of the machine, \"del H:C:I:L\" to remove it\n" +
        "forcibly_close_sessions  the scst module parameter, 0 or 1\n" +
        "ops          every sysfs write: path, text, errno (0 = accepted); write clear to empty it\n";

    private static VFile Rw(string name, Func<string> show, StoreFn store) => new(name, ModeRw, () => ShowResult.Ok(show()), store);

    private StoreResult StoreDaemon(string text)
    {
        switch (new ScstLexer(text).NextLexem())
        {
            case "start":
                model.Iscsi.Start();
                return StoreResult.Ok;
            case "stop":
                model.Iscsi.Stop();
                return StoreResult.Ok;
            default:
                return StoreResult.Fail(Errno.EINVAL);
        }
    }

    private StoreResult StoreReboot(string text)
    {
        if (new ScstLexer(text).NextLexem() != "1")
        {
            return StoreResult.Fail(Errno.EINVAL);
        }

        model.Reboot();
        return StoreResult.Ok;
    }

    private static StoreResult StoreInt(string text, Action<int> set)
    {
        if (!int.TryParse(text.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out int value))
        {
            return StoreResult.Fail(Errno.EINVAL);
        }

        set(value);
        return StoreResult.Ok;
    }

    private static StoreResult StoreClear(string text, Action clear)
    {
        if (text.Trim() != "clear")
        {
            return StoreResult.Fail(Errno.EINVAL);
        }

        clear();
        return StoreResult.Ok;
    }

    private string ScsiDisks() =>
        string.Concat(model.State.Devices.Values.Where(d => d.Handler is null).Select(d => d.Name + "\n"));

    private StoreResult StoreScsiDisk(string text)
    {
        var lx = new ScstLexer(text);
        string first = lx.NextLexem();
        return first == "del"
            ? StoreResult.Fail(model.Devices.RemoveScsiDisk(lx.NextLexem()))
            : StoreResult.Fail(model.Devices.AddScsiDisk(first));
    }
}
