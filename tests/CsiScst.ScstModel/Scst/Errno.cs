namespace CsiScst.ScstModel.Scst;

/// <summary>Linux errno values the model returns (positive; the kernel's own functions return them negated).</summary>
internal static class Errno
{
    public const int EPERM = 1;
    public const int ENOENT = 2;
    public const int EIO = 5;
    public const int EAGAIN = 11;
    public const int ENOMEM = 12;
    public const int EACCES = 13;
    public const int EBUSY = 16;
    public const int EEXIST = 17;
    public const int ENODEV = 19;
    public const int EISDIR = 21;
    public const int EINVAL = 22;
    public const int ERANGE = 34;
    public const int EBADSLT = 57;
    public const int EOVERFLOW = 75;
    public const int EMEDIUMTYPE = 124;
}
