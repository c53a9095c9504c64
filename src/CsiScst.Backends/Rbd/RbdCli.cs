using System.Globalization;
using CsiScst.Backends.Pools;
using CsiScst.Core.Errors;
using CsiScst.Core.Exec;
using Grpc.Core;

namespace CsiScst.Backends.Rbd;

/// <summary>
/// Runs <c>rbd</c> and <c>ceph</c> against the operator's cluster with the pool's identity (--id, --keyring,
/// -c, -m; the key itself never appears on a command line) and bounded waits, and turns their failures into
/// statuses. rbd exits with the errno of the failure; a failed connection also exits with an errno (ENOENT
/// for a missing keyring!), so connection failures are recognised by their message first.
/// </summary>
internal sealed class RbdCli
{
    public const int EPERM = 1;
    public const int ENOENT = 2;
    public const int ENXIO = 6;
    public const int EACCES = 13;
    public const int EBUSY = 16;
    public const int EEXIST = 17;
    public const int EINVAL = 22;
    public const int ENOSPC = 28;
    public const int ENOTEMPTY = 39;
    public const int ETIMEDOUT = 110;
    public const int EDQUOT = 122;

    /// <summary>Data-moving commands (flatten, rm of an image without object map) are bounded per RADOS op, not in total.</summary>
    public static readonly TimeSpan LongTimeout = TimeSpan.FromHours(2);

    private static readonly Dictionary<string, string> Environment = new(StringComparer.Ordinal)
    {
        // Snapshot timestamps are printed in local time.
        ["TZ"] = "UTC",
    };

    private readonly RbdPoolOptions _options;
    private readonly IToolRunner _tools;

    public RbdCli(RbdPoolOptions options, IToolRunner tools)
    {
        _options = options;
        _tools = tools;
    }

    public string PoolSpec => _options.Namespace.Length == 0 ? _options.Pool : _options.Pool + "/" + _options.Namespace;

    public string ImageSpec(string image) => PoolSpec + "/" + image;

    public string SnapshotSpec(string image, string snapshot) => ImageSpec(image) + "@" + snapshot;

    /// <summary>Who we are, for messages: never the key.</summary>
    public string Identity => $"client.{_options.User}" + (_options.Keyring is null ? "" : $" (keyring {_options.Keyring})");

    public sealed record Result(int ExitCode, string StandardOutput, string StandardError);

    /// <summary>
    /// Runs rbd. Exit codes in <paramref name="tolerated"/> (errnos such as ENOENT) are returned instead of
    /// thrown, unless the failure was the connection itself.
    /// </summary>
    public Task<Result> RbdAsync(string what, IReadOnlyList<string> arguments, CancellationToken cancellationToken, TimeSpan? timeout = null, params int[] tolerated) =>
        RunAsync("rbd", what, [.. CommonArguments(), "--client_mount_timeout", Seconds(ConnectTimeout), "--rados_mon_op_timeout", Seconds(_options.Timeout),
            "--rados_osd_op_timeout", Seconds(_options.Timeout), .. arguments], timeout ?? _options.Timeout, tolerated, cancellationToken);

    public Task<Result> CephAsync(string what, IReadOnlyList<string> arguments, CancellationToken cancellationToken) =>
        RunAsync("ceph", what, [.. CommonArguments(), "--connect-timeout", Seconds(ConnectTimeout), .. arguments], _options.Timeout, [], cancellationToken);

    /// <summary>Connecting gives up before the whole command is killed, so rbd reports it itself (ETIMEDOUT).</summary>
    private TimeSpan ConnectTimeout => TimeSpan.FromSeconds(Math.Max(1, Math.Floor(_options.Timeout.TotalSeconds * 2 / 3)));

    private static string Seconds(TimeSpan span) => ((int)Math.Ceiling(span.TotalSeconds)).ToString(CultureInfo.InvariantCulture);

    private IEnumerable<string> CommonArguments()
    {
        yield return "--id";
        yield return _options.User;
        if (_options.Keyring is not null)
        {
            yield return "--keyring";
            yield return _options.Keyring;
        }
        yield return "-c";
        yield return _options.Conf;
        if (_options.MonHost is not null)
        {
            yield return "-m";
            yield return _options.MonHost;
        }
    }

    private async Task<Result> RunAsync(string tool, string what, IReadOnlyList<string> arguments, TimeSpan timeout, int[] tolerated, CancellationToken cancellationToken)
    {
        var command = new ToolCommand(tool, arguments)
        {
            Timeout = timeout,
            SuccessExitCodes = [0, .. tolerated],
            Environment = Environment,
        };
        ToolResult result;
        try
        {
            result = await _tools.RunAsync(command, cancellationToken).ConfigureAwait(false);
        }
        catch (ToolException e)
        {
            throw e.Failure switch
            {
                ToolFailure.TimedOut => StatusException.Unavailable(
                    $"{what}: the Ceph cluster did not answer within {timeout.TotalSeconds:0.#} s ({MonitorsText}); are the monitors up and reachable?", e),
                ToolFailure.NotFound => StatusException.FailedPrecondition($"{what}: the {tool} command is not installed on this storage node (Debian/Ubuntu package ceph-common)"),
                _ => Classify(what, e.ExitCode ?? -1, e.StandardError, e, tool),
            };
        }
        if (result.ExitCode != 0 && IsConnectionFailure(result.StandardError))
        {
            throw Classify(what, result.ExitCode, result.StandardError, null, tool);
        }
        return new Result(result.ExitCode, result.StandardOutput, result.StandardError);
    }

    private string MonitorsText => _options.MonHost is not null ? $"mon_host {_options.MonHost}" : $"monitors of {_options.Conf}";

    private static bool IsConnectionFailure(string stderr) =>
        stderr.Contains("couldn't connect to the cluster", StringComparison.Ordinal)
        || stderr.Contains("error connecting to the cluster", StringComparison.Ordinal);

    /// <summary>The status for a failed rbd/ceph run; callers handle the errnos that mean something to them first.</summary>
    public StatusException Classify(string what, int exitCode, string stderr, Exception? inner, string tool = "rbd")
    {
        var tail = Tail(stderr);
        if (tool == "ceph")
        {
            // The ceph CLI (Python) exits 1 for most failures and says "timed out" when --connect-timeout expires.
            if (stderr.Contains("timed out", StringComparison.Ordinal) && !IsConnectionFailure(stderr))
            {
                return StatusException.Unavailable($"{what}: cannot reach the Ceph cluster ({MonitorsText}): {tail}", inner);
            }
            if (exitCode == EPERM && !stderr.Contains("denied", StringComparison.OrdinalIgnoreCase) && !IsConnectionFailure(stderr))
            {
                return StatusException.Internal($"{what}: exit code {exitCode}: {tail}", inner);
            }
        }
        if (IsConnectionFailure(stderr))
        {
            if (stderr.Contains("unable to find a keyring", StringComparison.Ordinal) || stderr.Contains("keyring not found", StringComparison.Ordinal))
            {
                return new StatusException(StatusCode.Unauthenticated,
                    $"{what}: no readable, well-formed keyring for {Identity} on this storage node: {tail}", inner);
            }
            if (exitCode is EPERM or EACCES || stderr.Contains("handle_auth_bad_method", StringComparison.Ordinal)
                || stderr.Contains("permission denied", StringComparison.OrdinalIgnoreCase))
            {
                return new StatusException(StatusCode.Unauthenticated,
                    $"{what}: the Ceph monitors refused {Identity}: is the key in the keyring the cluster's key for this user? ({tail})", inner);
            }
            return StatusException.Unavailable($"{what}: cannot reach the Ceph cluster ({MonitorsText}): {tail}", inner);
        }
        if (exitCode == ENOENT && stderr.Contains("error opening pool", StringComparison.Ordinal))
        {
            return StatusException.Unavailable($"{what}: the Ceph pool {PoolSpec} cannot be opened (does it exist?): {tail}", inner);
        }
        return exitCode switch
        {
            EPERM or EACCES => new StatusException(StatusCode.PermissionDenied,
                $"{what}: {Identity} is not allowed to do this in pool {PoolSpec}; it needs mon 'profile rbd', osd 'profile rbd pool={_options.Pool}', mgr 'profile rbd pool={_options.Pool}': {tail}", inner),
            ENOSPC or EDQUOT => StatusException.ResourceExhausted($"{what}: the Ceph pool {PoolSpec} is full: {tail}"),
            ETIMEDOUT => StatusException.Unavailable($"{what}: the Ceph cluster did not complete the request in time ({MonitorsText}): {tail}", inner),
            ENOENT => StatusException.NotFound($"{what}: {tail}"),
            _ => StatusException.Internal($"{what}: exit code {exitCode}: {tail}", inner),
        };
    }

    /// <summary>The last lines of stderr without Ceph's log prefix ("2026-… 7f… -1 librbd: …").</summary>
    public static string Tail(string stderr)
    {
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(StripLogPrefix)
            .Where(l => l.Length > 0 && !l.StartsWith("In some cases useful info", StringComparison.Ordinal))
            .Distinct()
            .TakeLast(3);
        var text = string.Join(" | ", lines);
        return text.Length > 500 ? text[^500..] : text;
    }

    private static string StripLogPrefix(string line)
    {
        // "2026-11-25T08:10:14.070+0000 7fb799ac66c0 -1 librbd::X: message"
        if (line.Length > 30 && char.IsAsciiDigit(line[0]) && line[4] == '-' && line.Contains('T', StringComparison.Ordinal))
        {
            var parts = line.Split(' ', 4, StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length == 4)
            {
                return parts[3];
            }
        }
        return line;
    }
}
