using CsiScst.Core.Errors;
using Grpc.Core;

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
        ScstErrno.EPERM => StatusException.Unavailable($"{IscsiScstdDown}: '{command.Display}' on {path} failed"),
        ScstErrno.ENOENT => StatusException.FailedPrecondition(
            $"SCST answered ENOENT to '{command.Display}' on {path}: the file or an object it names does not exist"),
        ScstErrno.EBUSY => StatusException.Unavailable(
            $"SCST answered EBUSY to '{command.Display}' on {path}: the object is still in use (sessions attached); retry later"),
        ScstErrno.EBADSLT => StatusException.FailedPrecondition(
            $"SCST answered EBADSLT to '{command.Display}' on {path}: the target's rel_tgt_id is already used by another target"),
        ScstErrno.EMEDIUMTYPE => StatusException.FailedPrecondition(
            $"SCST answered EMEDIUMTYPE to '{command.Display}' on {path}: the device's backing storage is not open (active=0)"),
        ScstErrno.EEXIST => StatusException.AlreadyExists(
            $"SCST answered EEXIST to '{command.Display}' on {path}: the object already exists with other settings"),
        ScstErrno.EINVAL => StatusException.Internal(
            $"SCST rejected '{command.Display}' written to {path} with EINVAL; the kernel log (dmesg) says why"),
        ScstErrno.ENOMEM or ScstErrno.ENOSPC => StatusException.ResourceExhausted(
            $"SCST answered {ScstErrno.Name(errno)} to '{command.Display}' on {path}"),
        _ => StatusException.Internal($"writing '{command.Display}' to {path} failed with {ScstErrno.Name(errno)}"),
    };

    public static StatusException Invalid(string message) => new(StatusCode.InvalidArgument, message);
}
