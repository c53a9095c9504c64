namespace CsiScst.IntegrationTests.Packaging;

/// <summary>helm lint --strict and helm template with every values set; wrong values refused by values.schema.json.</summary>
[Collection(PackagingCollection.Name)]
public sealed class ChartLintAndSchemaTests(PackagingFixture fixture)
{
    public static TheoryData<string> ValuesSets() => PackagingFixture.ValuesSets();

    [Theory]
    [MemberData(nameof(ValuesSets))]
    public async Task Lint_strict_passes(string valuesFile)
    {
        string[] args = valuesFile.Length == 0
            ? ["lint", "--strict", RepoPaths.Chart]
            : ["lint", "--strict", RepoPaths.Chart, "-f", Path.Combine(RepoPaths.ChartValues, valuesFile)];
        var lint = await fixture.Tools.HelmAsync(args);
        Assert.True(lint.ExitCode == 0, lint.Describe());
        Assert.Contains("0 chart(s) failed", lint.StandardOutput);
        Assert.DoesNotContain("[WARNING]", lint.StandardOutput);
        Assert.DoesNotContain("[ERROR]", lint.StandardOutput);
    }

    [Theory]
    [MemberData(nameof(ValuesSets))]
    public async Task Template_renders_the_three_roles(string valuesFile)
    {
        var chart = await fixture.RenderAsync(valuesFile);
        Assert.Single(chart.OfKind("Deployment"));
        Assert.Single(chart.OfKind("CSIDriver"));
        Assert.Contains(chart.OfKind("DaemonSet"), d => d.Name.Contains("-node", StringComparison.Ordinal));
        Assert.Contains(chart.OfKind("DaemonSet"), d => d.Name.Contains("-target", StringComparison.Ordinal));
        Assert.NotEmpty(chart.OfKind("StorageClass"));
    }

    [Theory]
    [MemberData(nameof(ValuesSets))]
    public async Task Notes_tell_what_to_check_next(string valuesFile)
    {
        // A client-side dry run renders NOTES.txt without a cluster.
        string[] values = valuesFile.Length == 0 ? [] : ["-f", Path.Combine(RepoPaths.ChartValues, valuesFile)];
        var install = await fixture.Tools.HelmAsync(["install", HelmTools.Release, RepoPaths.Chart, "--namespace", HelmTools.Namespace, "--dry-run=client", .. values]);
        Assert.True(install.ExitCode == 0, install.Describe());
        var notes = install.StandardOutput[install.StandardOutput.IndexOf("NOTES:", StringComparison.Ordinal)..];
        Assert.Contains("iscsid", notes);
        Assert.Contains("pod-security.kubernetes.io/enforce=privileged", notes);
        Assert.Contains("kubectl label node <storage-node> csi-scst.io/storage=true", notes);
        Assert.Contains("docs/troubleshooting.md", notes);
        Assert.Equal(valuesFile == "lvm.yaml", notes.Contains("LVM device filter", StringComparison.Ordinal));
        Assert.DoesNotContain("<no value>", notes);
    }

    [Fact]
    public async Task Two_example_files_combine()
    {
        var chart = await fixture.Tools.RenderAsync("-f", Path.Combine(RepoPaths.ChartValues, "lvm.yaml"), "-f", Path.Combine(RepoPaths.ChartValues, "topology.yaml"));
        Assert.Equal(4, chart.OfKind("DaemonSet").Count());
    }

    public static TheoryData<string[], string> WrongValues() => new()
    {
        { ["--set", "target.engine=iet"], "at '/target/engine': value must be one of 'scst', 'lio', 'tgt'" },
        { ["--set", "instanceId=Prod_1"], "at '/instanceId'" },
        { ["--set", "controller.replicaz=2"], "additional properties 'replicaz' not allowed" },
        { ["--set", "target.pools[0].name=vg0", "--set", "target.pools[0].backend=lvm"], "missing property 'vg'" },
        { ["--set", "target.pools[0].name=Files", "--set", "target.pools[0].backend=file", "--set", "target.pools[0].path=/srv"], "at '/target/pools/0/name'" },
        { ["--set", "target.pools[0].name=f", "--set", "target.pools[0].backend=file", "--set", "target.pools[0].path=srv"], "at '/target/pools/0/path'" },
        { ["--set", "target.pools[0].name=c", "--set", "target.pools[0].backend=rbd", "--set", "target.pools[0].pool=p", "--set", "target.pools[0].flatten=sometimes"], "at '/target/pools/0/flatten'" },
        { ["--set", "storageClasses[0].name=sc", "--set", "storageClasses[0].chap=static"], "missing property 'secretName'" },
        { ["--set", "storageClasses[0].name=sc", "--set", "storageClasses[0].chap=mutual"], "at '/storageClasses/0/chap'" },
        { ["--set", "storageClasses[0].name=sc", "--set", "storageClasses[0].parameters.blocksize=4096"], "invalid propertyName 'blocksize'" },
        { ["--set", "sidecars.provisioner.timeout=5 minutes"], "at '/sidecars/provisioner/timeout'" },
        { ["--set", "topology.enabled=true"], "at '/topology/zones'" },
        { ["--set", "target.nodeSelector=null"], "missing property 'nodeSelector'" },
        { ["--set", "target.portals[0]=10.0.0.5"], "at '/target/portals/0'" },
        { ["--set", "node.iscsi.loginTimeout=0"], "at '/node/iscsi/loginTimeout'" },
        { ["--set", "controller.discoveryCache=30s"], "at '/controller/discoveryCache'" },
        { ["--set", "tls.existingSecrets.controller=mine"], "tls.existingSecrets: give both controller and target" },
    };

    [Theory]
    [MemberData(nameof(WrongValues))]
    public async Task Wrong_values_are_refused_with_a_clear_message(string[] set, string expected)
    {
        var result = await fixture.Tools.HelmAsync(["template", HelmTools.Release, RepoPaths.Chart, .. set]);
        Assert.True(result.ExitCode != 0, $"helm accepted {string.Join(' ', set)}:\n{result.StandardOutput[..Math.Min(500, result.StandardOutput.Length)]}");
        Assert.Contains(expected, result.StandardError);
    }
}
