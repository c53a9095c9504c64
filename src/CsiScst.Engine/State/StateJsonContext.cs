using System.Text.Json.Serialization;
using CsiScst.Targets;

namespace CsiScst.Engine.State;

/// <summary>Source-generated JSON for the state files (Native AOT: no reflection).</summary>
[JsonSourceGenerationOptions(
    WriteIndented = true,
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    UseStringEnumConverter = true)]
[JsonSerializable(typeof(VolumeRecord))]
[JsonSerializable(typeof(SnapshotRecord))]
[JsonSerializable(typeof(VolumePhase))]
[JsonSerializable(typeof(SnapshotPhase))]
[JsonSerializable(typeof(WriteCacheMode))]
internal sealed partial class StateJsonContext : JsonSerializerContext
{
}
