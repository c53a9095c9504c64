using CsiScst.ScstModel.Fuse;
using CsiScst.ScstModel.Scst;
using CsiScst.ScstModel.Vfs;

namespace CsiScst.ScstModel;

/// <summary>
/// A mounted SCST sysfs model. <see cref="SysfsRoot"/> is what the engine gets as /sys/kernel/scst_tgt;
/// <see cref="ControlDir"/> holds the test controls (.model/README lists them). The FUSE server lives in
/// this process, so the engine under test can run (and be SIGKILLed) in another one.
/// </summary>
/// <example><code>
/// await using var model = await ScstModelMount.StartAsync("/tmp/scst-model", new ScstModelOptions(), ct);
/// File.WriteAllText(Path.Combine(model.SysfsRoot, "handlers/vdisk_nullio/mgmt"), "add_device d1\n");
/// </code></example>
public sealed class ScstModelMount : IAsyncDisposable, IDisposable
{
    private const string ScstDir = "scst_tgt";
    private const string ControlsDir = ".model";

    private readonly ScstSystem _model;
    private readonly FuseServer _server;
    private int _disposed;

    private ScstModelMount(ScstSystem model, FuseServer server)
    {
        _model = model;
        _server = server;
    }

    /// <summary>The directory the model is mounted on.</summary>
    public string MountPoint => _server.MountPoint;

    /// <summary>The SCST sysfs root (the engine's /sys/kernel/scst_tgt).</summary>
    public string SysfsRoot => Path.Combine(MountPoint, ScstDir);

    /// <summary>The test controls: iscsi_scstd, reboot, login, logout, work_ms, wait_ms, dmesg, scsi_disk, ...</summary>
    public string ControlDir => Path.Combine(MountPoint, ControlsDir);

    /// <summary>
    /// Mounts a fresh model (no devices, no targets; iscsi-scstd running unless the options say otherwise)
    /// at <paramref name="mountPoint"/>, creating the directory and replacing a stale mount of a crashed run.
    /// </summary>
    public static Task<ScstModelMount> StartAsync(string mountPoint, ScstModelOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new ScstModelOptions();
        return Task.Run(() => Start(mountPoint, options), cancellationToken);
    }

    private static ScstModelMount Start(string mountPoint, ScstModelOptions options)
    {
        var model = new ScstSystem(options);
        try
        {
            string prefix = ScstDir + "/";
            var fs = new VirtualFileSystem(model.Sync, model.BuildRoot(), model.Queue, (path, text, errno) =>
            {
                if (path.StartsWith(prefix, StringComparison.Ordinal))
                {
                    model.Ops.Add(path[prefix.Length..], text, errno);
                }
            });
            return new ScstModelMount(model, FuseServer.Mount(mountPoint, fs, options.MountTimeout));
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>Unmounts (lazily: files still open on the mount then fail with ENOTCONN) and stops the model.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _server.Dispose();
        _model.Dispose();
    }

    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }
}
