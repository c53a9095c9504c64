using System.Diagnostics.CodeAnalysis;
using System.Globalization;

namespace CsiScst.Initiator.Devices;

/// <summary>A block device's major:minor, as sysfs <c>dev</c> files and mountinfo print it.</summary>
public readonly record struct DeviceNumber(uint Major, uint Minor)
{
    public override string ToString() => $"{Major}:{Minor}";

    public static bool TryParse(string? text, [NotNullWhen(true)] out DeviceNumber? number)
    {
        number = null;
        var parts = text?.Trim().Split(':');
        if (parts is not { Length: 2 }
            || !uint.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var major)
            || !uint.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var minor))
        {
            return false;
        }
        number = new DeviceNumber(major, minor);
        return true;
    }
}
