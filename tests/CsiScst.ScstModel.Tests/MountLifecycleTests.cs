using System.Diagnostics;
using CsiScst.ScstModel.Tests.Infrastructure;

namespace CsiScst.ScstModel.Tests;

/// <summary>
/// The model as a mount that outlives its clients (crash tests SIGKILL the engine mid-write), and that
/// cleans up after itself or after a crashed earlier run of the model.
/// </summary>
public sealed class MountLifecycleTests
{
    private static bool Mounted(string dir) =>
        File.ReadAllLines("/proc/self/mountinfo").Any(l => l.Split(' ')[4] == dir.TrimEnd('/'));

    private static void Until(Func<bool> condition, string what)
    {
        for (int i = 0; i < 600; i++)
        {
            if (condition())
            {
                return;
            }

            Thread.Sleep(50);
        }

        throw new TimeoutException(what);
    }

    [Fact]
    public async Task Dispose_unmounts()
    {
        // Harness contract: ScstModelMount.Dispose leaves no mount behind.
        ModelHarness m = await ModelHarness.StartAsync();
        Assert.True(Mounted(m.Dir));
        Assert.Equal("3.11.0-pre\n", m.R("version"));
        await m.DisposeAsync();
        Assert.False(Mounted(m.Dir));
    }

    [Fact]
    public async Task A3_the_mount_survives_a_writer_killed_mid_write_and_its_work_still_completes()
    {
        // A.3: the work of a write keeps running even when the writer is gone; crash tests SIGKILL the engine.
        await using ModelHarness m = await ModelHarness.StartAsync(new ScstModelOptions { WorkMs = 1500 });
        string mgmt = m.P("handlers/vdisk_nullio/mgmt");
        var psi = new ProcessStartInfo("sh", ["-c", $"echo 'add_device killed1' > '{mgmt}'"]);
        using Process writer = Process.Start(psi)!;

        // The write is in flight once last_sysfs_mgmt_res answers EAGAIN.
        Until(() => m.ReadErrno("last_sysfs_mgmt_res", out _) == Sys.EAGAIN, "the write never reached the model");
        writer.Kill();
        writer.WaitForExit();

        // The mount still serves other processes meanwhile, and the killed writer's work completes.
        Assert.Equal("3.11.0-pre\n", m.R("version"));
        Until(() => m.ReadErrno("last_sysfs_mgmt_res", out string t) == 0 && t == "0\n", "the work did not complete");
        Assert.True(m.Exists("devices/killed1"));
        Assert.Contains("handlers/vdisk_nullio/mgmt\tadd_device killed1\\n\t", m.Ops);
    }

    [Fact]
    public async Task A3_an_interrupted_writer_gets_EINTR_while_its_work_completes()
    {
        // scst_sysfs_queue_wait_work waits interruptibly: a signal ends the writer's wait, not the work.
        await using ModelHarness m = await ModelHarness.StartAsync(new ScstModelOptions { WorkMs = 1500 });
        const string client = """
            import ctypes, os, signal, sys
            signal.signal(signal.SIGUSR1, lambda s, f: None)
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(sys.argv[1], os.O_WRONLY)
            cmd = b"add_device intr1\n"
            print(libc.write(fd, cmd, len(cmd)), ctypes.get_errno(), flush=True)
            """;
        var psi = new ProcessStartInfo("/usr/bin/python3") { RedirectStandardOutput = true };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add(client);
        psi.ArgumentList.Add(m.P("handlers/vdisk_nullio/mgmt"));
        using Process writer = Process.Start(psi)!;
        Until(() => m.ReadErrno("last_sysfs_mgmt_res", out _) == Sys.EAGAIN, "the write never reached the model");
        Assert.Equal(0, Kill(writer.Id, 10)); // SIGUSR1, which the client handles
        Assert.Equal($"-1 {Sys.EINTR}", writer.StandardOutput.ReadLine());
        writer.WaitForExit();
        Until(() => m.Exists("devices/intr1"), "the work did not complete");
    }

    [Fact]
    public async Task A_stale_mount_of_a_crashed_model_process_is_replaced()
    {
        // Harness contract (not an interfaces.md behaviour): a model killed in an earlier run must not block the next one.
        string dir = ModelHarness.NewMountDir();
        using (Process crashed = StartConsole(dir))
        {
            crashed.Kill(); // SIGKILL: the device closes, the mount stays behind with every access failing
            crashed.WaitForExit();
        }

        Assert.True(Mounted(dir));
        Assert.Equal(Sys.ENOTCONN, Sys.Read(Path.Combine(dir, "scst_tgt/version"), out _));

        await using (ScstModelMount mount = await ScstModelMount.StartAsync(dir))
        {
            Assert.Equal(0, Sys.Read(Path.Combine(mount.SysfsRoot, "version"), out string version));
            Assert.Equal("3.11.0-pre\n", version);
        }

        Assert.False(Mounted(dir));
        Directory.Delete(dir);
    }

    [Fact]
    public void The_console_entry_point_mounts_until_SIGTERM()
    {
        // Harness contract: "dotnet CsiScst.ScstModel.dll --mount DIR" serves until SIGTERM, then unmounts.
        string dir = ModelHarness.NewMountDir();
        using Process model = StartConsole(dir, "--work-ms", "0", "--wait-ms", "1000", "--no-iscsi-scstd");
        Assert.Equal(0, Sys.Read(Path.Combine(dir, ".model/wait_ms"), out string wait));
        Assert.Equal("1000\n", wait);
        Assert.Equal(0, Sys.Read(Path.Combine(dir, "scst_tgt/targets/iscsi/open_state"), out string state));
        Assert.Equal("closed\n", state);

        Assert.Equal(0, Kill(model.Id, 15));
        Assert.True(model.WaitForExit(30_000));
        Assert.Equal(0, model.ExitCode);
        Assert.False(Mounted(dir));
        Directory.Delete(dir);
    }

    /// <summary>Starts "dotnet CsiScst.ScstModel.dll --mount DIR ..." and waits for its "mounted" line.</summary>
    private static Process StartConsole(string dir, params string[] extra)
    {
        string dll = Path.Combine(AppContext.BaseDirectory, "CsiScst.ScstModel.dll");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true };
        foreach (string a in new[] { dll, "--mount", dir }.Concat(extra))
        {
            psi.ArgumentList.Add(a);
        }

        Process p = Process.Start(psi)!;
        string? line = p.StandardOutput.ReadLine();
        Assert.StartsWith("mounted ", line);
        return p;
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);
}
