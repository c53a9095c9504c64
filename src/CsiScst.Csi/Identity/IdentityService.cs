using Csi.V1;
using CsiScst.Core;
using CsiScst.Core.Health;
using Grpc.Core;
using Microsoft.Extensions.Logging;

namespace CsiScst.Csi.Identity;

/// <summary>CSI Identity: who we are, what we support, whether this role's local dependencies answer.</summary>
public sealed class IdentityService : global::Csi.V1.Identity.IdentityBase
{
    private readonly DriverOptions _driver;
    private readonly CsiCapabilities _capabilities;
    private readonly Readiness _readiness;
    private readonly ILogger<IdentityService> _logger;

    public IdentityService(DriverOptions driver, CsiCapabilities capabilities, Readiness readiness, ILogger<IdentityService> logger)
    {
        _driver = driver;
        _capabilities = capabilities;
        _readiness = readiness;
        _logger = logger;
    }

    public override Task<GetPluginInfoResponse> GetPluginInfo(GetPluginInfoRequest request, ServerCallContext context) =>
        Task.FromResult(new GetPluginInfoResponse
        {
            Name = _driver.DriverName,
            VendorVersion = DriverOptions.Version,
        });

    public override Task<GetPluginCapabilitiesResponse> GetPluginCapabilities(GetPluginCapabilitiesRequest request, ServerCallContext context)
    {
        var response = new GetPluginCapabilitiesResponse();
        foreach (var service in _capabilities.PluginServices.Order())
        {
            response.Capabilities.Add(new PluginCapability { Service = new PluginCapability.Types.Service { Type = service } });
        }
        if (_capabilities.VolumeExpansion is { } expansion)
        {
            response.Capabilities.Add(new PluginCapability { VolumeExpansion = new PluginCapability.Types.VolumeExpansion { Type = expansion } });
        }
        return Task.FromResult(response);
    }

    public override async Task<ProbeResponse> Probe(ProbeRequest request, ServerCallContext context)
    {
        var result = await _readiness.CheckAsync(context.CancellationToken).ConfigureAwait(false);
        if (!result.Ready)
        {
            // Ready=false (not an error): the plugin is healthy but a local dependency is not there yet,
            // so the liveness probe does not restart us for something a restart cannot fix.
            _logger.LogWarning("Probe: not ready: {Reason}", result.Reason);
            context.ResponseTrailers.Add("csi-scst-not-ready", Sanitize(result.Reason));
        }
        return new ProbeResponse { Ready = result.Ready };
    }

    private static string Sanitize(string reason) =>
        new(reason.Where(c => c >= ' ' && c < 127).Take(512).ToArray());
}
