extern alias k8sfull;

using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using k8sfull::k8s;
using YamlDotNet.RepresentationModel;

namespace CsiScst.IntegrationTests.Packaging;

/// <summary>Paths inside the repository the tests run from.</summary>
public static class RepoPaths
{
    public static string Root { get; } = FindRoot();

    public static string Chart => Path.Combine(Root, "charts", "csi-scst");
    public static string ChartValues => Path.Combine(Chart, "values");
    public static string Deploy => Path.Combine(Root, "deploy");

    public static string Combine(params string[] parts) => Path.Combine([Root, .. parts]);

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "CsiScst.sln")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException($"no CsiScst.sln above {AppContext.BaseDirectory}");
    }
}

/// <summary>One run of an external tool: argument list (never a shell string), captured output, a time limit.</summary>
public sealed record ToolResult(string Program, IReadOnlyList<string> Arguments, int ExitCode, string StandardOutput, string StandardError)
{
    public string Describe() =>
        $"{Program} {string.Join(' ', Arguments)} exited {ExitCode}\nstdout:\n{StandardOutput}\nstderr:\n{StandardError}";

    public ToolResult EnsureSuccess() => ExitCode == 0 ? this : throw new InvalidOperationException(Describe());
}

public static class Tool
{
    public static async Task<ToolResult> RunAsync(string program, IEnumerable<string> arguments, TimeSpan? timeout = null,
        string? workingDirectory = null, IReadOnlyDictionary<string, string>? environment = null, string? standardInput = null)
    {
        var info = new ProcessStartInfo(program)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = standardInput is not null,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? RepoPaths.Root,
        };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[name] = value;
        }
        using var process = Process.Start(info) ?? throw new InvalidOperationException($"cannot start {program}");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (standardInput is not null)
        {
            await process.StandardInput.WriteAsync(standardInput);
            process.StandardInput.Close();
        }
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromMinutes(2));
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            throw new TimeoutException($"{program} {string.Join(' ', info.ArgumentList)} did not finish in {timeout ?? TimeSpan.FromMinutes(2)}");
        }
        return new ToolResult(program, [.. info.ArgumentList], process.ExitCode, await stdout, await stderr);
    }
}

/// <summary>
/// The real helm and kubectl that scripts/install-helm.sh installs (it runs first, and installs them when they
/// are missing, as on a fresh CI machine). $CSI_SCST_HELM / $CSI_SCST_KUBECTL point elsewhere when set.
/// </summary>
public sealed class HelmTools
{
    private HelmTools(string helm, string kubectl, string bin)
    {
        Helm = helm;
        Kubectl = kubectl;
        Bin = bin;
    }

    public string Helm { get; }
    public string Kubectl { get; }

    /// <summary>The directory install-helm.sh links its tools into (also dockerfilelint and dockerfile-utils).</summary>
    public string Bin { get; }

    public static async Task<HelmTools> EnsureAsync()
    {
        // The script is idempotent and quick when the tools are there; it prints their directory last.
        var install = await Tool.RunAsync(RepoPaths.Combine("scripts", "install-helm.sh"), [], TimeSpan.FromMinutes(10));
        install.EnsureSuccess();
        var bin = install.StandardOutput.Trim().Split('\n')[^1].Trim();
        var helm = Environment.GetEnvironmentVariable("CSI_SCST_HELM") is { Length: > 0 } h ? h : Path.Combine(bin, "helm");
        var kubectl = Environment.GetEnvironmentVariable("CSI_SCST_KUBECTL") is { Length: > 0 } k ? k : Path.Combine(bin, "kubectl");
        return new HelmTools(helm, kubectl, bin);
    }

    public Task<ToolResult> HelmAsync(params string[] arguments) => Tool.RunAsync(Helm, arguments);

    public Task<ToolResult> KubectlAsync(IEnumerable<string> arguments, string? standardInput = null) =>
        Tool.RunAsync(Kubectl, arguments, standardInput: standardInput);

    public const string Release = "csi-scst";
    public const string Namespace = "csi-scst";

    /// <summary><c>helm template csi-scst charts/csi-scst -n csi-scst ARGS</c>, parsed.</summary>
    public async Task<RenderedChart> RenderAsync(params string[] arguments)
    {
        var result = await HelmAsync(["template", Release, RepoPaths.Chart, "--namespace", Namespace, .. arguments]);
        result.EnsureSuccess();
        return RenderedChart.Parse(result.StandardOutput);
    }
}

/// <summary>One YAML document of a render: its text and a JSON view for generic checks.</summary>
public sealed record Manifest(string Text, JsonObject Json)
{
    public string ApiVersion => (string?)Json["apiVersion"] ?? "";
    public string Kind => (string?)Json["kind"] ?? "";
    public string Name => (string?)Json["metadata"]?["name"] ?? "";

    public override string ToString() => $"{Kind}/{Name}";
}

/// <summary>The documents of a rendered chart or of a manifest file.</summary>
public sealed class RenderedChart
{
    private RenderedChart(string text, IReadOnlyList<Manifest> manifests)
    {
        Text = text;
        Manifests = manifests;
    }

    public string Text { get; }
    public IReadOnlyList<Manifest> Manifests { get; }

    /// <summary>Kinds the Kubernetes API serves itself; the others (snapshot classes, ServiceMonitor) come from CRDs.</summary>
    public IEnumerable<Manifest> BuiltIn => Manifests.Where(m => !IsCustom(m));
    public IEnumerable<Manifest> Custom => Manifests.Where(IsCustom);

    public static bool IsCustom(Manifest m) =>
        m.ApiVersion.StartsWith("snapshot.storage.k8s.io/", StringComparison.Ordinal)
        || m.ApiVersion.StartsWith("monitoring.coreos.com/", StringComparison.Ordinal);

    public IEnumerable<Manifest> OfKind(string kind) => Manifests.Where(m => m.Kind == kind);

    public Manifest Single(string kind, string name) =>
        Manifests.SingleOrDefault(m => m.Kind == kind && m.Name == name)
        ?? throw new InvalidOperationException($"no {kind}/{name} in the render; have: {string.Join(", ", Manifests)}");

    /// <summary>The typed objects of every built-in kind, loaded strictly (unknown fields and wrong types throw).</summary>
    public IReadOnlyList<object> LoadTyped() =>
        KubernetesYaml.LoadAllFromString(string.Join("\n---\n", BuiltIn.Select(m => m.Text)), strict: true);

    public T Typed<T>(string kind, string name) => KubernetesYaml.Deserialize<T>(Single(kind, name).Text, strict: true);

    public static RenderedChart Parse(string text)
    {
        var manifests = new List<Manifest>();
        foreach (var document in SplitDocuments(text))
        {
            var stream = new YamlStream();
            stream.Load(new StringReader(document));
            if (stream.Documents.Count == 0 || stream.Documents[0].RootNode is not YamlMappingNode root)
            {
                continue;
            }
            manifests.Add(new Manifest(document, (JsonObject)ToJson(root)!));
        }
        return new RenderedChart(text, manifests);
    }

    public static RenderedChart Load(string path) => Parse(File.ReadAllText(path));

    private static IEnumerable<string> SplitDocuments(string text)
    {
        var current = new StringBuilder();
        foreach (var line in text.Split('\n'))
        {
            if (line.TrimEnd() == "---")
            {
                if (HasContent(current))
                {
                    yield return current.ToString();
                }
                current.Clear();
                continue;
            }
            current.Append(line).Append('\n');
        }
        if (HasContent(current))
        {
            yield return current.ToString();
        }
    }

    private static bool HasContent(StringBuilder document) =>
        document.ToString().Split('\n').Any(l => l.Trim().Length > 0 && !l.TrimStart().StartsWith('#'));

    /// <summary>YAML to JSON; plain scalars that are YAML booleans or numbers become JSON ones.</summary>
    private static JsonNode? ToJson(YamlNode node) => node switch
    {
        YamlMappingNode map => new JsonObject(map.Children.Select(c =>
            KeyValuePair.Create(((YamlScalarNode)c.Key).Value ?? "", ToJson(c.Value)))),
        YamlSequenceNode seq => new JsonArray([.. seq.Children.Select(ToJson)]),
        YamlScalarNode { Style: YamlDotNet.Core.ScalarStyle.Plain } scalar => Plain(scalar.Value),
        YamlScalarNode scalar => JsonValue.Create(scalar.Value),
        _ => null,
    };

    private static JsonNode? Plain(string? value) => value switch
    {
        null or "~" or "null" or "" => null,
        "true" => JsonValue.Create(true),
        "false" => JsonValue.Create(false),
        _ when long.TryParse(value, System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture, out var l) => JsonValue.Create(l),
        _ => JsonValue.Create(value),
    };
}
