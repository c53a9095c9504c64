using CsiScst.Core.Faults;
using System.Buffers;
using System.Globalization;
using System.IO.Enumeration;
using System.Text;
using CsiScst.Core.Errors;
using CsiScst.Core.Metrics;
using Grpc.Core;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using CsiScst.Targets.Native;

namespace CsiScst.Targets.Scst;

/// <summary>An attribute's value with SCST's trailing <c>[key]</c> line removed, and whether that line was there.</summary>
internal readonly record struct ScstValue(string Text, bool IsKey)
{
    /// <summary>The first line (what scstadmin takes as the value).</summary>
    public string FirstLine
    {
        get
        {
            var newline = Text.IndexOf('\n');
            return newline < 0 ? Text : Text[..newline];
        }
    }
}

internal enum ScstEntryKind
{
    File,
    Directory,
    Link,
}

internal readonly record struct ScstEntry(string Name, ScstEntryKind Kind);

/// <summary>
/// All I/O with SCST's sysfs tree (interfaces.md A.3): one command per write(2) with a trailing newline; every
/// write under one process-wide lock because <c>last_sysfs_mgmt_res</c> is global; a write that answers EAGAIN
/// is still running in the kernel, so its result is polled from <c>last_sysfs_mgmt_res</c> (which itself
/// answers EAGAIN while work is in flight); reads that answer EAGAIN are retried. Time spent waiting for the
/// lock and in sysfs calls is counted as external time.
/// </summary>
public sealed class ScstSysfs
{
    internal const string LastResultFile = "last_sysfs_mgmt_res";
    private const int MaxWriteAttempts = 3;

    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly ScstOptions _options;
    private readonly ExternalTime _externalTime;
    private readonly FaultPoints _faults;
    private readonly ILogger<ScstSysfs> _logger;
    private readonly TimeProvider _time;
    private long _writes;
    private long _reads;

    public ScstSysfs(IOptions<ScstOptions> options, ExternalTime externalTime, ILogger<ScstSysfs> logger, TimeProvider? time = null)
    {
        _options = options.Value;
        _externalTime = externalTime;
        // Crash-test points: scst-write (before each sysfs write), scst-written (after one the kernel
        // accepted), scst-poll (while waiting for a command that answered EAGAIN).
        _faults = new FaultPoints(options.Value.FaultPoint);
        _logger = logger;
        _time = time ?? TimeProvider.System;
        Root = Path.GetFullPath(_options.SysfsRoot);
    }

    public string Root { get; }

    /// <summary>Writes accepted so far (tests and the crash-test child report it).</summary>
    public long WriteCount => Interlocked.Read(ref _writes);

    /// <summary>Reads, directory listings and link reads so far (what a reconcile costs, independent of machine load).</summary>
    public long ReadCount => Interlocked.Read(ref _reads);

    public string PathOf(string relative) => relative.Length == 0 ? Root : Path.Join(Root, relative);

    /// <summary>Writes one command; returns 0 or the errno SCST reported (after polling, for EAGAIN).</summary>
    internal async Task<int> TryWriteAsync(string relative, ScstCommand command, CancellationToken cancellationToken)
    {
        using var measured = _externalTime.Measure();
        await _writeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var path = PathOf(relative);
            var bytes = Encoding.UTF8.GetBytes(command.Text + "\n");
            for (var attempt = 1; ; attempt++)
            {
                _faults.Hit("scst-write");
                var errno = WriteOnce(path, bytes);
                if (errno == Errno.EAGAIN)
                {
                    _logger.LogInformation("SCST is still executing {Command} on {Path}; polling {ResultFile}", command.Display, path, LastResultFile);
                    errno = await PollResultAsync(path, command, cancellationToken).ConfigureAwait(false);
                }
                else if (errno == Errno.EINTR && attempt < MaxWriteAttempts)
                {
                    // Interrupted while SCST may have queued the work: wait until nothing is in flight, then
                    // repeat the command; every caller treats "already done" (EEXIST, …) as success.
                    await PollResultAsync(path, command, cancellationToken).ConfigureAwait(false);
                    continue;
                }
                if (errno == 0)
                {
                    Interlocked.Increment(ref _writes);
                    _faults.Hit("scst-written");
                }
                _logger.LogDebug("SCST write {Path} {Command}: {Result}", path, command.Display, Errno.Name(errno));
                return errno;
            }
        }
        finally
        {
            _writeLock.Release();
        }
    }

    /// <summary>Writes one command and throws the mapped StatusException on any error.</summary>
    internal async Task WriteAsync(string relative, ScstCommand command, CancellationToken cancellationToken)
    {
        var errno = await TryWriteAsync(relative, command, cancellationToken).ConfigureAwait(false);
        if (errno != 0)
        {
            throw ScstErrors.ForWrite(errno, PathOf(relative), command);
        }
    }

    private static int WriteOnce(string path, byte[] bytes)
    {
        var fd = RawFile.Open(path, RawFile.O_WRONLY);
        if (fd < 0)
        {
            return -fd;
        }
        try
        {
            var written = RawFile.Write(fd, bytes);
            if (written < 0)
            {
                return (int)-written;
            }
            return written == bytes.Length ? 0 : Errno.EIO;
        }
        finally
        {
            RawFile.Close(fd);
        }
    }

    /// <summary>Waits for the in-flight work to finish and returns its errno (0 on success).</summary>
    private async Task<int> PollResultAsync(string path, ScstCommand command, CancellationToken cancellationToken)
    {
        var resultPath = PathOf(LastResultFile);
        var deadline = _time.GetTimestamp() + (long)(_options.CommandTimeout.TotalSeconds * _time.TimestampFrequency);
        while (true)
        {
            _faults.Hit("scst-poll");
            var (errno, text) = ReadOnce(resultPath);
            if (errno == 0)
            {
                var value = text.Trim();
                if (int.TryParse(value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var result))
                {
                    return result < 0 ? -result : 0;
                }
                throw StatusException.Internal($"{resultPath} holds '{value}', not a number, after '{command.Display}' on {path}");
            }
            if (errno != Errno.EAGAIN)
            {
                throw StatusException.Internal($"reading {resultPath} after '{command.Display}' on {path} failed with {Errno.Name(errno)}");
            }
            if (_time.GetTimestamp() > deadline)
            {
                throw new StatusException(StatusCode.DeadlineExceeded,
                    $"SCST has not finished '{command.Display}' on {path} within {_options.CommandTimeout.TotalSeconds:0} s; it keeps running in the kernel, retry later");
            }
            await Task.Delay(_options.PollInterval, _time, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Reads an attribute; null when it (or its directory) does not exist. EAGAIN is retried.</summary>
    internal async Task<ScstValue?> ReadAsync(string relative, CancellationToken cancellationToken)
    {
        var path = PathOf(relative);
        var deadline = _time.GetTimestamp() + (long)(_options.ReadTimeout.TotalSeconds * _time.TimestampFrequency);
        while (true)
        {
            int errno;
            string text;
            using (_externalTime.Measure())
            {
                (errno, text) = ReadOnce(path);
            }
            switch (errno)
            {
                case 0:
                    return Parse(text);
                case Errno.ENOENT or Errno.ENOTDIR or Errno.ENODEV:
                    return null;
                case Errno.EAGAIN when _time.GetTimestamp() <= deadline:
                    await Task.Delay(_options.PollInterval, _time, cancellationToken).ConfigureAwait(false);
                    continue;
                case Errno.EAGAIN:
                    throw new StatusException(StatusCode.DeadlineExceeded, $"reading {path} kept failing with EAGAIN for {_options.ReadTimeout.TotalSeconds:0} s");
                case Errno.EPERM or Errno.EACCES:
                    // Write-only attributes (force_close, resync_size, …) cannot be read.
                    return null;
                default:
                    throw StatusException.Internal($"reading {path} failed with {Errno.Name(errno)}");
            }
        }
    }

    /// <summary>The first line of an attribute, or null when missing.</summary>
    internal async Task<string?> ReadLineAsync(string relative, CancellationToken cancellationToken) =>
        (await ReadAsync(relative, cancellationToken).ConfigureAwait(false))?.FirstLine;

    internal static ScstValue Parse(string text)
    {
        var body = text.TrimEnd('\n');
        var isKey = false;
        var lastNewline = body.LastIndexOf('\n');
        var lastLine = lastNewline < 0 ? body : body[(lastNewline + 1)..];
        if (lastLine.Trim() == "[key]")
        {
            isKey = true;
            body = lastNewline < 0 ? "" : body[..lastNewline].TrimEnd('\n');
        }
        return new ScstValue(body, isKey);
    }

    private (int Errno, string Text) ReadOnce(string path)
    {
        Interlocked.Increment(ref _reads);
        var fd = RawFile.Open(path, RawFile.O_RDONLY);
        if (fd < 0)
        {
            return (-fd, "");
        }
        var buffer = ArrayPool<byte>.Shared.Rent(64 * 1024);
        try
        {
            var read = RawFile.ReadAll(fd, buffer);
            return read < 0 ? (-read, "") : (0, Encoding.UTF8.GetString(buffer, 0, read));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
            RawFile.Close(fd);
        }
    }

    /// <summary>Entries of a directory (empty when it does not exist), without following links.</summary>
    internal IReadOnlyList<ScstEntry> List(string relative)
    {
        var path = PathOf(relative);
        Interlocked.Increment(ref _reads);
        using var measured = _externalTime.Measure();
        try
        {
            var enumerable = new FileSystemEnumerable<ScstEntry>(path,
                (ref FileSystemEntry entry) => ToEntry(ref entry),
                new EnumerationOptions { AttributesToSkip = 0, IgnoreInaccessible = true, RecurseSubdirectories = false, ReturnSpecialDirectories = false });
            return enumerable.ToList();
        }
        catch (Exception e) when (e is DirectoryNotFoundException or FileNotFoundException or IOException)
        {
            return [];
        }
    }

    private static ScstEntry ToEntry(ref FileSystemEntry entry)
    {
        var name = entry.FileName.ToString();
        // Every link in SCST's tree points at a directory (handler, device, luns, exportN, a handler's devices);
        // not following it keeps a listing at one readdir instead of a stat per link.
        return (entry.Attributes & FileAttributes.ReparsePoint) != 0
            ? new ScstEntry(name, ScstEntryKind.Link)
            : new ScstEntry(name, entry.IsDirectory ? ScstEntryKind.Directory : ScstEntryKind.File);
    }

    /// <summary>Names of the subdirectories (not links) of a directory.</summary>
    internal IEnumerable<string> ListDirectories(string relative) =>
        List(relative).Where(e => e.Kind == ScstEntryKind.Directory).Select(e => e.Name);

    /// <summary>The last path component a link points to (e.g. a LUN's device name), or null.</summary>
    internal string? ReadLinkName(string relative)
    {
        Interlocked.Increment(ref _reads);
        using var measured = _externalTime.Measure();
        try
        {
            var info = new FileInfo(PathOf(relative));
            var target = info.LinkTarget;
            return target is null ? null : Path.GetFileName(target.TrimEnd('/'));
        }
        catch (IOException)
        {
            return null;
        }
    }

    internal bool DirectoryExists(string relative)
    {
        Interlocked.Increment(ref _reads);
        using var measured = _externalTime.Measure();
        return Directory.Exists(PathOf(relative));
    }
}
