using System.Diagnostics;
using System.Text.Json;
using CsiScst.Targets;
using CsiScst.Targets.Scst;
using Xunit.Abstractions;

namespace CsiScst.IntegrationTests.Scst;

/// <summary>
/// Crash safety: the engine runs in a child process that SIGKILLs itself at the N-th fault point
/// (CSI_SCST_FAULT_POINT, before or after a sysfs write), for every N an operation reaches; each time a
/// retry (or a reconcile) must converge to exactly the wanted state, with nothing orphaned.
/// </summary>
public sealed class ScstCrashTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const int KilledBySigkill = 128 + 9;
    private ScstTestTarget _scst = null!;

    public async Task InitializeAsync() => _scst = await ScstTestTarget.StartAsync(output);

    public async Task DisposeAsync() => await _scst.DisposeAsync();

    [Theory]
    [InlineData("scst-write")]
    [InlineData("scst-written")]
    public async Task Ensure_killed_at_every_write_converges_on_retry(string point)
    {
        var engine = _scst.CreateEngine();
        var done = new List<ExportSpec>();
        for (var n = 1; ; n++)
        {
            var spec = _scst.Spec($"pvc-crash-{point}-{n}", new InitiatorAccess(ScstTestTarget.Initiator1, false), new InitiatorAccess(ScstTestTarget.Initiator2, true)) with
            {
                Chap = new ChapSpec("crash-user", "crash-secret-0123", "crash-target", "crash-mutual-3210"),
                Portals = ["198.51.100.7:3260"],
            };
            var (exit, log) = await RunChildAsync(new CrashRequest(_scst.SysfsRoot, _scst.ConfigPath, _scst.InstanceId, "ensure", spec, null), $"{point}:{n}");
            done.Add(spec);
            if (exit == 0)
            {
                Assert.True(n > 8, $"an export takes more than {n - 1} writes; the child finished early: {log}");
                break;
            }
            Assert.True(exit == KilledBySigkill, $"child exited {exit}: {log}");

            await engine.EnsureExportAsync(spec, CancellationToken.None);
            AssertExactly(done, await engine.ListExportsAsync(CancellationToken.None));
            // Converged means converged: one more pass writes nothing.
            var (again, sysfs) = _scst.CreateEngineAndSysfs();
            await again.EnsureExportAsync(spec, CancellationToken.None);
            Assert.Equal(0, sysfs.WriteCount);
        }
        AssertExactly(done, await engine.ListExportsAsync(CancellationToken.None));
    }

    [Theory]
    [InlineData("scst-write")]
    [InlineData("scst-written")]
    public async Task Remove_killed_at_every_write_leaves_nothing_after_reconcile(string point)
    {
        var engine = _scst.CreateEngine();
        for (var n = 1; ; n++)
        {
            var spec = _scst.Spec($"pvc-gone-{point}-{n}", new InitiatorAccess(ScstTestTarget.Initiator1, false), new InitiatorAccess(ScstTestTarget.Initiator2, false)) with
            {
                Chap = new ChapSpec("gone-user", "gone-secret-0123"),
            };
            await engine.EnsureExportAsync(spec, CancellationToken.None);
            var (exit, log) = await RunChildAsync(new CrashRequest(_scst.SysfsRoot, _scst.ConfigPath, _scst.InstanceId, "remove", null, spec.Key), $"{point}:{n}");
            if (exit == 0)
            {
                Assert.True(n > 4, $"a removal takes more than {n - 1} writes; the child finished early: {log}");
                Assert.Empty(await engine.ListExportsAsync(CancellationToken.None));
                break;
            }
            Assert.True(exit == KilledBySigkill, $"child exited {exit}: {log}");

            // What the crash left is ours and unwanted: reconcile with nothing desired removes all of it.
            var result = await engine.ReconcileAsync([], CancellationToken.None);
            Assert.Empty(result.Errors);
            Assert.Empty(await engine.ListExportsAsync(CancellationToken.None));
            Assert.False(_scst.Exists($"targets/iscsi/{spec.TargetIqn}"));
            Assert.False(_scst.Exists($"devices/{spec.DeviceName}"));
        }
    }

    private static void AssertExactly(IReadOnlyList<ExportSpec> wanted, IReadOnlyList<ActualExport> actual)
    {
        Assert.Equal(wanted.Select(s => s.Key).Order(StringComparer.Ordinal), actual.Select(a => a.Key));
        foreach (var export in actual)
        {
            var spec = wanted.Single(s => s.Key == export.Key);
            Assert.True(export.Enabled);
            Assert.True(export.ChapEnabled);
            Assert.Equal(spec.Serial, export.Serial);
            Assert.Equal(spec.BackingPath, export.BackingPath);
            Assert.Equal(spec.Initiators.OrderBy(i => i.InitiatorIqn, StringComparer.Ordinal), export.Initiators);
        }
    }

    private async Task<(int ExitCode, string Log)> RunChildAsync(CrashRequest request, string faultPoint)
    {
        var assembly = Path.Combine(AppContext.BaseDirectory, "CsiScst.IntegrationTests.dll");
        var dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet";
        var start = new ProcessStartInfo(dotnet) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add("exec");
        start.ArgumentList.Add(assembly);
        start.Environment["DOTNET_STARTUP_HOOKS"] = assembly;
        start.Environment[ScstCrashChild.ChildVariable] = JsonSerializer.Serialize(request, CrashJson.Default.CrashRequest);
        start.Environment[ScstOptions.FaultPointVariable] = faultPoint;
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await process.WaitForExitAsync(timeout.Token);
        var log = $"[{faultPoint}] exit {process.ExitCode}: {await stdout}{await stderr}".Trim();
        output.WriteLine(log);
        return (process.ExitCode, log);
    }
}
