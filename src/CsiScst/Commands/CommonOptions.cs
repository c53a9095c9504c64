using System.CommandLine;
using CsiScst.Core;
using CsiScst.Core.Grpc;
using CsiScst.Core.Ids;
using CsiScst.Hosting;
using Microsoft.Extensions.Logging;

namespace CsiScst.Commands;

/// <summary>What every serving role accepts.</summary>
internal sealed record CommonSettings(
    EndpointAddress Endpoint,
    DriverOptions Driver,
    LogFormat LogFormat,
    LogLevel LogLevel,
    EndpointAddress? Metrics,
    TimeSpan ShutdownTimeout);

/// <summary>The flags shared by controller, node, target and standalone.</summary>
internal sealed class CommonOptions
{
    public CommonOptions(string defaultEndpoint)
    {
        Endpoint = new Option<string>("--endpoint")
        {
            Description = "Where to serve: unix:///abs/path.sock (CSI roles) or tcp://ip:port. Also read from CSI_ENDPOINT.",
            DefaultValueFactory = _ => Environment.GetEnvironmentVariable("CSI_ENDPOINT") is { Length: > 0 } env ? env : defaultEndpoint,
        };
        Endpoint.Validators.Add(r =>
        {
            if (!Core.Grpc.EndpointAddress.TryParse(r.GetValueOrDefault<string>(), out _, out var error))
            {
                r.AddError(error);
            }
        });
        DriverName = new Option<string>("--driver-name")
        {
            Description = "CSI driver name (DNS-style, at most 63 characters).",
            DefaultValueFactory = _ => DriverOptions.DefaultDriverName,
        };
        DriverName.Validators.Add(r =>
        {
            var value = r.GetValueOrDefault<string>();
            if (!Names.IsValidDriverName(value))
            {
                r.AddError($"--driver-name '{value}' must be at most 63 characters of [a-zA-Z0-9.-], starting and ending with a letter or digit");
            }
        });
        NodeId = new Option<string>("--node-id")
        {
            Description = "This machine's name (the Kubernetes node name). Default: the host name.",
            DefaultValueFactory = _ => Environment.GetEnvironmentVariable("NODE_NAME") is { Length: > 0 } env ? env : Environment.MachineName,
        };
        NodeId.Validators.Add(r =>
        {
            var value = r.GetValueOrDefault<string>();
            if (!Names.IsValidNodeName(value))
            {
                r.AddError($"--node-id '{value}' must be a DNS name (letters, digits, '-', '.', '_'), without '/' or ':'");
            }
        });
        InstanceId = new Option<string>("--instance-id")
        {
            Description = "Short id (1-8 of [a-z0-9]) carried by every object this installation creates, so installations sharing storage never touch each other's objects.",
            DefaultValueFactory = _ => ObjectNames.DefaultInstanceId,
        };
        InstanceId.Validators.Add(r =>
        {
            var value = r.GetValueOrDefault<string>();
            if (!Names.IsValidInstanceId(value))
            {
                r.AddError($"--instance-id '{value}' must be 1 to 8 characters of [a-z0-9]");
            }
        });
        IqnPrefix = new Option<string>("--iqn-prefix")
        {
            Description = "Prefix of every target IQN (iqn.yyyy-mm.reverse.domain).",
            DefaultValueFactory = _ => ObjectNames.DefaultIqnPrefix,
        };
        Zone = new Option<string?>("--zone")
        {
            Description = "Optional zone of this machine; when set, topology segment topology.csi-scst.io/zone is reported and honoured.",
        };
        LogFormat = new Option<LogFormat>("--log-format")
        {
            Description = "Log format: text (one line per event) or json (structured, for clusters).",
            DefaultValueFactory = _ => Hosting.LogFormat.Text,
        };
        LogLevel = new Option<LogLevel>("--log-level")
        {
            Description = "Minimum log level: Trace, Debug, Information, Warning, Error.",
            DefaultValueFactory = _ => Microsoft.Extensions.Logging.LogLevel.Information,
        };
        MetricsAddress = new Option<string?>("--metrics-address")
        {
            Description = "ip:port serving /metrics, /healthz and /readyz over plain HTTP (off when empty).",
        };
        MetricsAddress.Validators.Add(r =>
        {
            var value = r.GetValueOrDefault<string?>();
            if (!string.IsNullOrEmpty(value) && (!Core.Grpc.EndpointAddress.TryParse(value, out var e, out _) || e.IsUnix))
            {
                r.AddError($"--metrics-address '{value}' must be ip:port");
            }
        });
        ShutdownTimeout = new Option<TimeSpan>("--shutdown-timeout")
        {
            Description = "On SIGTERM, how long in-flight calls may take to finish (hh:mm:ss).",
            DefaultValueFactory = _ => TimeSpan.FromSeconds(30),
        };
    }

    public Option<string> Endpoint { get; }
    public Option<string> DriverName { get; }
    public Option<string> NodeId { get; }
    public Option<string> InstanceId { get; }
    public Option<string> IqnPrefix { get; }
    public Option<string?> Zone { get; }
    public Option<LogFormat> LogFormat { get; }
    public Option<LogLevel> LogLevel { get; }
    public Option<string?> MetricsAddress { get; }
    public Option<TimeSpan> ShutdownTimeout { get; }

    public void AddTo(Command command)
    {
        foreach (var option in new Option[] { Endpoint, DriverName, NodeId, InstanceId, IqnPrefix, Zone, LogFormat, LogLevel, MetricsAddress, ShutdownTimeout })
        {
            command.Options.Add(option);
        }
    }

    public CommonSettings Bind(ParseResult result)
    {
        var metrics = result.GetValue(MetricsAddress);
        return new CommonSettings(
            Core.Grpc.EndpointAddress.Parse(result.GetValue(Endpoint)!),
            new DriverOptions
            {
                DriverName = result.GetValue(DriverName)!,
                NodeName = result.GetValue(NodeId)!,
                InstanceId = result.GetValue(InstanceId)!,
                IqnPrefix = result.GetValue(IqnPrefix)!,
                Zone = result.GetValue(Zone),
            },
            result.GetValue(LogFormat),
            result.GetValue(LogLevel),
            string.IsNullOrEmpty(metrics) ? null : Core.Grpc.EndpointAddress.Parse(metrics),
            result.GetValue(ShutdownTimeout));
    }
}
