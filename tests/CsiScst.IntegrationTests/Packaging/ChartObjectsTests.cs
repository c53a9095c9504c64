extern alias k8sfull;

using System.Text.Json.Nodes;
using k8sfull::k8s;
using k8sfull::k8s.Models;

namespace CsiScst.IntegrationTests.Packaging;

/// <summary>
/// The rendered objects against the Kubernetes API types (strict: unknown fields and wrong types fail), the
/// custom kinds against their CRDs' fields, and the metrics objects (ServiceMonitor, Grafana dashboard)
/// against the real metric names.
/// </summary>
[Collection(PackagingCollection.Name)]
public sealed class ChartObjectsTests(PackagingFixture fixture)
{
    public static TheoryData<string> ValuesSets() => PackagingFixture.ValuesSets();

    private static readonly string[] WithMetrics = ["--set", "metrics.serviceMonitor.enabled=true", "--set", "metrics.dashboard.enabled=true"];

    [Theory]
    [MemberData(nameof(ValuesSets))]
    public async Task Every_object_loads_strictly_as_its_kubernetes_type(string valuesFile)
    {
        var chart = valuesFile.Length == 0
            ? await fixture.Tools.RenderAsync(WithMetrics)
            : await fixture.Tools.RenderAsync(["-f", Path.Combine(RepoPaths.ChartValues, valuesFile), .. WithMetrics]);
        var typed = chart.LoadTyped();
        Assert.Equal(chart.BuiltIn.Count(), typed.Count);
        Assert.DoesNotContain(typed, o => o is null);
        // Every namespaced object lands in the release namespace.
        foreach (var o in typed.OfType<IMetadata<V1ObjectMeta>>())
        {
            var kind = o.GetType().Name;
            if (kind is not (nameof(V1ClusterRole) or nameof(V1ClusterRoleBinding) or nameof(V1CSIDriver) or nameof(V1StorageClass)))
            {
                Assert.Equal(HelmTools.Namespace, o.Metadata.NamespaceProperty);
            }
        }
        foreach (var custom in chart.Custom)
        {
            switch (custom.Kind)
            {
                case "VolumeSnapshotClass":
                    Assert.Equal("snapshot.storage.k8s.io/v1", custom.ApiVersion);
                    Assert.Subset(new HashSet<string> { "apiVersion", "kind", "metadata", "driver", "deletionPolicy", "parameters" }, custom.Json.Select(p => p.Key).ToHashSet());
                    Assert.Equal("csi-scst.io", (string?)custom.Json["driver"]);
                    Assert.Contains((string?)custom.Json["deletionPolicy"], new[] { "Delete", "Retain" });
                    break;
                case "ServiceMonitor":
                    Assert.Equal("monitoring.coreos.com/v1", custom.ApiVersion);
                    Assert.Equal(["apiVersion", "kind", "metadata", "spec"], custom.Json.Select(p => p.Key).Order());
                    Assert.Subset(new HashSet<string> { "selector", "namespaceSelector", "endpoints", "jobLabel" }, custom.Json["spec"]!.AsObject().Select(p => p.Key).ToHashSet());
                    break;
                default:
                    Assert.Fail($"unexpected custom kind {custom}");
                    break;
            }
        }
    }

    [Fact]
    public void Strict_loading_catches_a_misspelled_field_and_a_wrong_type()
    {
        // Guards the test above: a broken manifest must not load.
        var deployment = fixture.Default.Single("Deployment", $"{HelmTools.Release}-controller").Text;
        var misspelled = deployment.Replace("serviceAccountName:", "serviceAccount_Name:", StringComparison.Ordinal);
        Assert.ThrowsAny<Exception>(() => KubernetesYaml.LoadAllFromString(misspelled, strict: true));
        var wrongType = deployment.Replace("replicas: 1", "replicas: one", StringComparison.Ordinal);
        Assert.ThrowsAny<Exception>(() => KubernetesYaml.LoadAllFromString(wrongType, strict: true));
        Assert.Single(KubernetesYaml.LoadAllFromString(deployment, strict: true));
    }

    [Fact]
    public async Task Service_monitor_scrapes_the_metrics_port_of_every_role()
    {
        var chart = await fixture.Tools.RenderAsync(WithMetrics);
        var monitor = chart.Single("ServiceMonitor", HelmTools.Release);
        var selector = monitor.Json["spec"]!["selector"]!["matchLabels"]!.AsObject().ToDictionary(p => p.Key, p => (string)p.Value!);
        var endpoint = monitor.Json["spec"]!["endpoints"]!.AsArray().Single()!;
        var services = chart.LoadTyped().OfType<V1Service>().Where(s => selector.All(kv => s.Metadata.Labels.TryGetValue(kv.Key, out var v) && v == kv.Value)).ToList();
        Assert.Equal(["controller", "node", "target"], services.Select(s => s.Metadata.Labels["app.kubernetes.io/component"]).Order());
        var workloads = chart.LoadTyped().Select(o => o switch
        {
            V1Deployment d => d.Spec.Template,
            V1DaemonSet ds => ds.Spec.Template,
            _ => null,
        }).OfType<V1PodTemplateSpec>().ToList();
        foreach (var service in services)
        {
            var port = service.Spec.Ports.Single(p => p.Name == (string?)endpoint["port"]);
            // The Service's selector picks pods whose csi-scst container has a port of that name and number.
            var pods = workloads.Where(t => service.Spec.Selector.All(kv => t.Metadata.Labels.TryGetValue(kv.Key, out var v) && v == kv.Value)).ToList();
            Assert.NotEmpty(pods);
            Assert.All(pods, t => Assert.Contains(t.Spec.Containers.Single(c => c.Name == "csi-scst").Ports,
                p => p.Name == port.TargetPort.Value && p.ContainerPort == port.Port));
        }
    }

    [Fact]
    public async Task Dashboard_queries_only_real_metrics_and_shows_every_role()
    {
        var chart = await fixture.Tools.RenderAsync(WithMetrics);
        var configMap = chart.Typed<V1ConfigMap>("ConfigMap", $"{HelmTools.Release}-dashboard");
        Assert.Equal("1", configMap.Metadata.Labels["grafana_dashboard"]);
        var json = configMap.Data["csi-scst.json"];
        Assert.Equal(File.ReadAllText(Path.Combine(RepoPaths.Chart, "files", "grafana-dashboard.json")).TrimEnd(), json.TrimEnd());
        var dashboard = JsonNode.Parse(json)!;
        Assert.Equal("csi-scst", (string?)dashboard["uid"]);
        var used = MetricsDocumentation.InDashboard(json);
        var real = MetricsDocumentation.InSource();
        Assert.Empty(used.Except(real));
        foreach (var wanted in new[] { "csi_scst_rpc_requests_total", "csi_scst_rpc_duration_seconds", "csi_scst_tool_runs_total", "csi_scst_tool_duration_seconds" })
        {
            Assert.Contains(wanted, used);
        }
        Assert.Contains(used, n => n.StartsWith("csi_scst_engine_", StringComparison.Ordinal));
        Assert.Contains(used, n => n.StartsWith("csi_scst_node_", StringComparison.Ordinal));
        Assert.Contains(used, n => n.StartsWith("csi_scst_controller_", StringComparison.Ordinal));
    }

    [Fact]
    public void Metrics_page_documents_exactly_the_metrics_the_code_creates()
    {
        var documented = MetricsDocumentation.Load();
        var source = MetricsDocumentation.InSource();
        Assert.True(source.Count >= 20, $"only {source.Count} metric names found in src/");
        Assert.Empty(source.Except(documented.Keys).Order());
        Assert.Empty(documented.Keys.Except(source).Order());
        Assert.All(documented.Values, d => Assert.Contains(d.Type, new[] { "counter", "gauge", "histogram" }));
        Assert.All(documented.Values.Where(d => d.Name.EndsWith("_total", StringComparison.Ordinal)), d => Assert.Equal("counter", d.Type));
        Assert.All(documented.Values.Where(d => d.Name.EndsWith("_seconds", StringComparison.Ordinal)), d => Assert.Equal("histogram", d.Type));
    }
}
