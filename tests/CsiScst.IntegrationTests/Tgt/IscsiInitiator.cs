namespace CsiScst.IntegrationTests.Tgt;

/// <summary>A real iSCSI initiator in user space: libiscsi's tools and qemu's iscsi block driver (no kernel needed).</summary>
internal sealed record IscsiInitiator(string Name, string? User = null, string? Secret = null, string? MutualUser = null, string? MutualSecret = null)
{
    private Dictionary<string, string> Env()
    {
        var env = new Dictionary<string, string>();
        // CHAP through the environment keeps secrets off command lines.
        if (User is not null)
        {
            env["LIBISCSI_CHAP_USERNAME"] = User;
            env["LIBISCSI_CHAP_PASSWORD"] = Secret!;
        }
        if (MutualUser is not null)
        {
            env["LIBISCSI_CHAP_TARGET_USERNAME"] = MutualUser;
            env["LIBISCSI_CHAP_TARGET_PASSWORD"] = MutualSecret!;
        }
        return env;
    }

    public static string Url(string portal, string iqn, int lun) => $"iscsi://{portal}/{iqn}/{lun}";

    /// <summary>VPD page 0x80 (unit serial number), trimmed; null with the error text when login or the command fails.</summary>
    public async Task<(string? Serial, string Error)> SerialAsync(string portal, string iqn, int lun)
    {
        var result = await Run.ToolAsync("iscsi-inq", ["-i", Name, "-e", "1", "-c", "128", Url(portal, iqn, lun)], Env());
        if (result.ExitCode != 0)
        {
            return (null, result.All);
        }
        var line = result.Stdout.Split('\n').FirstOrDefault(l => l.StartsWith("Unit Serial Number:", StringComparison.Ordinal));
        return (line is null ? null : line["Unit Serial Number:".Length..].Trim().Trim('[', ']').Trim(), result.All);
    }

    /// <summary>READ CAPACITY(16): (bytes, block size), or null when login or the command fails.</summary>
    public async Task<(long Bytes, int BlockSize)?> CapacityAsync(string portal, string iqn, int lun)
    {
        var result = await Run.ToolAsync("iscsi-readcapacity16", ["-i", Name, Url(portal, iqn, lun)], Env());
        if (result.ExitCode != 0)
        {
            return null;
        }
        long total = 0;
        var block = 0;
        foreach (var line in result.Stdout.Split('\n'))
        {
            if (line.StartsWith("Total size:", StringComparison.Ordinal))
            {
                total = long.Parse(line["Total size:".Length..].Trim().Split(' ', 'L')[0]);
            }
            else if (line.StartsWith("LOGICAL BLOCK LENGTH IN BYTES:", StringComparison.Ordinal))
            {
                block = int.Parse(line["LOGICAL BLOCK LENGTH IN BYTES:".Length..].Trim());
            }
        }
        return (total, block);
    }

    /// <summary>Logs in and reports whether it worked (and the error text).</summary>
    public async Task<(bool Ok, string Output)> LoginAsync(string portal, string iqn, int lun)
    {
        var result = await Run.ToolAsync("iscsi-inq", ["-i", Name, Url(portal, iqn, lun)], Env());
        return (result.ExitCode == 0, result.All);
    }

    /// <summary>qemu-io commands against the LUN through qemu's libiscsi driver; the secret goes through a file object.</summary>
    public async Task<RunResult> QemuIoAsync(string portal, string iqn, int lun, string scratch, params string[] commands)
    {
        var args = QemuArgs(portal, iqn, lun, scratch);
        foreach (var command in commands)
        {
            args.Add("-c");
            args.Add(command);
        }
        return await Run.ToolAsync("qemu-io", args, timeout: TimeSpan.FromMinutes(2));
    }

    /// <summary>A qemu-io that stays logged in, reading commands from stdin.</summary>
    public LongRunning Session(string portal, string iqn, int lun, string scratch) => new("qemu-io", QemuArgs(portal, iqn, lun, scratch));

    private List<string> QemuArgs(string portal, string iqn, int lun, string scratch)
    {
        var args = new List<string>();
        var options = $"driver=iscsi,transport=tcp,portal={portal},target={iqn},lun={lun},initiator-name={Name}";
        if (User is not null)
        {
            var secretFile = Path.Combine(scratch, "qemu-secret-" + Run.RandomSuffix());
            File.WriteAllText(secretFile, Secret);
            args.AddRange(["--object", $"secret,id=chap0,file={secretFile}"]);
            options += $",user={User},password-secret=chap0";
        }
        args.AddRange(["--image-opts", options]);
        return args;
    }
}
