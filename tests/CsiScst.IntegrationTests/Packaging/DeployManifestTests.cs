extern alias k8sfull;

using System.Text.RegularExpressions;
using CsiScst.Backends.Pools;
using CsiScst.Core.Tls;
using CsiScst.Csi.Controller;
using CsiScst.IntegrationTests.Infrastructure;
using Google.Protobuf.Collections;
using k8sfull::k8s.Models;

namespace CsiScst.IntegrationTests.Packaging;

/// <summary>
/// deploy/: the plain manifests equal a fresh render of the chart (without the generated certificates), the
/// examples are valid Kubernetes objects whose StorageClass parameters the controller's own parser accepts,
/// and engine-tls.sh makes certificates the engine API's mutual TLS accepts.
/// </summary>
[Collection(PackagingCollection.Name)]
public sealed partial class DeployManifestTests(PackagingFixture fixture)
{
    [Fact]
    public async Task Plain_manifests_equal_the_rendered_chart()
    {
        var render = await fixture.Tools.HelmAsync("template", HelmTools.Release, RepoPaths.Chart, "--namespace", HelmTools.Namespace);
        render.EnsureSuccess();
        var expected = WithoutGeneratedMaterial(render.StandardOutput);
        var committed = WithoutGeneratedMaterial(string.Join('\n', File.ReadAllLines(Path.Combine(RepoPaths.Deploy, "csi-scst.yaml"))
            .SkipWhile(l => l.StartsWith('#') && !l.StartsWith("# Source:", StringComparison.Ordinal))) + "\n");
        Assert.True(expected == committed, $"deploy/csi-scst.yaml is out of date: run deploy/render.sh\n{FirstDifference(expected, committed)}");
        // What was left out is only the certificates and their checksums.
        var all = RenderedChart.Parse(render.StandardOutput);
        var kept = RenderedChart.Parse(expected);
        Assert.Equal(all.Manifests.Count - 2, kept.Manifests.Count);
        Assert.Equal(2, all.OfKind("Secret").Count());
        Assert.Empty(kept.OfKind("Secret"));
    }

    /// <summary>The two generated Secrets and the checksum/tls annotations (new random material on every render).</summary>
    public static string WithoutGeneratedMaterial(string rendered)
    {
        var documents = DocumentSeparator().Split(rendered).Where(d => !d.Contains("csi-scst.io/generated: \"engine-tls\"", StringComparison.Ordinal));
        return ChecksumTls().Replace(string.Join("---", documents), "");
    }

    [Fact]
    public void Namespace_allows_privileged_pods()
    {
        var ns = RenderedChart.Load(Path.Combine(RepoPaths.Deploy, "namespace.yaml")).Typed<V1Namespace>("Namespace", HelmTools.Namespace);
        Assert.Equal("privileged", ns.Metadata.Labels["pod-security.kubernetes.io/enforce"]);
    }

    public static TheoryData<string> Examples()
    {
        var data = new TheoryData<string>();
        foreach (var file in Directory.GetFiles(Path.Combine(RepoPaths.Deploy, "examples"), "*.yaml").Order(StringComparer.Ordinal))
        {
            data.Add(Path.GetFileName(file));
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Examples))]
    public void Examples_are_valid_objects_the_driver_accepts(string file)
    {
        var manifests = RenderedChart.Load(Path.Combine(RepoPaths.Deploy, "examples", file));
        Assert.NotEmpty(manifests.Manifests);
        var typed = manifests.LoadTyped();
        foreach (var storageClass in typed.OfType<V1StorageClass>())
        {
            Assert.Equal("csi-scst.io", storageClass.Provisioner);
            AcceptedByController(storageClass.Parameters, storageClass.Metadata.Name);
        }
        foreach (var claim in typed.OfType<V1PersistentVolumeClaim>())
        {
            Assert.Contains(claim.Spec.StorageClassName, KnownStorageClasses());
        }
        foreach (var custom in manifests.Custom)
        {
            Assert.Equal("snapshot.storage.k8s.io/v1", custom.ApiVersion);
            Assert.Equal("VolumeSnapshot", custom.Kind);
            Assert.Equal(["apiVersion", "kind", "metadata", "spec"], custom.Json.Select(p => p.Key).Order());
            Assert.Equal(["source", "volumeSnapshotClassName"], custom.Json["spec"]!.AsObject().Select(p => p.Key).Order());
            Assert.Equal("csi-scst-snapshots", (string?)custom.Json["spec"]!["volumeSnapshotClassName"]);
        }
    }

    [Fact]
    public void Examples_cover_every_scenario_the_docs_promise()
    {
        var all = Directory.GetFiles(Path.Combine(RepoPaths.Deploy, "examples"), "*.yaml").Select(RenderedChart.Load).SelectMany(r => r.Manifests).ToList();
        var chart = all.Where(m => m.Kind == "StorageClass").Select(m => (string?)m.Json["parameters"]?["pool"]).ToHashSet();
        Assert.Superset(new HashSet<string?> { "thick", "thin", "ceph", "files" }, chart);
        var pods = all.Where(m => m.Kind == "Pod").Select(m => k8sfull::k8s.KubernetesYaml.Deserialize<V1Pod>(m.Text, strict: true)).ToList();
        Assert.Contains(pods, p => p.Spec.Containers.Any(c => c.VolumeDevices?.Count > 0));
        Assert.Contains(pods, p => p.Spec.Containers.Any(c => c.VolumeMounts?.Count > 0));
        var claims = all.Where(m => m.Kind == "PersistentVolumeClaim").Select(m => k8sfull::k8s.KubernetesYaml.Deserialize<V1PersistentVolumeClaim>(m.Text, strict: true)).ToList();
        Assert.Contains(claims, c => c.Spec.VolumeMode == "Block");
        Assert.Contains(claims, c => c.Spec.DataSource?.Kind == "VolumeSnapshot");
        Assert.Contains(claims, c => c.Spec.DataSource?.Kind == "PersistentVolumeClaim");
        Assert.Contains(all, m => m.Kind == "VolumeSnapshot");
        var parameters = all.Where(m => m.Kind == "StorageClass").Select(m => m.Json["parameters"]!.AsObject()).ToList();
        Assert.Contains(parameters, p => (string?)p["chap"] == "static" && p["csi.storage.k8s.io/provisioner-secret-name"] is not null);
        Assert.Contains(parameters, p => (string?)p["chap"] == "generated" && (string?)p["csi.storage.k8s.io/node-stage-secret-name"] == "${pv.name}-chap");
    }

    [Fact]
    public void Static_chap_example_secret_passes_the_controller_checks()
    {
        var secret = RenderedChart.Load(Path.Combine(RepoPaths.Deploy, "examples", "chap-static.yaml")).Typed<V1Secret>("Secret", "csi-scst-chap");
        var secrets = new MapField<string, string>();
        foreach (var (key, value) in secret.StringData)
        {
            secrets[key] = value;
        }
        var credentials = CsiScst.Csi.Controller.Chap.ChapSecrets.FromSecrets(secrets);
        Assert.False(string.IsNullOrEmpty(credentials.MutualUser));
        Assert.False(string.IsNullOrEmpty(credentials.MutualSecret));
    }

    [Theory]
    [MemberData(nameof(ValuesSets))]
    public async Task Chart_storage_classes_and_pools_are_accepted_by_the_real_parsers(string valuesFile)
    {
        var chart = await fixture.RenderAsync(valuesFile);
        foreach (var storageClass in chart.LoadTyped().OfType<V1StorageClass>())
        {
            AcceptedByController(storageClass.Parameters, storageClass.Metadata.Name);
        }
        var config = chart.Single("ConfigMap", $"{HelmTools.Release}-target").Json["data"]!["config.json"]!.GetValue<string>();
        using var file = new TempDirectory("csi-scst-pools");
        File.WriteAllText(file.Combine("config.json"), config);
        var pools = CsiScst.Commands.TargetCommand.ReadConfig(file.Combine("config.json")).Pools;
        Assert.NotEmpty(pools);
        var poolNames = pools.Select(p => p.Name).ToHashSet();
        foreach (var pool in chart.OfKind("StorageClass").Select(m => (string?)m.Json["parameters"]?["pool"]).OfType<string>())
        {
            Assert.Contains(pool, poolNames);
        }
    }

    public static TheoryData<string> ValuesSets() => PackagingFixture.ValuesSets();

    [Fact]
    public async Task Engine_tls_script_makes_certificates_the_engine_api_accepts()
    {
        var env = new Dictionary<string, string> { ["KUBECTL"] = fixture.Tools.Kubectl };
        var result = await Tool.RunAsync(Path.Combine(RepoPaths.Deploy, "engine-tls.sh"), ["--print", "--namespace", HelmTools.Namespace], environment: env);
        result.EnsureSuccess();
        var secrets = RenderedChart.Parse(result.StandardOutput);
        using var dir = new TempDirectory("csi-scst-engine-tls");
        MutualTls Load(string name)
        {
            var data = secrets.Typed<V1Secret>("Secret", name).Data;
            Directory.CreateDirectory(dir.Combine(name));
            foreach (var (key, bytes) in data)
            {
                File.WriteAllBytes(dir.Combine(name, key), bytes);
            }
            return MutualTls.Load(dir.Combine(name, "ca.crt"), dir.Combine(name, "tls.crt"), dir.Combine(name, "tls.key"));
        }
        var controller = Load("csi-scst-engine-tls-controller");
        var target = Load("csi-scst-engine-tls-target");
        // The engine accepts the controller's certificate as a client, the controller the target's as a server …
        Assert.True(target.ValidateClient(controller.Certificate));
        Assert.True(controller.ValidateServer(target.Certificate));
        // … and neither in the other role (separate extended key usages).
        Assert.False(target.ValidateClient(target.Certificate));
        Assert.False(controller.ValidateServer(controller.Certificate));
        // The chart's names: the plain manifests mount exactly these Secrets.
        var deployed = RenderedChart.Load(Path.Combine(RepoPaths.Deploy, "csi-scst.yaml"));
        var mounted = deployed.LoadTyped().SelectMany(o => o switch
        {
            V1Deployment d => d.Spec.Template.Spec.Volumes,
            V1DaemonSet ds => ds.Spec.Template.Spec.Volumes,
            _ => [],
        }).Where(v => v.Secret is not null).Select(v => v.Secret.SecretName).ToHashSet();
        Assert.Equal(new HashSet<string> { "csi-scst-engine-tls-controller", "csi-scst-engine-tls-target" }, mounted);
    }

    [Fact]
    public async Task Chart_generated_certificates_chain_to_one_ca()
    {
        var chart = fixture.Default;
        using var dir = new TempDirectory("csi-scst-chart-tls");
        MutualTls Load(string name)
        {
            var data = chart.Typed<V1Secret>("Secret", name).Data;
            Directory.CreateDirectory(dir.Combine(name));
            foreach (var (key, bytes) in data)
            {
                File.WriteAllBytes(dir.Combine(name, key), bytes);
            }
            return MutualTls.Load(dir.Combine(name, "ca.crt"), dir.Combine(name, "tls.crt"), dir.Combine(name, "tls.key"));
        }
        var controller = Load($"{HelmTools.Release}-engine-tls-controller");
        var target = Load($"{HelmTools.Release}-engine-tls-target");
        Assert.True(target.ValidateClient(controller.Certificate));
        Assert.True(controller.ValidateServer(target.Certificate));
        Assert.Equal(controller.Authority.Thumbprint, target.Authority.Thumbprint);
        var other = await fixture.Tools.RenderAsync();
        var stranger = other.Typed<V1Secret>("Secret", $"{HelmTools.Release}-engine-tls-controller").Data;
        Assert.NotEqual(Convert.ToBase64String(stranger["ca.crt"]), Convert.ToBase64String(chart.Typed<V1Secret>("Secret", $"{HelmTools.Release}-engine-tls-controller").Data["ca.crt"]));
    }

    private static HashSet<string> KnownStorageClasses() =>
        Directory.GetFiles(Path.Combine(RepoPaths.Deploy, "examples"), "*.yaml").Select(RenderedChart.Load)
            .SelectMany(r => r.OfKind("StorageClass")).Select(m => m.Name).ToHashSet();

    /// <summary>The controller's CreateVolume parser (provisioner keys are skipped by it, as the provisioner strips them).</summary>
    private static void AcceptedByController(IDictionary<string, string>? parameters, string name)
    {
        var map = new MapField<string, string>();
        foreach (var (key, value) in parameters ?? new Dictionary<string, string>())
        {
            map[key] = value;
        }
        var parsed = VolumeParameters.Parse(map);
        Assert.True(parsed.Pool is not null, $"StorageClass {name} names no pool");
    }

    private static string FirstDifference(string expected, string actual)
    {
        var e = expected.Split('\n');
        var a = actual.Split('\n');
        for (var i = 0; i < Math.Max(e.Length, a.Length); i++)
        {
            var left = i < e.Length ? e[i] : "<end>";
            var right = i < a.Length ? a[i] : "<end>";
            if (left != right)
            {
                return $"line {i + 1}: rendered '{left}', committed '{right}'";
            }
        }
        return "";
    }

    [GeneratedRegex("(?m)^---$")]
    private static partial Regex DocumentSeparator();

    [GeneratedRegex(@"(?m)^\s+checksum/tls: [0-9a-f]{64}\n")]
    private static partial Regex ChecksumTls();
}
