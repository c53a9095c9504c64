using CsiScst.Core.Errors;
using CsiScst.Core.Ids;

namespace CsiScst.Backends;

internal static class BackendKeys
{
    /// <summary>Keys become parts of file, LV and image names: anything but 16 lowercase hex digits is refused.</summary>
    public static void Require(string key, string what)
    {
        if (!Names.IsValidKey(key))
        {
            throw StatusException.InvalidArgument($"{what} '{key}' is not a {Names.KeyLength}-digit lowercase hex key");
        }
    }
}
