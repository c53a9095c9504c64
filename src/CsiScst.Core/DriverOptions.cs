using CsiScst.Core.Ids;

namespace CsiScst.Core;

/// <summary>What identifies this driver installation; shared by every role in the process.</summary>
public sealed class DriverOptions
{
    public const string DefaultDriverName = "csi-scst.io";

    public string DriverName { get; set; } = DefaultDriverName;

    /// <summary>This machine's name (Kubernetes node name); the host name by default.</summary>
    public string NodeName { get; set; } = Environment.MachineName;

    /// <summary>1-8 characters [a-z0-9] carried by every object name (docs/design.md).</summary>
    public string InstanceId { get; set; } = ObjectNames.DefaultInstanceId;

    public string IqnPrefix { get; set; } = ObjectNames.DefaultIqnPrefix;

    /// <summary>Optional zone; when set, topology is reported with this segment.</summary>
    public string? Zone { get; set; }

    public const string ZoneTopologyKey = "topology.csi-scst.io/zone";

    public static string Version { get; } =
        typeof(DriverOptions).Assembly.GetCustomAttributes(typeof(System.Reflection.AssemblyInformationalVersionAttribute), false)
            .OfType<System.Reflection.AssemblyInformationalVersionAttribute>().FirstOrDefault()?.InformationalVersion.Split('+')[0]
        ?? "0.0.0";
}
