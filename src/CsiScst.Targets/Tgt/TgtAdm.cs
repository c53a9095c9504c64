using CsiScst.Core.Errors;
using CsiScst.Core.Exec;

namespace CsiScst.Targets.Tgt;

/// <summary>What a failed tgtadm call means; tgtadm exits 22 for every daemon-side error and only the message tells them apart.</summary>
internal enum TgtError
{
    Other,
    TargetExists,
    NoTarget,
    LunExists,
    NoLun,
    AclExists,
    NoAcl,
    AccountExists,
    NoAccount,
    OutgoingAccountExists,
    TargetActive,
    NoSession,
    InvalidRequest,
    PreventRemoval,
    /// <summary>tgtadm could not talk to tgtd (no daemon on that control port).</summary>
    DaemonUnreachable,
}

internal sealed class TgtAdmException : Exception
{
    public TgtAdmException(TgtError error, ToolException inner)
        : base(inner.Message, inner)
    {
        Error = error;
    }

    public TgtError Error { get; }
}

/// <summary>
/// Runs tgtadm against one tgtd (its control port) through the tool runner and classifies failures.
/// Every call is one daemon round trip (~4 ms); callers batch reads through <see cref="ShowTargetsAsync"/>.
/// </summary>
internal sealed class TgtAdm
{
    private readonly IToolRunner _runner;
    private readonly TgtOptions _options;

    public TgtAdm(IToolRunner runner, TgtOptions options)
    {
        _runner = runner;
        _options = options;
    }

    public int ControlPort => _options.ControlPort;

    public static TgtError Classify(int? exitCode, string standardError)
    {
        var message = LastMessage(standardError);
        if (exitCode != 22)
        {
            // Transport failures carry an errno as the exit status (107 ENOTCONN, 111 ECONNREFUSED, 2 ENOENT …).
            return message.Contains("tgt daemon", StringComparison.Ordinal) || message.Contains("connect", StringComparison.Ordinal)
                ? TgtError.DaemonUnreachable
                : TgtError.Other;
        }
        return message switch
        {
            "this target already exists" => TgtError.TargetExists,
            "can't find the target" => TgtError.NoTarget,
            "this logical unit number already exists" => TgtError.LunExists,
            "can't find the logical unit" => TgtError.NoLun,
            "this access control rule already exists" => TgtError.AclExists,
            "this access control rule does not exist" => TgtError.NoAcl,
            "this account already exists" => TgtError.AccountExists,
            "can't find the account" => TgtError.NoAccount,
            "this target already has an outgoing account" => TgtError.OutgoingAccountExists,
            "this target is still active" => TgtError.TargetActive,
            "can't find the session" => TgtError.NoSession,
            "invalid request" => TgtError.InvalidRequest,
            "this device has Prevent Removal set" => TgtError.PreventRemoval,
            _ when message.Contains("tgt daemon", StringComparison.Ordinal) => TgtError.DaemonUnreachable,
            _ => TgtError.Other,
        };
    }

    /// <summary>The text after "tgtadm: " on the last stderr line that has one.</summary>
    public static string LastMessage(string standardError)
    {
        var lines = standardError.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        for (var i = lines.Length - 1; i >= 0; i--)
        {
            const string prefix = "tgtadm: ";
            if (lines[i].StartsWith(prefix, StringComparison.Ordinal))
            {
                return lines[i][prefix.Length..].Trim();
            }
        }
        return lines.Length > 0 ? lines[^1] : "";
    }

    /// <summary>Runs <c>tgtadm -C port --lld iscsi ARGS</c>; a failure becomes <see cref="TgtAdmException"/>.</summary>
    public async Task<string> RunAsync(IReadOnlyList<string> arguments, CancellationToken cancellationToken, IReadOnlyCollection<string>? secrets = null, bool lld = true)
    {
        var all = new List<string>(arguments.Count + 4) { "--control-port", _options.ControlPort.ToString(System.Globalization.CultureInfo.InvariantCulture) };
        if (lld)
        {
            all.Add("--lld");
            all.Add("iscsi");
        }
        all.AddRange(arguments);
        var command = new ToolCommand(_options.TgtadmPath, all)
        {
            Timeout = _options.CommandTimeout,
            Secrets = secrets ?? [],
        };
        try
        {
            var result = await _runner.RunAsync(command, cancellationToken).ConfigureAwait(false);
            return result.StandardOutput;
        }
        catch (ToolException e) when (e.Failure == ToolFailure.ExitCode)
        {
            throw new TgtAdmException(Classify(e.ExitCode, e.StandardError), e);
        }
        catch (ToolException e) when (e.Failure == ToolFailure.NotFound)
        {
            throw StatusException.Unavailable($"tgtadm ({_options.TgtadmPath}) cannot be run: is the tgt package installed? {e.Message}", e);
        }
    }

    /// <summary>Runs a command whose listed failures mean "already as wanted"; returns false for those.</summary>
    public async Task<bool> RunIdempotentAsync(IReadOnlyList<string> arguments, CancellationToken cancellationToken, params TgtError[] alreadyDone)
    {
        try
        {
            await RunAsync(arguments, cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (TgtAdmException e) when (alreadyDone.Contains(e.Error))
        {
            return false;
        }
    }

    public async Task<List<TgtTarget>> ShowTargetsAsync(CancellationToken cancellationToken) =>
        TgtShowParser.ParseTargets(await RunAsync(["--mode", "target", "--op", "show"], cancellationToken).ConfigureAwait(false));

    /// <summary>The live sessions of one target: one small read, independent of how many targets tgtd holds.</summary>
    public async Task<List<TgtNexus>> ShowConnectionsAsync(int tid, CancellationToken cancellationToken) =>
        TgtShowParser.ParseConnections(await RunAsync(["--mode", "conn", "--op", "show", "--tid", tid.ToString(System.Globalization.CultureInfo.InvariantCulture)],
            cancellationToken).ConfigureAwait(false));

    /// <summary>
    /// tgtadm's Unix socket for this control port (tgtadm.c: $TGT_IPC_SOCKET or /var/run/tgtd/socket, then ".PORT").
    /// A tgtd that starts binds it anew, so its modification time identifies one daemon's life.
    /// </summary>
    public string SocketPath =>
        (Environment.GetEnvironmentVariable("TGT_IPC_SOCKET") is { Length: > 0 } path ? path : "/var/run/tgtd/socket")
        + "." + _options.ControlPort.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>The socket's modification time (null when there is none): changes when tgtd restarts.</summary>
    public DateTime? DaemonStamp()
    {
        var info = new FileInfo(SocketPath);
        return info.Exists ? info.LastWriteTimeUtc : null;
    }

    public async Task<List<string>> ShowAccountsAsync(CancellationToken cancellationToken) =>
        TgtShowParser.ParseAccounts(await RunAsync(["--mode", "account", "--op", "show"], cancellationToken).ConfigureAwait(false));

    public async Task<List<string>> ShowPortalsAsync(CancellationToken cancellationToken) =>
        TgtShowParser.ParsePortals(await RunAsync(["--mode", "portal", "--op", "show"], cancellationToken).ConfigureAwait(false));

    public async Task<string> ShowSystemAsync(CancellationToken cancellationToken) =>
        await RunAsync(["--mode", "system", "--op", "show"], cancellationToken, lld: false).ConfigureAwait(false);
}
