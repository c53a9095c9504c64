extern alias k8sfull;

using System.Text.RegularExpressions;
using CsiScst.IntegrationTests.Infrastructure;
using k8sfull::k8s.Models;

namespace CsiScst.IntegrationTests.Packaging;

/// <summary>
/// The Dockerfile, as far as this machine can take it without a container engine: two linters from npm,
/// its structure (what reaches the final image), its final package list resolved by apt against Debian
/// bookworm from an empty system, and its own restore + Native AOT publish commands run on a copy of the
/// build context, the result started.
/// </summary>
[Collection(PackagingCollection.Name)]
public sealed partial class DockerfileTests(PackagingFixture fixture)
{
    private static string DockerfilePath => RepoPaths.Combine("Dockerfile");

    private sealed record Stage(string From, string? Name, List<string> Instructions);

    private static List<Stage> Stages()
    {
        var stages = new List<Stage>();
        var logical = Regex.Replace(File.ReadAllText(DockerfilePath), @"\\\n", " ");
        foreach (var raw in logical.Split('\n'))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#'))
            {
                continue;
            }
            var from = FromPattern().Match(line);
            if (from.Success)
            {
                stages.Add(new Stage(from.Groups[1].Value, from.Groups[2].Success ? from.Groups[2].Value : null, []));
                continue;
            }
            if (stages.Count > 0)
            {
                stages[^1].Instructions.Add(Regex.Replace(line, @"\s+", " "));
            }
        }
        return stages;
    }

    private static Stage Final => Stages()[^1];

    private static IReadOnlyList<string> AptPackages(Stage stage) =>
        stage.Instructions.Where(i => i.StartsWith("RUN ", StringComparison.Ordinal) && i.Contains("apt-get install", StringComparison.Ordinal))
            .SelectMany(i => AptInstallPattern().Match(i).Groups[1].Value.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Where(p => !p.StartsWith('-'))
            .ToList();

    [Fact]
    public async Task Linters_find_nothing()
    {
        var dockerfilelint = await Tool.RunAsync(Path.Combine(fixture.Tools.Bin, "dockerfilelint"), [DockerfilePath]);
        Assert.True(dockerfilelint.ExitCode == 0, dockerfilelint.Describe());
        Assert.Contains("Issues: None found", dockerfilelint.StandardOutput);
        var utils = await Tool.RunAsync(Path.Combine(fixture.Tools.Bin, "dockerfile-utils"), ["lint", DockerfilePath]);
        Assert.True(utils.ExitCode == 0 && utils.StandardOutput.Trim().Length == 0, utils.Describe());
    }

    [Fact]
    public async Task Linters_do_flag_a_broken_dockerfile()
    {
        // Guards the test above: both linters really read the file they are given.
        using var dir = new TempDirectory("csi-scst-dockerfile");
        var bad = dir.Combine("Dockerfile");
        await File.WriteAllTextAsync(bad, "FROM debian\nEXPOSE 80000/xyz\nentrypoint /bin/sh\nMAINTAINER someone\n");
        var dockerfilelint = await Tool.RunAsync(Path.Combine(fixture.Tools.Bin, "dockerfilelint"), [bad]);
        Assert.NotEqual(0, dockerfilelint.ExitCode);
        var utils = await Tool.RunAsync(Path.Combine(fixture.Tools.Bin, "dockerfile-utils"), ["lint", bad]);
        Assert.NotEqual(0, utils.ExitCode);
        Assert.Contains("Invalid proto", utils.StandardOutput);
    }

    [Fact]
    public void Final_image_holds_the_node_and_engine_tools_and_no_build_tools()
    {
        var stages = Stages();
        Assert.True(stages.Count >= 2, "multi-stage");
        Assert.Equal("debian:bookworm-slim", Final.From);
        var packages = AptPackages(Final);
        foreach (var wanted in new[] { "open-iscsi", "lvm2", "thin-provisioning-tools", "e2fsprogs", "xfsprogs", "util-linux", "multipath-tools", "ceph-common", "tgt", "kmod", "sg3-utils" })
        {
            Assert.Contains(wanted, packages);
        }
        foreach (var unwanted in new[] { "clang", "gcc", "build-essential", "zlib1g-dev", "dotnet-sdk-10.0", "libc6-dev" })
        {
            Assert.DoesNotContain(unwanted, packages);
        }
        // From the build stage only the binary arrives.
        var copies = Final.Instructions.Where(i => i.StartsWith("COPY", StringComparison.Ordinal)).ToList();
        Assert.Equal(["COPY --from=build /out/csi-scst /usr/local/bin/csi-scst"], copies);
        Assert.Contains("ENTRYPOINT [\"/usr/local/bin/csi-scst\"]", Final.Instructions);
        Assert.Contains(Final.Instructions, i => i.StartsWith("LABEL org.opencontainers.image.title=", StringComparison.Ordinal));
        // The build stage has the AOT toolchain.
        var build = stages.Single(s => s.Name == "build");
        Assert.Equal("debian:bookworm-slim", build.From);
        Assert.Contains("clang", AptPackages(build));
        Assert.Contains("zlib1g-dev", AptPackages(build));
    }

    [Fact]
    public void Image_user_is_the_non_root_user_the_controller_runs_as()
    {
        var user = Final.Instructions.Last(i => i.StartsWith("USER ", StringComparison.Ordinal))["USER ".Length..].Split(':')[0];
        var uid = long.Parse(user, System.Globalization.CultureInfo.InvariantCulture);
        Assert.NotEqual(0, uid);
        var pod = fixture.Default.Typed<V1Deployment>("Deployment", $"{HelmTools.Release}-controller").Spec.Template.Spec;
        Assert.Equal(uid, pod.SecurityContext.RunAsUser);
        Assert.Contains(Final.Instructions, i => i.Contains($"useradd --system --uid {uid}", StringComparison.Ordinal));
        // The privileged roles say root explicitly, since the image's default user is not.
        foreach (var ds in fixture.Default.LoadTyped().OfType<V1DaemonSet>())
        {
            Assert.Equal(0, ds.Spec.Template.Spec.Containers.Single(c => c.Name == "csi-scst").SecurityContext.RunAsUser);
        }
    }

    [Fact]
    public async Task Final_package_list_resolves_on_an_empty_bookworm_system()
    {
        var packages = AptPackages(Final);
        Assert.NotEmpty(packages);
        if ((await Tool.RunAsync("apt-cache", ["policy", "tgt"])).StandardOutput.Contains("Candidate: (none)", StringComparison.Ordinal)
            || !(await Tool.RunAsync("apt-cache", ["show", "tgt"])).StandardOutput.Contains("Package: tgt", StringComparison.Ordinal))
        {
            (await Tool.RunAsync("apt-get", ["update", "-qq"], TimeSpan.FromMinutes(5))).EnsureSuccess();
        }
        using var dir = new TempDirectory("csi-scst-apt");
        var status = dir.Combine("status");
        await File.WriteAllTextAsync(status, "");
        // Simulated install against an empty dpkg database: every package and its whole dependency
        // closure must exist in bookworm and be installable together.
        var simulate = await Tool.RunAsync("apt-get",
            ["-s", "-o", $"Dir::State::status={status}", "install", "--no-install-recommends", .. packages], TimeSpan.FromMinutes(3));
        Assert.True(simulate.ExitCode == 0, simulate.Describe());
        foreach (var package in packages)
        {
            Assert.Matches($"(?m)^Inst {Regex.Escape(package)} ", simulate.StandardOutput);
        }
    }

    [Fact]
    public async Task Its_restore_and_native_aot_publish_build_a_binary_that_runs()
    {
        var build = Stages().Single(s => s.Name == "build");
        var commands = build.Instructions.Where(i => i.StartsWith("RUN dotnet ", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, commands.Count);
        Assert.Contains("dotnet publish src/CsiScst -c Release -r linux-x64 -p:PublishAot=true", commands[1]);
        // The build context as the Dockerfile's COPY lines make it: the props files, proto/ and src/ without build output.
        using var context = new TempDirectory("csi-scst-docker-context");
        foreach (var file in new[] { "Directory.Build.props", "Directory.Packages.props" })
        {
            File.Copy(RepoPaths.Combine(file), context.Combine(file));
        }
        CopyTree(RepoPaths.Combine("proto"), context.Combine("proto"));
        CopyTree(RepoPaths.Combine("src"), context.Combine("src"));
        var output = context.Combine("out");
        foreach (var command in commands)
        {
            // "RUN dotnet … -o /out && /out/csi-scst --version": the dotnet part, with /out in the temp context.
            var dotnet = command["RUN ".Length..].Split(" && ")[0].Replace("/out", output, StringComparison.Ordinal);
            var words = dotnet.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            var result = await Tool.RunAsync(words[0], [.. words.Skip(1), "-nologo"], TimeSpan.FromMinutes(25), workingDirectory: context.Path,
                environment: new Dictionary<string, string> { ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1", ["DOTNET_NOLOGO"] = "1" });
            Assert.True(result.ExitCode == 0, $"{dotnet}\n{Tail(result.StandardOutput)}\n{Tail(result.StandardError)}");
        }
        var binary = Path.Combine(output, "csi-scst");
        Assert.True(File.Exists(binary));
        // A single native executable: no managed assemblies next to it.
        Assert.Empty(Directory.GetFiles(output, "*.dll"));
        var version = await Tool.RunAsync(binary, ["--version"]);
        Assert.True(version.ExitCode == 0, version.Describe());
        foreach (var role in new[] { "controller", "node", "target" })
        {
            var help = await Tool.RunAsync(binary, [role, "--help"]);
            Assert.True(help.ExitCode == 0, help.Describe());
        }
    }

    private static string Tail(string text) => string.Join('\n', text.Split('\n').TakeLast(40));

    private static void CopyTree(string from, string to)
    {
        foreach (var dir in Directory.EnumerateDirectories(from, "*", SearchOption.AllDirectories))
        {
            var relative = Path.GetRelativePath(from, dir);
            if (relative.Split(Path.DirectorySeparatorChar).Any(p => p is "bin" or "obj"))
            {
                continue;
            }
            Directory.CreateDirectory(Path.Combine(to, relative));
        }
        Directory.CreateDirectory(to);
        foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
        {
            var relative = Path.GetRelativePath(from, file);
            if (relative.Split(Path.DirectorySeparatorChar).Any(p => p is "bin" or "obj"))
            {
                continue;
            }
            File.Copy(file, Path.Combine(to, relative));
        }
    }

    [GeneratedRegex(@"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?$", RegexOptions.IgnoreCase)]
    private static partial Regex FromPattern();

    [GeneratedRegex(@"apt-get install -y --no-install-recommends ((?:[a-z0-9][a-z0-9.+-]*\s?)+)")]
    private static partial Regex AptInstallPattern();
}
