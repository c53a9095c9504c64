using System.Collections.Concurrent;

namespace CsiScst.Engine.Volumes;

/// <summary>
/// What reconcile last saw wrong with each volume (export missing or divergent, backing device not
/// attachable). GetVolume and ListVolumes report it as the volume condition without touching the target.
/// </summary>
public sealed class VolumeHealth
{
    private readonly ConcurrentDictionary<string, string> _problems = new(StringComparer.Ordinal);

    public string? Problem(string key) => _problems.GetValueOrDefault(key);

    public void SetProblem(string key, string message) => _problems[key] = message;

    public void Clear(string key) => _problems.TryRemove(key, out _);

    /// <summary>Replaces everything with the findings of one reconcile pass.</summary>
    public void Replace(IReadOnlyDictionary<string, string> problems)
    {
        foreach (var key in _problems.Keys)
        {
            if (!problems.ContainsKey(key))
            {
                _problems.TryRemove(key, out _);
            }
        }
        foreach (var (key, message) in problems)
        {
            _problems[key] = message;
        }
    }
}
