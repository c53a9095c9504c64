using System.Text;

namespace CsiScst.Initiator.Devices;

/// <summary>SCSI Vital Product Data pages as the kernel exposes them (sysfs <c>vpd_pg80</c>, <c>vpd_pg83</c>).</summary>
public static class Vpd
{
    public const byte UnitSerialNumberPage = 0x80;

    /// <summary>
    /// The Unit Serial Number page (SPC: byte 1 = 0x80, bytes 2-3 = length, then ASCII). Targets pad
    /// the serial with spaces (or NULs); both are trimmed. Null when the bytes are not that page.
    /// </summary>
    public static string? ParseUnitSerial(ReadOnlySpan<byte> page)
    {
        if (page.Length < 4 || page[1] != UnitSerialNumberPage)
        {
            return null;
        }
        var length = (page[2] << 8) | page[3];
        var body = page[4..];
        if (length < body.Length)
        {
            body = body[..length];
        }
        return Encoding.ASCII.GetString(body).Trim(' ', '\0', '\n', '\t');
    }
}
