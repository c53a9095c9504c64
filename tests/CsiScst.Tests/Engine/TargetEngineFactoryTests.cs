using CsiScst.Core;
using CsiScst.Core.Exec;
using CsiScst.Core.Health;
using CsiScst.Core.Metrics;
using CsiScst.Targets;
using Microsoft.Extensions.DependencyInjection;

namespace CsiScst.Tests.Engine;

/// <summary>The switch where engines plug in: each kind resolves to its engine with a readiness check.</summary>
public sealed class TargetEngineFactoryTests
{
    [Theory]
    [InlineData("tgt")]
    [InlineData("scst")]
    [InlineData("lio")]
    public void Every_engine_kind_registers_its_engine_and_a_readiness_check(string kind)
    {
        Assert.Null(TargetEngineFactory.Unavailable(kind));
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddSingleton(new DriverOptions { InstanceId = "unit" });
        services.AddSingleton<DriverMetrics>();
        services.AddSingleton<ExternalTime>();
        services.AddSingleton<IToolRunner, ToolRunner>();
        services.AddTargetEngine(new TargetEngineSelection { Kind = kind, Portals = ["10.0.0.5:3260"] });
        using var provider = services.BuildServiceProvider();

        Assert.Equal(kind, provider.GetRequiredService<ITargetEngine>().Kind);
        Assert.Single(provider.GetServices<IReadinessCheck>());
    }

    [Fact]
    public void An_unknown_engine_is_refused_with_the_known_ones_named()
    {
        var reason = TargetEngineFactory.Unavailable("iet");
        Assert.NotNull(reason);
        Assert.Contains("scst, lio, tgt", reason);
        Assert.Throws<InvalidOperationException>(() => new ServiceCollection().AddTargetEngine(new TargetEngineSelection { Kind = "iet" }));
    }
}
