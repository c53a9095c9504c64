using CsiScst.Core.Errors;
using CsiScst.Core.Exec;
using Microsoft.Extensions.Logging;

namespace CsiScst.Initiator.Mounts;

/// <summary>mount/umount through util-linux, and the mount table read from mountinfo.</summary>
public sealed class Mounter
{
    private readonly IToolRunner _tools;
    private readonly MountOptions _options;
    private readonly ILogger<Mounter> _logger;

    public Mounter(IToolRunner tools, MountOptions options, ILogger<Mounter> logger)
    {
        _tools = tools;
        _options = options;
        _logger = logger;
    }

    public Task<IReadOnlyList<MountEntry>> ReadMountsAsync(CancellationToken cancellationToken) =>
        MountInfo.ReadAsync(_options.MountInfoPath, cancellationToken);

    /// <summary>The top-most mount at exactly this path (the one a process sees), if any.</summary>
    public static MountEntry? MountAt(IReadOnlyList<MountEntry> mounts, string path)
    {
        var normalized = Normalize(path);
        return mounts.LastOrDefault(m => m.MountPoint == normalized);
    }

    public static string Normalize(string path)
    {
        var full = Path.GetFullPath(path);
        return full.Length > 1 ? full.TrimEnd('/') : full;
    }

    public async Task MountAsync(string source, string target, string fsType, IReadOnlyCollection<string> options, CancellationToken cancellationToken)
    {
        var arguments = new List<string> { "-t", fsType };
        if (options.Count > 0)
        {
            arguments.Add("-o");
            arguments.Add(string.Join(',', options));
        }
        arguments.Add(source);
        arguments.Add(target);
        await RunAsync(new ToolCommand("mount", arguments), $"mounting {source} on {target}", cancellationToken).ConfigureAwait(false);
        _logger.LogInformation("Mounted {Source} ({FsType}, {Options}) on {Target}", source, fsType, string.Join(',', options), target);
    }

    /// <summary>Bind mount; read-only needs a second remount (a bind ignores "ro" on older util-linux).</summary>
    public async Task BindAsync(string source, string target, bool readOnly, CancellationToken cancellationToken)
    {
        await RunAsync(new ToolCommand("mount", "--bind", source, target), $"bind mounting {source} on {target}", cancellationToken).ConfigureAwait(false);
        if (readOnly)
        {
            try
            {
                await RunAsync(new ToolCommand("mount", "-o", "remount,bind,ro", target), $"making the bind mount {target} read-only", cancellationToken).ConfigureAwait(false);
            }
            catch
            {
                // Never leave a writable bind behind a read-only request.
                await UnmountAsync(target, CancellationToken.None).ConfigureAwait(false);
                throw;
            }
        }
        _logger.LogInformation("Bind mounted {Source} on {Target} ({Mode})", source, target, readOnly ? "ro" : "rw");
    }

    public async Task UnmountAsync(string target, CancellationToken cancellationToken)
    {
        var delay = _options.UnmountBusyDelay;
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                await RunAsync(new ToolCommand("umount", target), $"unmounting {target}", cancellationToken).ConfigureAwait(false);
                break;
            }
            catch (StatusException e) when (IsBusy(e) && attempt < _options.UnmountBusyRetries)
            {
                _logger.LogInformation("Unmounting {Target}: busy, retrying in {DelayMs} ms", target, delay.TotalMilliseconds);
                await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
                delay *= 2;
            }
            catch (StatusException e) when (IsBusy(e))
            {
                throw StatusException.FailedPrecondition(
                    $"unmounting {target} failed: still busy after {_options.UnmountBusyRetries + 1} attempts (a process has files open below it): {e.InnerException!.Message}");
            }
        }
        _logger.LogInformation("Unmounted {Target}", target);
    }

    // umount(8) exits 32 (mount failure) and says so in its words; EBUSY has no exit code of its own.
    private static bool IsBusy(StatusException e) =>
        e.InnerException is ToolException { Failure: ToolFailure.ExitCode, ExitCode: 32 } tool
        && tool.StandardError.Contains("target is busy", StringComparison.Ordinal);

    private async Task RunAsync(ToolCommand command, string what, CancellationToken cancellationToken)
    {
        try
        {
            await _tools.RunAsync(command with { Timeout = _options.CommandTimeout }, cancellationToken).ConfigureAwait(false);
        }
        catch (ToolException e)
        {
            throw new StatusException(e.SuggestedStatus, $"{what} failed: {e.Message}", e);
        }
    }
}
