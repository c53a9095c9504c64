namespace CsiScst.IntegrationTests.Packaging;

/// <summary>The real helm/kubectl (installed on first use) and the chart rendered with its default values.</summary>
public sealed class PackagingFixture : IAsyncLifetime
{
    private HelmTools? _tools;
    private RenderedChart? _default;

    public HelmTools Tools => _tools ?? throw new InvalidOperationException("not initialized");
    public RenderedChart Default => _default ?? throw new InvalidOperationException("not initialized");

    public async Task InitializeAsync()
    {
        _tools = await HelmTools.EnsureAsync();
        _default = await _tools.RenderAsync();
    }

    public Task DisposeAsync() => Task.CompletedTask;

    /// <summary>Renders with one example values file ("" = the defaults).</summary>
    public Task<RenderedChart> RenderAsync(string valuesFile) =>
        valuesFile.Length == 0 ? Task.FromResult(Default) : Tools.RenderAsync("-f", Path.Combine(RepoPaths.ChartValues, valuesFile));

    /// <summary>"" (the defaults) and every example values file under charts/csi-scst/values.</summary>
    public static TheoryData<string> ValuesSets()
    {
        var data = new TheoryData<string> { "" };
        foreach (var file in Directory.GetFiles(RepoPaths.ChartValues, "*.yaml").Order(StringComparer.Ordinal))
        {
            data.Add(Path.GetFileName(file));
        }
        return data;
    }
}

[CollectionDefinition(Name)]
public sealed class PackagingCollection : ICollectionFixture<PackagingFixture>
{
    public const string Name = "Packaging";
}
