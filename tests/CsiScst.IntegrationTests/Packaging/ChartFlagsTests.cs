extern alias k8sfull;

using System.Text.RegularExpressions;
using CsiScst.IntegrationTests.Infrastructure;
using k8sfull::k8s.Models;

namespace CsiScst.IntegrationTests.Packaging;

/// <summary>Every flag the chart passes to csi-scst is one the real binary accepts (its --help for that role).</summary>
[Collection(PackagingCollection.Name)]
public sealed partial class ChartFlagsTests(PackagingFixture fixture)
{
    public static TheoryData<string> ValuesSets() => PackagingFixture.ValuesSets();

    [Theory]
    [MemberData(nameof(ValuesSets))]
    public async Task Every_flag_the_chart_passes_is_accepted_by_the_binary(string valuesFile)
    {
        var chart = await fixture.RenderAsync(valuesFile);
        var containers = chart.LoadTyped().SelectMany(o => o switch
        {
            V1Deployment d => d.Spec.Template.Spec.Containers,
            V1DaemonSet ds => ds.Spec.Template.Spec.Containers,
            _ => [],
        }).Where(c => c.Name == "csi-scst").ToList();
        Assert.Equal(3, containers.Select(c => c.Args[0]).Distinct().Count());
        var help = new Dictionary<string, HashSet<string>>();
        foreach (var container in containers)
        {
            var role = container.Args[0];
            Assert.Contains(role, new[] { "controller", "node", "target" });
            if (!help.TryGetValue(role, out var accepted))
            {
                accepted = await AcceptedFlagsAsync(role);
                help[role] = accepted;
            }
            foreach (var argument in container.Args.Skip(1))
            {
                Assert.StartsWith("--", argument);
                var flag = argument.Split('=')[0];
                Assert.True(accepted.Contains(flag), $"csi-scst {role} does not accept {flag} (chart passes '{argument}'); it accepts {string.Join(' ', accepted.Order())}");
            }
        }
    }

    [Fact]
    public async Task Help_parsing_sees_the_flags_it_must()
    {
        // Guards the parser above: a broken regex would make every check pass on an empty set.
        var target = await AcceptedFlagsAsync("target");
        Assert.Contains("--tls-ca", target);
        Assert.Contains("--pool", target);
        Assert.DoesNotContain("--host-root", target);
    }

    private static async Task<HashSet<string>> AcceptedFlagsAsync(string role)
    {
        var result = await Tool.RunAsync(DriverBinary.Path, [role, "--help"]);
        result.EnsureSuccess();
        var flags = OptionPattern().Matches(result.StandardOutput).Select(m => m.Groups[1].Value).ToHashSet(StringComparer.Ordinal);
        Assert.NotEmpty(flags);
        return flags;
    }

    [GeneratedRegex(@"^\s+(?:-\S+, )*(--[a-z0-9][a-z0-9-]*)", RegexOptions.Multiline)]
    private static partial Regex OptionPattern();
}
