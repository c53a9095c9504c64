using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using CsiScst.Core;
using CsiScst.Core.Ids;
using CsiScst.Core.Metrics;
using CsiScst.ScstModel;
using CsiScst.Targets;
using CsiScst.Targets.Scst;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Xunit.Abstractions;

namespace CsiScst.IntegrationTests.Scst;

/// <summary>Runs only against the SCST model: it drives the model's controls (logins, reboot, daemon, timing).</summary>
public sealed class ModelFactAttribute : FactAttribute
{
    public ModelFactAttribute()
    {
        if (ScstTestTarget.RealSysfs is not null)
        {
            Skip = $"drives the SCST model's controls; {ScstTestTarget.RealSysfsVariable} points at a real SCST";
        }
    }
}

/// <summary>Runs only against a real SCST (CSI_SCST_REAL_SYSFS=/sys/kernel/scst_tgt).</summary>
public sealed class ScstFactAttribute : FactAttribute
{
    public ScstFactAttribute()
    {
        if (ScstTestTarget.RealSysfs is null)
        {
            Skip = $"needs a real SCST: set {ScstTestTarget.RealSysfsVariable}=/sys/kernel/scst_tgt";
        }
    }
}

/// <summary>
/// The SCST the engine tests run against: a fresh model mounted through FUSE in a directory of its own
/// (default), or the real /sys/kernel/scst_tgt when CSI_SCST_REAL_SYSFS is set. Each instance uses its own
/// random instance id, so tests sharing a real SCST never see each other's objects; disposing removes
/// everything it created.
/// </summary>
public sealed class ScstTestTarget : IAsyncDisposable
{
    public const string RealSysfsVariable = "CSI_SCST_REAL_SYSFS";
    public const string Initiator1 = "iqn.1993-08.org.debian:01:node1";
    public const string Initiator2 = "iqn.1993-08.org.debian:01:node2";

    private readonly List<ServiceProvider> _providers = [];
    private readonly List<string> _loopDevices = [];
    private readonly ITestOutputHelper? _output;

    private ScstTestTarget(ScstModelMount? model, string sysfsRoot, string workDir, ITestOutputHelper? output)
    {
        Model = model;
        SysfsRoot = sysfsRoot;
        WorkDir = workDir;
        _output = output;
        InstanceId = "t" + Guid.NewGuid().ToString("N")[..7];
        Names = new ObjectNames(InstanceId);
    }

    public static string? RealSysfs => Environment.GetEnvironmentVariable(RealSysfsVariable) is { Length: > 0 } value ? value : null;

    public ScstModelMount? Model { get; }
    public string SysfsRoot { get; }
    public string WorkDir { get; }
    public string InstanceId { get; }
    public ObjectNames Names { get; }
    public string ConfigPath => Path.Combine(WorkDir, "scst.conf");

    public static async Task<ScstTestTarget> StartAsync(ITestOutputHelper? output = null, ScstModelOptions? options = null)
    {
        var work = Path.Combine(Path.GetTempPath(), "csi-scst-engine-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(work);
        if (RealSysfs is { } real)
        {
            return new ScstTestTarget(null, real, work, output);
        }
        var model = await ScstModelMount.StartAsync(Path.Combine(work, "mnt"), options ?? new ScstModelOptions());
        return new ScstTestTarget(model, model.SysfsRoot, work, output);
    }

    /// <summary>A new engine (its own process-wide state) over this SCST, for this target's instance id unless told.</summary>
    public ScstEngine CreateEngine(string? instanceId = null, Action<ScstOptions>? configure = null) =>
        CreateServices(instanceId, configure).GetRequiredService<ScstEngine>();

    /// <summary>An engine and its sysfs layer (whose write counter shows what a call wrote).</summary>
    public (ScstEngine Engine, ScstSysfs Sysfs) CreateEngineAndSysfs(string? instanceId = null, Action<ScstOptions>? configure = null)
    {
        var services = CreateServices(instanceId, configure);
        return (services.GetRequiredService<ScstEngine>(), services.GetRequiredService<ScstSysfs>());
    }

    public ServiceProvider CreateServices(string? instanceId = null, Action<ScstOptions>? configure = null)
    {
        var services = new ServiceCollection();
        services.AddLogging(b => b.SetMinimumLevel(LogLevel.Debug).AddProvider(new TestLoggerProvider(_output)));
        services.AddSingleton(new DriverOptions { InstanceId = instanceId ?? InstanceId, NodeName = "storage-1" });
        services.AddSingleton(new ExternalTime());
        services.AddScstEngine(o =>
        {
            o.SysfsRoot = SysfsRoot;
            o.ConfigFile = ConfigPath;
            o.PollInterval = TimeSpan.FromMilliseconds(10);
            o.FaultPoint = null;
            configure?.Invoke(o);
        });
        var provider = services.BuildServiceProvider();
        _providers.Add(provider);
        return provider;
    }

    /// <summary>The export of volume <paramref name="name"/> on a fresh backing device, for this instance.</summary>
    public ExportSpec Spec(string name, params InitiatorAccess[] initiators) => Spec(name, Names, initiators);

    public ExportSpec Spec(string name, ObjectNames names, params InitiatorAccess[] initiators)
    {
        var key = names.VolumeKey(name);
        return new ExportSpec
        {
            Key = key,
            TargetIqn = names.TargetIqn(key),
            DeviceName = names.DeviceName(key),
            BackingPath = NewBackingDevice(key),
            IsFile = false,
            Serial = ObjectNames.Serial(key),
            BlockSize = 512,
            Initiators = initiators,
        };
    }

    /// <summary>A block device for vdisk_blockio: a loop device on real SCST; a sparse file for the model (which accepts one).</summary>
    public string NewBackingDevice(string name, long size = 64L << 20)
    {
        var file = NewBackingFile(name, size);
        if (RealSysfs is null)
        {
            return file;
        }
        var device = Run("losetup", "--find", "--show", file).Trim();
        _loopDevices.Add(device);
        return device;
    }

    public string NewBackingFile(string name, long size = 64L << 20)
    {
        var path = Path.Combine(WorkDir, $"{name}.img");
        using (var stream = File.Create(path))
        {
            stream.SetLength(size);
        }
        return path;
    }

    // ---- reading sysfs the plain way (independent of the engine's code) ----

    public string PathOf(string relative) => Path.Combine(SysfsRoot, relative);

    public bool Exists(string relative) => Path.Exists(PathOf(relative));

    /// <summary>The first line of an attribute (a [key] line, if any, is the second).</summary>
    public string Attr(string relative) => File.ReadAllText(PathOf(relative)).Split('\n')[0];

    public bool IsKey(string relative) => File.ReadAllText(PathOf(relative)).Split('\n').Skip(1).Any(l => l.Trim() == "[key]");

    public IReadOnlyList<string> Dirs(string relative) =>
        Directory.Exists(PathOf(relative))
            ? new DirectoryInfo(PathOf(relative)).EnumerateDirectories().Where(d => d.LinkTarget is null).Select(d => d.Name).Order(StringComparer.Ordinal).ToList()
            : [];

    public IReadOnlyList<string> Files(string relative) =>
        Directory.Exists(PathOf(relative))
            ? new DirectoryInfo(PathOf(relative)).EnumerateFiles().Select(f => f.Name).Where(n => n != "mgmt").Order(StringComparer.Ordinal).ToList()
            : [];

    public string? LinkName(string relative) =>
        new FileInfo(PathOf(relative)).LinkTarget is { } target ? Path.GetFileName(target.TrimEnd('/')) : null;

    /// <summary>One write(2) to an SCST file outside the engine (test setup); returns 0 or the errno.</summary>
    public int Write(string relative, string text) => Sys.Write(PathOf(relative), text);

    // ---- model controls ----

    public int Control(string control, string text) =>
        Sys.Write(Path.Combine(Model?.ControlDir ?? throw new InvalidOperationException("not running against the model"), control), text);

    public string ReadControl(string control) =>
        File.ReadAllText(Path.Combine(Model?.ControlDir ?? throw new InvalidOperationException("not running against the model"), control));

    /// <summary>Logs an initiator in through the model (as iscsi-scstd would accept or refuse it): 0 or EACCES.</summary>
    public int Login(string target, string initiator, string ip = "192.0.2.10", string? portal = null, string? user = null, string? secret = null)
    {
        var text = new StringBuilder($"{target} {initiator} {ip}");
        if (portal is not null)
        {
            text.Append(" portal ").Append(portal);
        }
        if (user is not null)
        {
            text.Append(" user ").Append(user).Append(" secret ").Append(secret);
        }
        return Control("login", text.ToString());
    }

    public async ValueTask DisposeAsync()
    {
        if (RealSysfs is not null)
        {
            // Leave the real SCST as we found it: everything of this instance goes.
            var engine = CreateEngine();
            await engine.ReconcileAsync([], CancellationToken.None);
        }
        foreach (var provider in _providers)
        {
            await provider.DisposeAsync();
        }
        foreach (var loop in _loopDevices)
        {
            Run("losetup", "--detach", loop);
        }
        if (Model is not null)
        {
            await Model.DisposeAsync();
        }
        try
        {
            Directory.Delete(WorkDir, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private static string Run(string program, params string[] arguments)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEnd();
        var error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{program} {string.Join(' ', arguments)} failed ({process.ExitCode}): {error}");
        }
        return output;
    }
}

/// <summary>write(2) and read(2) with the raw errno, for test setup and model controls.</summary>
internal static unsafe partial class Sys
{
    [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    private static partial nint WriteNative(int fd, byte* buffer, nuint count);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);

    public static int Write(string path, string text)
    {
        var fd = Open(path, 1 | 0x80000);
        if (fd < 0)
        {
            return Marshal.GetLastPInvokeError();
        }
        try
        {
            var bytes = Encoding.UTF8.GetBytes(text.EndsWith('\n') ? text : text + "\n");
            fixed (byte* pointer = bytes)
            {
                return WriteNative(fd, pointer, (nuint)bytes.Length) < 0 ? Marshal.GetLastPInvokeError() : 0;
            }
        }
        finally
        {
            Close(fd);
        }
    }
}

internal sealed class TestLoggerProvider(ITestOutputHelper? output) : ILoggerProvider
{
    public ILogger CreateLogger(string categoryName) => new TestLogger(output, categoryName[(categoryName.LastIndexOf('.') + 1)..]);

    public void Dispose()
    {
    }

    private sealed class TestLogger(ITestOutputHelper? output, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => output is not null;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            try
            {
                output?.WriteLine($"{logLevel,-11} {category}: {formatter(state, exception)}{(exception is null ? "" : " " + exception.Message)}");
            }
            catch (InvalidOperationException)
            {
                // The test already finished.
            }
        }
    }
}
