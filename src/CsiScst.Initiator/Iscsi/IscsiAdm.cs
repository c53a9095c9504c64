using System.Globalization;
using CsiScst.Core.Errors;
using CsiScst.Core.Exec;
using Microsoft.Extensions.Logging;

namespace CsiScst.Initiator.Iscsi;

/// <summary>
/// The iscsiadm calls the node plugin makes. Every call names the iface explicitly, so two plugin
/// instances bound to different ifaces on one machine never touch each other's records or sessions.
/// </summary>
public sealed class IscsiAdm
{
    private readonly IToolRunner _tools;
    private readonly HostTools _host;
    private readonly IscsiOptions _options;
    private readonly ILogger<IscsiAdm> _logger;

    public IscsiAdm(IToolRunner tools, HostTools host, IscsiOptions options, ILogger<IscsiAdm> logger)
    {
        _tools = tools;
        _host = host;
        _options = options;
        _logger = logger;
    }

    public string Iface => _options.IfaceOrDefault;

    /// <summary>
    /// Writes the node record for one portal: <c>-o new</c> (which resets an existing record to
    /// iscsid.conf's defaults), then one <c>-o update</c> per setting so every open-iscsi version
    /// applies all of them. CHAP secrets are passed as redacted arguments.
    /// </summary>
    public async Task WriteNodeRecordAsync(string target, Portal portal, NodeRecordSettings settings, ChapCredentials? chap, CancellationToken cancellationToken)
    {
        await RunNodeAsync(target, portal, ["-o", "new"], [], cancellationToken).ConfigureAwait(false);
        var updates = new List<(string Name, string Value, bool Secret)>
        {
            ("node.startup", "manual", false),
            ("node.session.timeo.replacement_timeout", Number(settings.ReplacementTimeout), false),
            ("node.conn[0].timeo.login_timeout", Number(settings.LoginTimeout), false),
            ("node.session.initial_login_retry_max", Number(settings.LoginRetries), false),
            ("node.conn[0].timeo.noop_out_interval", Number(settings.NoopOutInterval), false),
            ("node.conn[0].timeo.noop_out_timeout", Number(settings.NoopOutTimeout), false),
        };
        if (chap is null)
        {
            updates.Add(("node.session.auth.authmethod", "None", false));
        }
        else
        {
            updates.Add(("node.session.auth.authmethod", "CHAP", false));
            updates.Add(("node.session.auth.username", chap.Username, false));
            updates.Add(("node.session.auth.password", chap.Password, true));
            if (chap.IsMutual)
            {
                updates.Add(("node.session.auth.username_in", chap.UsernameIn!, false));
                updates.Add(("node.session.auth.password_in", chap.PasswordIn ?? "", true));
            }
        }
        foreach (var (name, value, secret) in updates)
        {
            await RunNodeAsync(target, portal, ["-o", "update", "-n", name, "-v", value], secret ? [value] : [], cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Logs in; an existing session (exit 15) is success.</summary>
    public async Task LoginAsync(string target, Portal portal, CancellationToken cancellationToken)
    {
        var command = NodeCommand(target, portal, ["--login"], []) with
        {
            SuccessExitCodes = [0, IscsiExitCodes.SessionExists],
        };
        try
        {
            var result = await _tools.RunAsync(command, cancellationToken).ConfigureAwait(false);
            _logger.LogInformation("Logged in to {Target} at {Portal} through iface {Iface} (exit {ExitCode})", target, portal, Iface, result.ExitCode);
        }
        catch (ToolException e) when (e.Failure == ToolFailure.ExitCode)
        {
            var (code, hint) = IscsiExitCodes.ForLogin(e.ExitCode);
            throw new StatusException(code, $"iSCSI login to {target} at {portal} failed: {hint} ({e.Message})", e);
        }
        catch (ToolException e)
        {
            throw new StatusException(e.SuggestedStatus, $"iSCSI login to {target} at {portal} failed: {e.Message}", e);
        }
    }

    /// <summary>Logs out one session by id; a session that is already gone is success.</summary>
    public async Task LogoutSessionAsync(int sid, CancellationToken cancellationToken)
    {
        var command = _host.Iscsiadm(["-m", "session", "-r", Number(sid), "--logout"]) with
        {
            Timeout = _options.CommandTimeout,
            SuccessExitCodes = [0, IscsiExitCodes.NoObjectsFound, IscsiExitCodes.SessionNotFound],
        };
        try
        {
            await _tools.RunAsync(command, cancellationToken).ConfigureAwait(false);
        }
        catch (ToolException e) when (e.Failure == ToolFailure.ExitCode)
        {
            // The session may have ended between our listing and this call (iscsiadm then fails to
            // read it from sysfs, with a code that depends on the version): gone is what we wanted.
            var sessions = await ListSessionsAsync(cancellationToken).ConfigureAwait(false);
            if (sessions.Any(s => s.Sid == sid))
            {
                throw new StatusException(Grpc.Core.StatusCode.Internal, $"logout of iSCSI session {sid} failed: {e.Message}", e);
            }
        }
        _logger.LogInformation("Logged out of iSCSI session {Sid}", sid);
    }

    /// <summary>Deletes every record of the target on our iface; none left is success.</summary>
    public async Task DeleteNodeRecordsAsync(string target, CancellationToken cancellationToken)
    {
        var command = _host.Iscsiadm(["-m", "node", "-T", target, "-I", Iface, "-o", "delete"]) with
        {
            Timeout = _options.CommandTimeout,
            SuccessExitCodes = [0, IscsiExitCodes.NoObjectsFound],
        };
        await RunMappedAsync(command, $"deleting the node records of {target}", cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Rescans one session's LUNs (new LUNs, and the size of existing ones).</summary>
    public async Task RescanSessionAsync(int sid, CancellationToken cancellationToken)
    {
        var command = _host.Iscsiadm(["-m", "session", "-r", Number(sid), "--rescan"]) with { Timeout = _options.CommandTimeout };
        await RunMappedAsync(command, $"rescan of iSCSI session {sid}", cancellationToken).ConfigureAwait(false);
    }

    /// <summary>All sessions of this machine (every iface), with their SCSI devices; none is an empty list.</summary>
    public async Task<IReadOnlyList<IscsiSession>> ListSessionsAsync(CancellationToken cancellationToken)
    {
        var command = _host.Iscsiadm(["-m", "session", "-P", "3"]) with
        {
            Timeout = _options.CommandTimeout,
            SuccessExitCodes = [0, IscsiExitCodes.NoObjectsFound],
        };
        var result = await RunMappedAsync(command, "listing iSCSI sessions", cancellationToken).ConfigureAwait(false);
        return result.ExitCode == IscsiExitCodes.NoObjectsFound ? [] : SessionParser.ParseTree(result.StandardOutput);
    }

    /// <summary>Sessions of one target through our iface.</summary>
    public async Task<IReadOnlyList<IscsiSession>> SessionsOfAsync(string target, CancellationToken cancellationToken) =>
        (await ListSessionsAsync(cancellationToken).ConfigureAwait(false))
            .Where(s => s.Target == target && s.Iface == Iface)
            .ToArray();

    /// <summary>The initiator name of an iface record; null when the record uses iscsid's default name.</summary>
    public async Task<string?> GetIfaceInitiatorNameAsync(string iface, CancellationToken cancellationToken)
    {
        var command = _host.Iscsiadm(["-m", "iface", "-I", iface]) with { Timeout = _options.CommandTimeout };
        var result = await RunMappedAsync(command, $"reading iface {iface}", cancellationToken).ConfigureAwait(false);
        return IfaceParser.InitiatorName(result.StandardOutput);
    }

    /// <summary>Creates the iface record when missing and sets its initiator name.</summary>
    public async Task EnsureIfaceAsync(string iface, string initiatorName, CancellationToken cancellationToken)
    {
        // Any failure to read the record means "create it"; the create then reports real problems.
        var exists = await _tools.RunAsync(_host.Iscsiadm(["-m", "iface", "-I", iface]) with
        {
            Timeout = _options.CommandTimeout,
            SuccessExitCodes = Enumerable.Range(0, 256).ToArray(),
        }, cancellationToken).ConfigureAwait(false);
        if (exists.ExitCode != 0)
        {
            await RunMappedAsync(_host.Iscsiadm(["-m", "iface", "-I", iface, "-o", "new"]) with { Timeout = _options.CommandTimeout },
                $"creating iface {iface}", cancellationToken).ConfigureAwait(false);
        }
        else if (IfaceParser.InitiatorName(exists.StandardOutput) == initiatorName)
        {
            return;
        }
        await RunMappedAsync(_host.Iscsiadm(["-m", "iface", "-I", iface, "-o", "update", "-n", "iface.initiatorname", "-v", initiatorName]) with
        {
            Timeout = _options.CommandTimeout,
        }, $"setting the initiator name of iface {iface}", cancellationToken).ConfigureAwait(false);
        _logger.LogInformation("iface {Iface} uses initiator name {InitiatorIqn}", iface, initiatorName);
    }

    private Task<ToolResult> RunNodeAsync(string target, Portal portal, string[] operation, string[] secrets, CancellationToken cancellationToken) =>
        RunMappedAsync(NodeCommand(target, portal, operation, secrets), $"writing the node record of {target} at {portal}", cancellationToken);

    private ToolCommand NodeCommand(string target, Portal portal, string[] operation, string[] secrets) =>
        _host.Iscsiadm(["-m", "node", "-T", target, "-p", portal.ToIscsiadm(), "-I", Iface, .. operation]) with
        {
            Timeout = _options.CommandTimeout,
            Secrets = secrets,
        };

    private async Task<ToolResult> RunMappedAsync(ToolCommand command, string what, CancellationToken cancellationToken)
    {
        try
        {
            return await _tools.RunAsync(command, cancellationToken).ConfigureAwait(false);
        }
        catch (ToolException e)
        {
            var code = e.ExitCode switch
            {
                IscsiExitCodes.NoIscsid or 18 or IscsiExitCodes.TransportModuleMissing => Grpc.Core.StatusCode.FailedPrecondition,
                _ => e.SuggestedStatus,
            };
            throw new StatusException(code, $"{what} failed: {e.Message}", e);
        }
    }

    private static string Number(int value) => value.ToString(CultureInfo.InvariantCulture);
}

/// <summary>Parses <c>iscsiadm -m iface -I NAME</c> (lines <c>iface.initiatorname = …</c>).</summary>
public static class IfaceParser
{
    public static string? InitiatorName(string output)
    {
        foreach (var raw in output.Split('\n'))
        {
            var line = raw.Trim();
            const string Key = "iface.initiatorname";
            if (!line.StartsWith(Key, StringComparison.Ordinal))
            {
                continue;
            }
            var eq = line.IndexOf('=', StringComparison.Ordinal);
            if (eq < 0)
            {
                continue;
            }
            var value = line[(eq + 1)..].Trim();
            return value.Length == 0 || value == "<empty>" ? null : value;
        }
        return null;
    }
}
