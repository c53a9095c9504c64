using System.Globalization;
using System.Text;
using CsiScst.Initiator.Devices;

namespace CsiScst.Initiator.Mounts;

/// <summary>One line of /proc/self/mountinfo (proc(5)).</summary>
public sealed record MountEntry(
    int Id,
    int ParentId,
    DeviceNumber Device,
    string Root,
    string MountPoint,
    IReadOnlyList<string> MountOptions,
    string FsType,
    string Source,
    IReadOnlyList<string> SuperOptions)
{
    /// <summary>This mount point is read-only (per-mount flag).</summary>
    public bool IsReadOnly => MountOptions.Contains("ro");

    /// <summary>
    /// The filesystem itself is read-only: mounted so, or switched by the kernel after an error
    /// (ext4 errors=remount-ro shows "ro" on older kernels, "emergency_ro" on newer ones).
    /// </summary>
    public bool IsSuperblockReadOnly => SuperOptions.Contains("ro") || SuperOptions.Contains("emergency_ro");

    public bool HasSuperOption(string option) => SuperOptions.Contains(option);
}

/// <summary>Parser and reader for mountinfo: the only record of what is staged and published.</summary>
public static class MountInfo
{
    public const string SelfPath = "/proc/self/mountinfo";

    public static IReadOnlyList<MountEntry> Parse(string text)
    {
        var entries = new List<MountEntry>();
        foreach (var line in text.Split('\n'))
        {
            if (TryParseLine(line, out var entry))
            {
                entries.Add(entry);
            }
        }
        return entries;
    }

    public static async Task<IReadOnlyList<MountEntry>> ReadAsync(string path, CancellationToken cancellationToken) =>
        Parse(await File.ReadAllTextAsync(path, cancellationToken).ConfigureAwait(false));

    /// <summary>
    /// <c>36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 - ext3 /dev/root rw,errors=continue</c>:
    /// a variable number of optional fields ends at "-".
    /// </summary>
    public static bool TryParseLine(string line, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out MountEntry? entry)
    {
        entry = null;
        var fields = line.Split(' ');
        if (fields.Length < 10)
        {
            return false;
        }
        var separator = Array.IndexOf(fields, "-", 6);
        if (separator < 0 || separator + 2 >= fields.Length)
        {
            return false;
        }
        if (!int.TryParse(fields[0], NumberStyles.None, CultureInfo.InvariantCulture, out var id)
            || !int.TryParse(fields[1], NumberStyles.None, CultureInfo.InvariantCulture, out var parent)
            || !DeviceNumber.TryParse(fields[2], out var device))
        {
            return false;
        }
        entry = new MountEntry(
            id,
            parent,
            device.Value,
            Unescape(fields[3]),
            Unescape(fields[4]),
            fields[5].Split(','),
            Unescape(fields[separator + 1]),
            Unescape(fields[separator + 2]),
            separator + 3 < fields.Length ? fields[separator + 3].Split(',') : []);
        return true;
    }

    /// <summary>The kernel escapes space, tab, newline and backslash as \ooo octal.</summary>
    public static string Unescape(string text)
    {
        if (!text.Contains('\\', StringComparison.Ordinal))
        {
            return text;
        }
        var bytes = new List<byte>(text.Length);
        for (var i = 0; i < text.Length; i++)
        {
            if (text[i] == '\\' && i + 3 < text.Length
                && IsOctal(text[i + 1]) && IsOctal(text[i + 2]) && IsOctal(text[i + 3]))
            {
                bytes.Add((byte)(((text[i + 1] - '0') << 6) | ((text[i + 2] - '0') << 3) | (text[i + 3] - '0')));
                i += 3;
            }
            else
            {
                bytes.AddRange(Encoding.UTF8.GetBytes(text[i].ToString()));
            }
        }
        return Encoding.UTF8.GetString(bytes.ToArray());
    }

    private static bool IsOctal(char c) => c is >= '0' and <= '7';
}
