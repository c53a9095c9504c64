extern alias k8sfull;

using System.Text.RegularExpressions;
using k8sfull::k8s.Models;

namespace CsiScst.IntegrationTests.Packaging;

/// <summary>
/// The kubernetes-csi conventions on the rendered objects (typed, loaded strictly): privileges only where
/// needed, the right host mounts, sockets that match, leader election, RBAC with the least each part needs.
/// </summary>
[Collection(PackagingCollection.Name)]
public sealed partial class ChartConventionTests(PackagingFixture fixture)
{
    public static TheoryData<string> ValuesSets() => PackagingFixture.ValuesSets();

    private const string Prefix = HelmTools.Release;

    private static V1Container Driver(V1PodSpec pod) => pod.Containers.Single(c => c.Name == "csi-scst");

    private static IEnumerable<(string Name, V1PodSpec Pod, IDictionary<string, string> Labels)> Workloads(RenderedChart chart)
    {
        foreach (var o in chart.LoadTyped())
        {
            switch (o)
            {
                case V1Deployment d:
                    yield return (d.Metadata.Name, d.Spec.Template.Spec, d.Spec.Template.Metadata.Labels);
                    break;
                case V1DaemonSet ds:
                    yield return (ds.Metadata.Name, ds.Spec.Template.Spec, ds.Spec.Template.Metadata.Labels);
                    break;
            }
        }
    }

    private static string? Flag(V1Container container, string name) =>
        (container.Args ?? []).Where(a => a.StartsWith(name + "=", StringComparison.Ordinal)).Select(a => a[(name.Length + 1)..]).SingleOrDefault();

    [Theory]
    [MemberData(nameof(ValuesSets))]
    public async Task Controller_is_unprivileged_and_non_root(string valuesFile)
    {
        var chart = await fixture.RenderAsync(valuesFile);
        var deployment = chart.Typed<V1Deployment>("Deployment", $"{Prefix}-controller");
        var pod = deployment.Spec.Template.Spec;
        Assert.True(pod.SecurityContext.RunAsNonRoot);
        Assert.NotEqual(0, pod.SecurityContext.RunAsUser);
        Assert.NotEqual(true, pod.HostNetwork);
        Assert.NotEqual(true, pod.HostPID);
        Assert.NotEqual(true, pod.HostIPC);
        Assert.All(pod.Volumes, v => Assert.Null(v.HostPath));
        Assert.All(pod.Containers, c =>
        {
            Assert.NotEqual(true, c.SecurityContext?.Privileged);
            Assert.False(c.SecurityContext?.AllowPrivilegeEscalation ?? true, $"{c.Name} may escalate privileges");
            Assert.Contains("ALL", c.SecurityContext?.Capabilities?.Drop ?? []);
            Assert.True(c.SecurityContext?.RunAsUser is null or > 0, $"{c.Name} runs as root");
        });
    }

    [Theory]
    [MemberData(nameof(ValuesSets))]
    public async Task Node_plugin_is_privileged_with_the_host_mounts_it_needs(string valuesFile)
    {
        var chart = await fixture.RenderAsync(valuesFile);
        var nodes = chart.LoadTyped().OfType<V1DaemonSet>().Where(d => d.Metadata.Name.StartsWith($"{Prefix}-node", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(nodes);
        foreach (var ds in nodes)
        {
            var pod = ds.Spec.Template.Spec;
            var driver = Driver(pod);
            Assert.True(driver.SecurityContext.Privileged);
            Assert.True(pod.HostNetwork, "iscsid's abstract socket is in the host's network namespace");
            Assert.Equal("system-node-critical", pod.PriorityClassName);
            Assert.Contains(pod.Tolerations ?? [], t => t.OperatorProperty == "Exists" && t.Key is null);
            var kubeletDir = HostPathMount(pod, driver, "/var/lib/kubelet");
            Assert.Equal("Bidirectional", kubeletDir.MountPropagation);
            Assert.Equal("/var/lib/kubelet", kubeletDir.MountPath);
            foreach (var path in new[] { "/dev", "/sys", "/run/udev", "/etc/iscsi", "/var/lib/iscsi", "/lib/modules" })
            {
                Assert.Equal(path, HostPathMount(pod, driver, path).MountPath);
            }
            Assert.True(HostPathMount(pod, driver, "/lib/modules").ReadOnlyProperty);
            if (Flag(driver, "--host-root") is { } hostRoot)
            {
                // nsenter into the host's mount namespace through <host-root>/proc/1/ns/mnt.
                Assert.True(pod.HostPID, "--host-root needs hostPID");
                Assert.Equal(hostRoot, HostPathMount(pod, driver, "/").MountPath);
            }
            var registrar = pod.Containers.Single(c => c.Name == "node-driver-registrar");
            var registration = Flag(registrar, "--kubelet-registration-path")!;
            Assert.Equal("/var/lib/kubelet/plugins/csi-scst.io/csi.sock", registration);
            Assert.Equal(Path.GetDirectoryName(registration), pod.Volumes.Single(v => v.Name == "plugin-dir").HostPath.Path);
            Assert.Equal("/var/lib/kubelet/plugins_registry", pod.Volumes.Single(v => v.Name == "registration-dir").HostPath.Path);
        }
    }

    [Theory]
    [MemberData(nameof(ValuesSets))]
    public async Task Target_engine_is_privileged_and_runs_only_on_labelled_storage_nodes(string valuesFile)
    {
        var chart = await fixture.RenderAsync(valuesFile);
        var targets = chart.LoadTyped().OfType<V1DaemonSet>().Where(d => d.Metadata.Name.StartsWith($"{Prefix}-target", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(targets);
        foreach (var ds in targets)
        {
            var pod = ds.Spec.Template.Spec;
            var driver = Driver(pod);
            Assert.True(driver.SecurityContext.Privileged);
            Assert.True(pod.HostNetwork);
            Assert.Equal("true", pod.NodeSelector["csi-scst.io/storage"]);
            Assert.Equal("system-node-critical", pod.PriorityClassName);
            foreach (var path in new[] { "/sys", "/sys/kernel/config", "/run/lvm", "/etc/lvm", "/dev", "/var/lib/csi-scst" })
            {
                Assert.Equal(path, HostPathMount(pod, driver, path).MountPath);
            }
            Assert.Equal("/var/lib/csi-scst", Flag(driver, "--state-dir"));
            var apiPort = driver.Ports.Single(p => p.Name == "engine-api").ContainerPort;
            Assert.EndsWith($":{apiPort}", Flag(driver, "--listen"));
            // The kernel target opens file pool images by path: each file pool directory is the same path on the host.
            var config = chart.Single("ConfigMap", $"{Prefix}-target").Json["data"]!["config.json"]!.GetValue<string>();
            foreach (var pool in System.Text.Json.Nodes.JsonNode.Parse(config)!["pools"]!.AsArray().Where(p => (string?)p!["backend"] == "file"))
            {
                var path = (string)pool!["path"]!;
                Assert.Equal(path, HostPathMount(pod, driver, path).MountPath);
            }
        }
    }

    [Fact]
    public void Only_the_node_plugin_mounts_with_bidirectional_propagation()
    {
        var bidirectional = Workloads(fixture.Default)
            .SelectMany(w => w.Pod.Containers.SelectMany(c => (c.VolumeMounts ?? []).Where(m => m.MountPropagation == "Bidirectional").Select(m => $"{w.Name}/{c.Name}:{m.MountPath}")))
            .ToList();
        Assert.Equal([$"{Prefix}-node/csi-scst:/var/lib/kubelet"], bidirectional);
    }

    [Theory]
    [MemberData(nameof(ValuesSets))]
    public async Task Sidecars_reach_the_socket_the_driver_serves(string valuesFile)
    {
        var chart = await fixture.RenderAsync(valuesFile);
        foreach (var (name, pod, _) in Workloads(chart).Where(w => !w.Name.Contains("-target", StringComparison.Ordinal)))
        {
            var driver = Driver(pod);
            var endpoint = Flag(driver, "--endpoint")!;
            Assert.StartsWith("unix://", endpoint);
            var socket = endpoint["unix://".Length..];
            var driverVolume = driver.VolumeMounts.Single(m => m.MountPath == Path.GetDirectoryName(socket)).Name;
            var sidecars = pod.Containers.Where(c => c.Name != "csi-scst").ToList();
            Assert.NotEmpty(sidecars);
            foreach (var sidecar in sidecars)
            {
                var address = Flag(sidecar, "--csi-address");
                Assert.True(address is not null, $"{name}/{sidecar.Name} has no --csi-address");
                var mount = sidecar.VolumeMounts.Single(m => m.MountPath == Path.GetDirectoryName(address));
                Assert.Equal(driverVolume, mount.Name);
                Assert.Equal(Path.GetFileName(socket), Path.GetFileName(address));
            }
        }
    }

    [Theory]
    [MemberData(nameof(ValuesSets))]
    public async Task Controller_sidecars_elect_a_leader_and_wait_for_slow_engine_operations(string valuesFile)
    {
        var chart = await fixture.RenderAsync(valuesFile);
        var pod = chart.Typed<V1Deployment>("Deployment", $"{Prefix}-controller").Spec.Template.Spec;
        var sidecars = pod.Containers.Where(c => c.Name is not "csi-scst" and not "liveness-probe").ToList();
        Assert.Contains(sidecars, c => c.Name == "csi-provisioner");
        Assert.Contains(sidecars, c => c.Name == "csi-attacher");
        Assert.Contains(sidecars, c => c.Name == "csi-resizer");
        foreach (var sidecar in sidecars)
        {
            Assert.Contains("--leader-election", sidecar.Args);
            Assert.Equal("$(POD_NAMESPACE)", Flag(sidecar, "--leader-election-namespace"));
            // An SCST sysfs write may wait 15 s and more; RBD clones and flattens take minutes.
            var timeout = Seconds(Flag(sidecar, "--timeout")!);
            Assert.True(timeout >= (sidecar.Name == "csi-attacher" ? 60 : 120), $"{sidecar.Name} --timeout={timeout}s is shorter than the engine's slow operations");
        }
        var provisioner = sidecars.Single(c => c.Name == "csi-provisioner");
        Assert.Contains("--extra-create-metadata", provisioner.Args);
    }

    [Fact]
    public async Task Topology_and_capacity_only_when_zones_are_configured()
    {
        var plain = fixture.Default;
        var zoned = await fixture.RenderAsync("topology.yaml");
        Assert.False(plain.Typed<V1CSIDriver>("CSIDriver", "csi-scst.io").Spec.StorageCapacity);
        Assert.True(zoned.Typed<V1CSIDriver>("CSIDriver", "csi-scst.io").Spec.StorageCapacity);
        var plainProvisioner = plain.Typed<V1Deployment>("Deployment", $"{Prefix}-controller").Spec.Template.Spec.Containers.Single(c => c.Name == "csi-provisioner");
        var zonedPod = zoned.Typed<V1Deployment>("Deployment", $"{Prefix}-controller").Spec.Template.Spec;
        var zonedProvisioner = zonedPod.Containers.Single(c => c.Name == "csi-provisioner");
        Assert.DoesNotContain("--feature-gates=Topology=true", plainProvisioner.Args);
        Assert.DoesNotContain("--enable-capacity", plainProvisioner.Args);
        Assert.DoesNotContain("--topology", Driver(plain.Typed<V1Deployment>("Deployment", $"{Prefix}-controller").Spec.Template.Spec).Args);
        Assert.Contains("--feature-gates=Topology=true", zonedProvisioner.Args);
        Assert.Contains("--enable-capacity", zonedProvisioner.Args);
        Assert.Contains("--topology", Driver(zonedPod).Args);
        Assert.Contains(zonedProvisioner.Env, e => e.Name == "POD_NAME");
        // One node plugin and one target per zone, each on that zone's nodes with --zone.
        foreach (var zone in new[] { "zone-a", "zone-b" })
        {
            foreach (var role in new[] { "node", "target" })
            {
                var pod = zoned.Typed<V1DaemonSet>("DaemonSet", $"{Prefix}-{role}-{zone}").Spec.Template.Spec;
                Assert.Equal(zone, pod.NodeSelector["topology.kubernetes.io/zone"]);
                Assert.Equal(zone, Flag(Driver(pod), "--zone"));
            }
        }
        Assert.Equal("WaitForFirstConsumer", zoned.OfKind("StorageClass").Select(m => (string?)m.Json["volumeBindingMode"]).Distinct().Single());
    }

    [Theory]
    [MemberData(nameof(ValuesSets))]
    public async Task Csi_driver_object_matches_what_the_driver_implements(string valuesFile)
    {
        var chart = await fixture.RenderAsync(valuesFile);
        var driver = chart.Typed<V1CSIDriver>("CSIDriver", "csi-scst.io").Spec;
        Assert.True(driver.AttachRequired, "ControllerPublishVolume does the LUN masking");
        Assert.False(driver.PodInfoOnMount);
        Assert.Equal("File", driver.FsGroupPolicy);
        Assert.Equal(["Persistent"], driver.VolumeLifecycleModes);
        // fsGroupPolicy File delegates fsGroup to the node plugin only because it advertises VOLUME_MOUNT_GROUP;
        // storage capacity needs GetCapacity.
        var capabilities = new CsiScst.Csi.CsiCapabilities();
        CsiScst.Csi.Node.NodeServiceCollectionExtensions.AddNodePlugin(
            new Microsoft.Extensions.DependencyInjection.ServiceCollection(), capabilities, new CsiScst.Csi.Node.NodePluginOptions());
        Assert.Contains(global::Csi.V1.NodeServiceCapability.Types.RPC.Types.Type.VolumeMountGroup, capabilities.Node);
        Assert.Contains(global::Csi.V1.NodeServiceCapability.Types.RPC.Types.Type.StageUnstageVolume, capabilities.Node);
        Assert.Contains(global::Csi.V1.ControllerServiceCapability.Types.RPC.Types.Type.PublishUnpublishVolume, CsiScst.Csi.Controller.ControllerRegistration.Capabilities);
        Assert.Contains(global::Csi.V1.ControllerServiceCapability.Types.RPC.Types.Type.GetCapacity, CsiScst.Csi.Controller.ControllerRegistration.Capabilities);
    }

    [Theory]
    [MemberData(nameof(ValuesSets))]
    public async Task Rbac_grants_the_least_each_part_needs(string valuesFile)
    {
        var chart = await fixture.RenderAsync(valuesFile);
        var typed = chart.LoadTyped();
        var accounts = typed.OfType<V1ServiceAccount>().ToDictionary(a => a.Metadata.Name);
        Assert.False(accounts[$"{Prefix}-node"].AutomountServiceAccountToken);
        Assert.False(accounts[$"{Prefix}-target"].AutomountServiceAccountToken);
        var subjects = typed.OfType<V1RoleBinding>().SelectMany(b => b.Subjects).Concat(typed.OfType<V1ClusterRoleBinding>().SelectMany(b => b.Subjects)).ToList();
        Assert.All(subjects, s => Assert.Equal($"{Prefix}-controller", s.Name));
        var rules = typed.OfType<V1ClusterRole>().SelectMany(r => r.Rules).Concat(typed.OfType<V1Role>().SelectMany(r => r.Rules)).ToList();
        Assert.All(rules, r =>
        {
            Assert.DoesNotContain("*", r.Verbs);
            Assert.DoesNotContain("*", r.Resources);
            Assert.DoesNotContain("*", r.ApiGroups);
        });
        // Secrets: never cluster-wide; in the driver's namespace exactly what the generated CHAP Secrets need.
        Assert.DoesNotContain(typed.OfType<V1ClusterRole>().SelectMany(r => r.Rules), r => r.Resources.Contains("secrets"));
        var role = typed.OfType<V1Role>().Single();
        Assert.Equal(HelmTools.Namespace, role.Metadata.NamespaceProperty);
        Assert.Equal(["create", "delete", "get", "list"], role.Rules.Single(r => r.Resources.Contains("secrets")).Verbs.Order());
        Assert.Contains(role.Rules, r => r.Resources.Contains("pods") && r.Verbs.Contains("list"));
        Assert.Contains(role.Rules, r => r.Resources.Contains("leases"));
        // Each workload runs under its own account.
        foreach (var (name, pod, _) in Workloads(chart))
        {
            var role2 = name.Contains("-target", StringComparison.Ordinal) ? "target" : name.Contains("-node", StringComparison.Ordinal) ? "node" : "controller";
            Assert.Equal($"{Prefix}-{role2}", pod.ServiceAccountName);
        }
    }

    [Theory]
    [MemberData(nameof(ValuesSets))]
    public async Task Controller_finds_the_target_pods_and_shares_their_certificate_authority(string valuesFile)
    {
        var chart = await fixture.RenderAsync(valuesFile);
        var controller = chart.Typed<V1Deployment>("Deployment", $"{Prefix}-controller").Spec.Template.Spec;
        var driver = Driver(controller);
        Assert.Equal("kubernetes", Flag(driver, "--discovery"));
        var selector = Flag(driver, "--target-selector")!.Split(',').Select(p => p.Split('=')).ToDictionary(p => p[0], p => p[1]);
        var enginePort = int.Parse(Flag(driver, "--engine-port")!, System.Globalization.CultureInfo.InvariantCulture);
        var targets = Workloads(chart).Where(w => w.Name.Contains("-target", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(targets);
        foreach (var (_, pod, labels) in targets)
        {
            Assert.All(selector, kv => Assert.Equal(kv.Value, labels[kv.Key]));
            Assert.Equal(enginePort, Driver(pod).Ports.Single(p => p.Name == "engine-api").ContainerPort);
        }
        // No other pod matches the selector.
        Assert.All(Workloads(chart).Where(w => !w.Name.Contains("-target", StringComparison.Ordinal)),
            w => Assert.False(selector.All(kv => w.Labels.TryGetValue(kv.Key, out var v) && v == kv.Value), $"{w.Name} matches the target selector"));
        var secrets = chart.OfKind("Secret").Select(s => s.Name).ToHashSet();
        Assert.Contains(controller.Volumes.Single(v => v.Name == "engine-tls").Secret.SecretName, secrets);
        Assert.All(targets, t => Assert.Contains(t.Pod.Volumes.Single(v => v.Name == "engine-tls").Secret.SecretName, secrets));
    }

    private static V1VolumeMount HostPathMount(V1PodSpec pod, V1Container container, string hostPath)
    {
        var volume = pod.Volumes.SingleOrDefault(v => v.HostPath?.Path == hostPath)
            ?? throw new Xunit.Sdk.XunitException($"no hostPath volume for {hostPath}; have {string.Join(", ", pod.Volumes.Where(v => v.HostPath is not null).Select(v => v.HostPath.Path))}");
        return container.VolumeMounts.SingleOrDefault(m => m.Name == volume.Name)
            ?? throw new Xunit.Sdk.XunitException($"{container.Name} does not mount {volume.Name} ({hostPath})");
    }

    private static double Seconds(string duration)
    {
        var match = DurationPattern().Match(duration);
        Assert.True(match.Success, $"'{duration}' is not a duration");
        var value = double.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        return match.Groups[2].Value switch { "ms" => value / 1000, "s" => value, "m" => value * 60, _ => value * 3600 };
    }

    [GeneratedRegex("^([0-9.]+)(ms|s|m|h)$")]
    private static partial Regex DurationPattern();
}
