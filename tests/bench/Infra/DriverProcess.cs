using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace CsiScst.Bench.Infra;

/// <summary>
/// One run of the csi-scst binary (or any tool) with its output kept in memory for failure reports.
/// Disposal stops it: SIGTERM, then SIGKILL after a grace period. Only processes this bench started are
/// ever signalled, by pid.
/// </summary>
internal sealed partial class DriverProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    public DriverProcess(string fileName, IEnumerable<string> arguments, IReadOnlyDictionary<string, string>? environment = null)
    {
        var start = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
        foreach (var name in start.Environment.Keys.Where(k => k.StartsWith("DOTNET_", StringComparison.Ordinal) || k == "CSI_SCST_FAULT_POINT").ToList())
        {
            start.Environment.Remove(name);
        }
        if (environment is not null)
        {
            foreach (var (name, value) in environment)
            {
                start.Environment[name] = value;
            }
        }
        Started = Stopwatch.GetTimestamp();
        _process = Process.Start(start)!;
        _process.OutputDataReceived += (_, e) => Append(e.Data);
        _process.ErrorDataReceived += (_, e) => Append(e.Data);
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    /// <summary>Stopwatch timestamp taken just before the process was started.</summary>
    public long Started { get; }

    public int Id => _process.Id;

    public bool Exited => _process.HasExited;

    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    public string Tail(int lines = 20) => string.Join('\n', Output.Split('\n').TakeLast(lines));

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }
        lock (_output)
        {
            // Bounded: a chatty run must not grow the bench's own memory without limit.
            if (_output.Length > 4 * 1024 * 1024)
            {
                _output.Remove(0, 1024 * 1024);
            }
            _output.AppendLine(line);
        }
    }

    /// <summary>Resident set size in KiB (VmRSS) and its parts (RssAnon, RssFile, RssShmem).</summary>
    public MemoryReading Memory() => MemoryReading.Read(_process.Id);

    /// <summary>Resident KiB grouped by mapping: the binary, each library, the heap and anonymous memory.</summary>
    public List<(string Mapping, long Kib)> ResidentByMapping() => MemoryReading.ByMapping(_process.Id);

    public async Task<int> TerminateAsync(TimeSpan grace)
    {
        if (_process.HasExited)
        {
            return _process.ExitCode;
        }
        _ = Kill(_process.Id, 15);
        using var cts = new CancellationTokenSource(grace);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        return _process.ExitCode;
    }

    public async ValueTask DisposeAsync()
    {
        await TerminateAsync(TimeSpan.FromSeconds(30));
        _process.Dispose();
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);
}

/// <summary>What /proc/PID/status says about a process's memory, in KiB.</summary>
internal sealed record MemoryReading(long RssKib, long AnonKib, long FileKib, long ShmemKib, long PeakKib, int Threads)
{
    public double RssMib => RssKib / 1024.0;

    public static MemoryReading Read(int pid)
    {
        long Field(string[] lines, string name)
        {
            var line = lines.FirstOrDefault(l => l.StartsWith(name + ":", StringComparison.Ordinal));
            return line is null ? 0 : long.Parse(line[(name.Length + 1)..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
        }
        var status = File.ReadAllLines($"/proc/{pid}/status");
        return new MemoryReading(Field(status, "VmRSS"), Field(status, "RssAnon"), Field(status, "RssFile"), Field(status, "RssShmem"),
            Field(status, "VmHWM"), (int)Field(status, "Threads"));
    }

    /// <summary>
    /// /proc/PID/smaps grouped: shared libraries by base name; the executable split into code, read-only data and
    /// data; the anonymous mapping right after the executable's data as its .bss/.hydrated (Native AOT writes its
    /// type data there at start: a fixed cost that grows with the amount of compiled code); other anonymous
    /// mappings (GC heap, thread stacks, native allocations) as [anon].
    /// </summary>
    public static List<(string Mapping, long Kib)> ByMapping(int pid)
    {
        var exe = Path.GetFileName(File.ReadAllText($"/proc/{pid}/comm").Trim());
        var totals = new Dictionary<string, long>(StringComparer.Ordinal);
        string current = "[anon]";
        var previousWasExe = false;
        foreach (var line in File.ReadLines($"/proc/{pid}/smaps"))
        {
            if (IsHeader(line))
            {
                var parts = line.Split(' ', 6, StringSplitOptions.RemoveEmptyEntries);
                var path = parts.Length >= 6 ? parts[5].Trim() : "";
                var name = path.Length == 0 ? "" : Label(path);
                var isExe = name.Length > 0 && !name.StartsWith('[') && name.StartsWith(exe, StringComparison.Ordinal);
                current = isExe ? parts[1][..3] switch
                {
                    "r-x" => name + " code (.text)",
                    "r--" => name + " read-only data (.rodata, headers)",
                    _ => name + " data (.data)",
                }
                : path.Length == 0 && previousWasExe ? name + exe + " .bss + .hydrated (AOT type data, written at start)"
                : path.Length == 0 ? "[anon] (GC heap, stacks, native allocations)"
                : name;
                previousWasExe = isExe;
            }
            else if (line.StartsWith("Rss:", StringComparison.Ordinal))
            {
                var kib = long.Parse(line[4..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
                totals[current] = totals.GetValueOrDefault(current) + kib;
            }
        }
        return totals.Where(t => t.Value > 0).OrderByDescending(t => t.Value).Select(t => (t.Key, t.Value)).ToList();
    }

    private static bool IsHeader(string line)
    {
        // "55d0c0a00000-55d0c0a21000 r--p 00000000 08:01 1234   /path"
        var space = line.IndexOf(' ');
        return space > 0 && line[..space].Contains('-', StringComparison.Ordinal) && line[..space].All(c => char.IsAsciiHexDigit(c) || c == '-');
    }

    private static string Label(string path) => path.StartsWith('[') ? path : Path.GetFileName(path);
}
