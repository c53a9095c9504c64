namespace CsiScst.ScstModel.Tests.Infrastructure;

/// <summary>
/// One mounted model in a fresh directory, with short helpers. Paths are relative to the SCST root
/// (scst_tgt) unless they name a control.
/// </summary>
internal sealed class ModelHarness : IAsyncDisposable
{
    public const string Target = "iqn.2026-01.io.example:vol1";
    public const string Initiator = "iqn.1993-08.org.debian:01:abc";

    private readonly List<string> _files = [];

    private ModelHarness(ScstModelMount mount, string dir)
    {
        Mount = mount;
        Dir = dir;
    }

    public ScstModelMount Mount { get; }

    public string Dir { get; }

    public string Root => Mount.SysfsRoot;

    public static string NewMountDir() => Path.Combine(Path.GetTempPath(), "scstmodel-tests", Guid.NewGuid().ToString("N"));

    public static async Task<ModelHarness> StartAsync(ScstModelOptions? options = null)
    {
        string dir = NewMountDir();
        ScstModelMount mount = await ScstModelMount.StartAsync(dir, options ?? new ScstModelOptions());
        return new ModelHarness(mount, dir);
    }

    public string P(string rel) => Path.Combine(Root, rel);

    public string C(string control) => Path.Combine(Mount.ControlDir, control);

    /// <summary>One write to an SCST file: the errno (0 = accepted).</summary>
    public int W(string rel, string text) => Sys.Write(P(rel), text);

    /// <summary>Reads an SCST file that must be readable.</summary>
    public string R(string rel)
    {
        int errno = Sys.Read(P(rel), out string text);
        Assert.True(errno == 0, $"read {rel}: errno {errno}");
        return text;
    }

    public int ReadErrno(string rel, out string text) => Sys.Read(P(rel), out text);

    public bool Exists(string rel) => Path.Exists(P(rel));

    public int Control(string control, string text) => Sys.Write(C(control), text);

    public string ReadControl(string control)
    {
        Assert.Equal(0, Sys.Read(C(control), out string text));
        return text;
    }

    public string Dmesg => ReadControl("dmesg");

    public string Ops => ReadControl("ops");

    /// <summary>A sparse image file of the given size in the real host filesystem.</summary>
    public string Image(long size)
    {
        string path = Path.Combine(Path.GetTempPath(), $"scstmodel-{Guid.NewGuid():N}.img");
        using (FileStream f = File.Create(path))
        {
            f.SetLength(size);
        }

        _files.Add(path);
        return path;
    }

    // ---- the usual steps, each asserted ----

    /// <summary>A write that must be accepted.</summary>
    public void Ok(string rel, string text)
    {
        int errno = W(rel, text);
        Assert.True(errno == 0, $"write '{text.TrimEnd()}' to {rel}: errno {errno}");
    }

    public string AddFileDevice(string name, long size = 16 << 20, string handler = "vdisk_fileio", string extra = "")
    {
        string img = Image(size);
        Ok($"handlers/{handler}/mgmt", $"add_device {name} filename={img}{extra}\n");
        return img;
    }

    public void AddTarget(string target = Target) => Ok("targets/iscsi/mgmt", $"add_target {target}\n");

    public string T(string target = Target) => $"targets/iscsi/{target}";

    /// <summary>F: device, target, group with LUN 0 and the initiator, target and driver enabled.</summary>
    public void Export(string device, string group = "grp1", string initiator = Initiator, string target = Target)
    {
        if (!Exists($"devices/{device}"))
        {
            AddFileDevice(device);
        }

        if (!Exists(T(target)))
        {
            AddTarget(target);
        }

        Ok($"{T(target)}/ini_groups/mgmt", $"create {group}\n");
        Ok($"{T(target)}/ini_groups/{group}/luns/mgmt", $"add {device} 0\n");
        Ok($"{T(target)}/ini_groups/{group}/initiators/mgmt", $"add {initiator}\n");
        Ok($"{T(target)}/enabled", "1\n");
        Ok("targets/iscsi/enabled", "1\n");
    }

    public int Login(string initiator = Initiator, string ip = "10.0.0.9", string target = Target, string extra = "") =>
        Control("login", $"{target} {initiator} {ip}{extra}\n");

    public async ValueTask DisposeAsync()
    {
        await Mount.DisposeAsync();
        foreach (string f in _files)
        {
            File.Delete(f);
        }

        try
        {
            Directory.Delete(Dir);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>Each test gets its own mount (xunit makes one class instance per test).</summary>
public abstract class ModelTest : IAsyncLifetime
{
    internal ModelHarness M { get; private set; } = null!;

    protected virtual ScstModelOptions Options => new();

    public async Task InitializeAsync() => M = await ModelHarness.StartAsync(Options);

    public async Task DisposeAsync() => await M.DisposeAsync();
}
