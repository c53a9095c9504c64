extern alias k8sfull;

using System.Text;
using System.Text.RegularExpressions;
using CsiScst.IntegrationTests.Infrastructure;
using k8sfull::k8s.Models;

namespace CsiScst.IntegrationTests.Packaging;

/// <summary>
/// Runs the csi-scst container of a rendered pod as a real local process, exactly with the chart's
/// arguments, except for what only a cluster provides: $(VAR) from the downward API gets test values,
/// every volume mount path becomes a temporary directory (Secrets and ConfigMaps are written into it, as
/// kubelet would), and ports on the pod's addresses become free ports on 127.0.0.1.
/// </summary>
public sealed partial class PodSandbox : IDisposable
{
    public const string NodeName = "packaging-node";

    private readonly TempDirectory _root = new("csi-scst-pod");
    private readonly List<(string MountPath, string Local)> _mounts = [];

    public PodSandbox(RenderedChart chart, V1PodSpec pod, string container = "csi-scst")
    {
        Container = pod.Containers.Single(c => c.Name == container);
        var volumes = pod.Volumes.ToDictionary(v => v.Name);
        foreach (var mount in Container.VolumeMounts ?? [])
        {
            var local = _root.Combine("mounts", mount.Name);
            Directory.CreateDirectory(local);
            _mounts.Add((mount.MountPath, local));
        }
        // Longest mount paths first, so /sys/kernel/config wins over /sys.
        _mounts.Sort((a, b) => b.MountPath.Length.CompareTo(a.MountPath.Length));
        foreach (var mount in Container.VolumeMounts ?? [])
        {
            var local = _root.Combine("mounts", mount.Name);
            var volume = volumes[mount.Name];
            if (volume.Secret is { } secret)
            {
                foreach (var (key, value) in chart.Single("Secret", secret.SecretName).Json["data"]!.AsObject())
                {
                    File.WriteAllBytes(Path.Combine(local, key), Convert.FromBase64String((string)value!));
                }
            }
            else if (volume.ConfigMap is { } configMap)
            {
                foreach (var (key, value) in chart.Single("ConfigMap", configMap.Name).Json["data"]!.AsObject())
                {
                    File.WriteAllText(Path.Combine(local, key), Remap((string)value!));
                }
            }
        }
        Environment = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var variable in Container.Env ?? [])
        {
            Environment[variable.Name] = variable.Value ?? variable.ValueFrom?.FieldRef?.FieldPath switch
            {
                "metadata.namespace" => HelmTools.Namespace,
                "metadata.name" => "packaging-pod",
                "spec.nodeName" => NodeName,
                "status.podIP" => "127.0.0.1",
                var other => throw new InvalidOperationException($"no test value for fieldRef {other}"),
            };
        }
        Arguments = [.. (Container.Args ?? []).Select(Localize)];
    }

    public V1Container Container { get; }
    public Dictionary<string, string> Environment { get; }
    public IReadOnlyList<string> Arguments { get; }

    /// <summary>Local ports that replaced the pod's ports (pod port → local port).</summary>
    public Dictionary<int, int> Ports { get; } = [];

    /// <summary>The local directory that stands for a mount path of the pod.</summary>
    public string LocalPath(string mountPath) => Remap(mountPath);

    public DriverProcess Start() => DriverProcess.Start(Arguments, Environment);

    public void Dispose() => _root.Dispose();

    private string Localize(string argument)
    {
        var text = VariablePattern().Replace(argument, m => Environment.TryGetValue(m.Groups[1].Value, out var value)
            ? value
            : throw new InvalidOperationException($"argument '{argument}' uses $({m.Groups[1].Value}), which the container does not define"));
        // Listening on the pod's addresses: bind a free loopback port instead.
        text = ListenPattern().Replace(text, m =>
        {
            var port = int.Parse(m.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture);
            if (argument.StartsWith("--portal=", StringComparison.Ordinal))
            {
                return m.Value;
            }
            if (!Ports.TryGetValue(port, out var local))
            {
                local = CsiScst.Testing.Ports.Free();
                Ports[port] = local;
            }
            return $"{m.Groups[1].Value}127.0.0.1:{local}";
        });
        return Remap(text);
    }

    /// <summary>Mount paths to local directories in one pass (a local path under /tmp is never remapped again).</summary>
    private string Remap(string text)
    {
        if (_mounts.Count == 0)
        {
            return text;
        }
        var alternatives = string.Join('|', _mounts.Select(m => Regex.Escape(m.MountPath)));
        return Regex.Replace(text, $"(?<=^|=|unix://|\"|\\s)({alternatives})(?=/|$|\"|\\s)",
            m => _mounts.First(x => x.MountPath == m.Groups[1].Value).Local, RegexOptions.Multiline);
    }

    [GeneratedRegex(@"\$\(([A-Z_][A-Z0-9_]*)\)")]
    private static partial Regex VariablePattern();

    [GeneratedRegex(@"(^|=|tcp://)(?:0\.0\.0\.0|127\.0\.0\.1):([0-9]+)")]
    private static partial Regex ListenPattern();

    public string Describe()
    {
        var text = new StringBuilder("csi-scst");
        foreach (var argument in Arguments)
        {
            text.Append(' ').Append(argument);
        }
        return text.ToString();
    }
}
