using System.Diagnostics;

namespace CsiScst.IntegrationTests.NodePlugin;

/// <summary>Runs host tools for test setup and checks (argument lists, no shell).</summary>
internal static class Host
{
    public static (int ExitCode, string Stdout, string Stderr) Try(string program, params string[] arguments) =>
        TryWithInput(null, program, arguments);

    public static string RunWithInput(string input, string program, params string[] arguments)
    {
        var (code, stdout, stderr) = TryWithInput(input, program, arguments);
        return code == 0 ? stdout : throw new InvalidOperationException($"{program} {string.Join(' ', arguments)} exited with {code}: {stderr.Trim()}");
    }

    public static (int ExitCode, string Stdout, string Stderr) TryWithInput(string? input, string program, params string[] arguments)
    {
        var info = new ProcessStartInfo(program)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }
        info.Environment["LC_ALL"] = "C";
        using var process = Process.Start(info)!;
        if (input is not null)
        {
            process.StandardInput.Write(input);
        }
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(2)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{program} {string.Join(' ', arguments)} did not finish");
        }
        return (process.ExitCode, stdout.Result, stderr.Result);
    }

    public static string Run(string program, params string[] arguments)
    {
        var (code, stdout, stderr) = Try(program, arguments);
        if (code != 0)
        {
            throw new InvalidOperationException($"{program} {string.Join(' ', arguments)} exited with {code}: {stderr.Trim()}");
        }
        return stdout;
    }

    /// <summary>Whether anything is mounted at the path, asked of util-linux (not of our parser).</summary>
    public static bool IsMountPoint(string path) => Try("mountpoint", "-q", path).ExitCode == 0;

    /// <summary>findmnt's view of one mount point: "SOURCE FSTYPE OPTIONS".</summary>
    public static string FindMnt(string path) =>
        Run("findmnt", "-n", "-r", "-o", "SOURCE,FSTYPE,OPTIONS", "--mountpoint", path).Trim();

    /// <summary>Unmounts everything at the path (lazily as a last resort), ignoring "not mounted".</summary>
    public static void UnmountAll(string path)
    {
        for (var i = 0; i < 10 && IsMountPoint(path); i++)
        {
            if (Try("umount", path).ExitCode != 0)
            {
                Try("umount", "-l", path);
            }
        }
    }
}

/// <summary>A sparse file attached to a loop device, detached and deleted on dispose.</summary>
internal sealed class LoopDevice : IDisposable
{
    private LoopDevice(string file, string device)
    {
        File = file;
        Device = device;
    }

    public string File { get; }
    public string Device { get; }
    public string Name => Path.GetFileName(Device);

    public static LoopDevice Create(string directory, long bytes)
    {
        var file = Path.Join(directory, $"disk-{Guid.NewGuid():N}.img");
        using (var stream = new FileStream(file, FileMode.CreateNew))
        {
            stream.SetLength(bytes);
        }
        var device = Host.Run("losetup", "-f", "--show", file).Trim();
        return new LoopDevice(file, device);
    }

    /// <summary>Grows the backing file and tells the loop driver (like a target growing a LUN).</summary>
    public void Grow(long bytes)
    {
        using (var stream = new FileStream(File, FileMode.Open))
        {
            stream.SetLength(bytes);
        }
        Host.Run("losetup", "-c", Device);
    }

    public void Dispose()
    {
        Host.Try("losetup", "-d", Device);
        try
        {
            System.IO.File.Delete(File);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>A per-test directory under /tmp; everything mounted under it is unmounted on dispose.</summary>
internal sealed class Scratch : IDisposable
{
    private readonly List<IDisposable> _owned = [];

    public Scratch()
    {
        Root = System.IO.Path.Join(System.IO.Path.GetTempPath(), "csi-scst-node-it", Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(Root);
    }

    public string Root { get; }

    public string Path(params string[] parts) => System.IO.Path.Join([Root, .. parts]);

    public LoopDevice Loop(long bytes)
    {
        var loop = LoopDevice.Create(Root, bytes);
        _owned.Add(loop);
        return loop;
    }

    public void Dispose()
    {
        // Deepest mounts first, then devices, then files.
        var mounts = System.IO.File.ReadAllLines("/proc/self/mountinfo")
            .Select(l => l.Split(' '))
            .Where(f => f.Length > 4)
            .Select(f => CsiScst.Initiator.Mounts.MountInfo.Unescape(f[4]))
            .Where(p => p.StartsWith(Root + "/", StringComparison.Ordinal))
            .Distinct()
            .OrderByDescending(p => p.Length)
            .ToArray();
        foreach (var mount in mounts)
        {
            Host.UnmountAll(mount);
        }
        for (var i = _owned.Count - 1; i >= 0; i--)
        {
            _owned[i].Dispose();
        }
        try
        {
            Directory.Delete(Root, recursive: true);
            // The shared parent goes with the last test (fails harmlessly while others still use it).
            Directory.Delete(System.IO.Path.GetDirectoryName(Root)!, recursive: false);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>Linux capabilities of this test process.</summary>
internal static class Capabilities
{
    private const int SysResource = 24;

    public static bool HasSysResource() => Has(SysResource);

    private static bool Has(int capability)
    {
        var line = File.ReadAllLines("/proc/self/status").First(l => l.StartsWith("CapEff:", StringComparison.Ordinal));
        var mask = Convert.ToUInt64(line["CapEff:".Length..].Trim(), 16);
        return (mask & (1UL << capability)) != 0;
    }
}
