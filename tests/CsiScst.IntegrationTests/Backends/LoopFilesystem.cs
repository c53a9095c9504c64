using CsiScst.Core.Exec;

namespace CsiScst.IntegrationTests.Backends;

/// <summary>
/// A real filesystem on a loop device over a sparse file: made with the given mkfs, mounted in a unique
/// directory; unmounted, detached and deleted on dispose whatever state it is in.
/// </summary>
internal sealed class LoopFilesystem : IAsyncDisposable
{
    private readonly IToolRunner _tools = Tools.Runner();
    private readonly ScratchDirectory _scratch = new();
    private string? _device;
    private bool _mounted;

    private LoopFilesystem()
    {
        MountPoint = Path.Combine(_scratch.Path, "mnt");
        Image = Path.Combine(_scratch.Path, "disk.img");
    }

    public string MountPoint { get; }
    public string Image { get; }
    public string Device => _device ?? throw new InvalidOperationException("not attached");

    public static async Task<LoopFilesystem> CreateAsync(long sizeBytes, string mkfs, IReadOnlyList<string> mkfsArguments, CancellationToken cancellationToken)
    {
        var fs = new LoopFilesystem();
        try
        {
            Directory.CreateDirectory(fs.MountPoint);
            await using (var image = new FileStream(fs.Image, FileMode.CreateNew))
            {
                image.SetLength(sizeBytes);
            }
            var attached = await fs._tools.RunAsync(new ToolCommand("losetup", "--find", "--show", fs.Image), cancellationToken);
            fs._device = attached.StandardOutput.Trim();
            await fs._tools.RunAsync(new ToolCommand(mkfs, [.. mkfsArguments, fs._device]), cancellationToken);
            await fs._tools.RunAsync(new ToolCommand("mount", fs._device, fs.MountPoint), cancellationToken);
            fs._mounted = true;
            return fs;
        }
        catch
        {
            await fs.DisposeAsync();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        if (_mounted)
        {
            try
            {
                await _tools.RunAsync(new ToolCommand("umount", MountPoint), cts.Token);
            }
            catch (ToolException)
            {
                // Something still holds a file open: detach lazily so nothing stays mounted.
                await _tools.RunAsync(new ToolCommand("umount", "-l", MountPoint), cts.Token);
            }
            _mounted = false;
        }
        if (_device is not null)
        {
            await _tools.RunAsync(new ToolCommand("losetup", "-d", _device), cts.Token);
            _device = null;
        }
        _scratch.Dispose();
    }
}
