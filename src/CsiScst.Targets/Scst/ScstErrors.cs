using CsiScst.Core.Errors;
using Grpc.Core;
using CsiScst.Targets.Native;

namespace CsiScst.Targets.Scst;

/// <summary>
/// Turns SCST's errno answers into StatusExceptions that say what was written where and what to do about it.
/// The only detail SCST returns is the errno (the text goes to the kernel log), so the message names the
/// command; secrets never appear because commands carry a redacted display form.
/// </summary>
internal static class ScstErrors
{
    public const string IscsiScstdDown = "iscsi-scstd is not running (SCST answers EPERM to every iSCSI command until it is started)";

    public static StatusException ForWrite(int errno, string path, ScstCommand command) => errno switch
    {
        Errno.EPERM => StatusException.Unavailable($"{IscsiScstdDown}: '{command.Display}' on {path} failed"),
        Errno.ENOENT => StatusException.FailedPrecondition(
            $"SCST answered ENOENT to '{command.Display}' on {path}: the file or an object it names does not exist"),
        Errno.EBUSY => StatusException.Unavailable(
            $"SCST answered EBUSY to '{command.Display}' on {path}: the object is still in use (sessions attached); retry later"),
        Errno.EBADSLT => StatusException.FailedPrecondition(
            $"SCST answered EBADSLT to '{command.Display}' on {path}: the target's rel_tgt_id is already used by another target"),
        Errno.EMEDIUMTYPE => StatusException.FailedPrecondition(
            $"SCST answered EMEDIUMTYPE to '{command.Display}' on {path}: the device's backing storage is not open (active=0)"),
        Errno.EEXIST => StatusException.AlreadyExists(
            $"SCST answered EEXIST to '{command.Display}' on {path}: the object already exists with other settings"),
        Errno.EINVAL => StatusException.Internal(
            $"SCST rejected '{command.Display}' written to {path} with EINVAL; the kernel log (dmesg) says why"),
        Errno.ENOMEM or Errno.ENOSPC => StatusException.ResourceExhausted(
            $"SCST answered {Errno.Name(errno)} to '{command.Display}' on {path}"),
        _ => StatusException.Internal($"writing '{command.Display}' to {path} failed with {Errno.Name(errno)}"),
    };

    public static StatusException Invalid(string message) => new(StatusCode.InvalidArgument, message);
}
