namespace CsiScst.Targets.Scst;

/// <summary>The Linux errno values SCST's sysfs interface reports (asm-generic/errno*.h, x86-64 and arm64 alike).</summary>
internal static class ScstErrno
{
    public const int EPERM = 1;
    public const int ENOENT = 2;
    public const int EINTR = 4;
    public const int EIO = 5;
    public const int EAGAIN = 11;
    public const int ENOMEM = 12;
    public const int EACCES = 13;
    public const int EBUSY = 16;
    public const int EEXIST = 17;
    public const int ENODEV = 19;
    public const int ENOTDIR = 20;
    public const int EINVAL = 22;
    public const int ENOSPC = 28;
    public const int ERANGE = 34;
    public const int EBADSLT = 57;
    public const int ETIMEDOUT = 110;
    public const int EMEDIUMTYPE = 124;

    public static string Name(int errno) => errno switch
    {
        0 => "OK",
        EPERM => "EPERM",
        ENOENT => "ENOENT",
        EINTR => "EINTR",
        EIO => "EIO",
        EAGAIN => "EAGAIN",
        ENOMEM => "ENOMEM",
        EACCES => "EACCES",
        EBUSY => "EBUSY",
        EEXIST => "EEXIST",
        ENODEV => "ENODEV",
        ENOTDIR => "ENOTDIR",
        EINVAL => "EINVAL",
        ENOSPC => "ENOSPC",
        ERANGE => "ERANGE",
        EBADSLT => "EBADSLT",
        ETIMEDOUT => "ETIMEDOUT",
        EMEDIUMTYPE => "EMEDIUMTYPE",
        _ => "errno " + errno,
    };
}
