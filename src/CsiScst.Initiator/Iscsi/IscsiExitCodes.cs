using Grpc.Core;

namespace CsiScst.Initiator.Iscsi;

/// <summary>iscsiadm's exit codes (open-iscsi <c>include/iscsi_err.h</c>, docs interfaces.md D).</summary>
public static class IscsiExitCodes
{
    public const int Generic = 1;
    public const int SessionNotFound = 2;
    public const int Transport = 4;
    public const int Login = 5;
    public const int Database = 6;
    public const int InvalidArgument = 7;
    public const int ConnectTimeout = 8;
    public const int Internal = 9;
    public const int Logout = 10;
    public const int PduTimeout = 11;
    public const int TransportModuleMissing = 12;
    public const int AccessDenied = 13;
    public const int SessionExists = 15;
    public const int FatalLogin = 19;
    public const int NoIscsid = 20;
    public const int NoObjectsFound = 21;
    public const int SysfsLookup = 22;
    public const int LoginAuthFailed = 24;
    public const int Busy = 28;
    public const int TryAgain = 29;
    public const int SessionNotConnected = 32;
    public const int RequestTimeout = 33;

    /// <summary>The CSI status of a failed login, and a hint for the operator.</summary>
    public static (StatusCode Code, string Hint) ForLogin(int? exitCode) => exitCode switch
    {
        LoginAuthFailed => (StatusCode.PermissionDenied,
            "the target refused the login (authorization failure): the CHAP credentials in the node-stage secret are wrong, or this initiator is not allowed (ControllerPublishVolume not done for this node?)"),
        FatalLogin => (StatusCode.FailedPrecondition,
            "the target refused the login (fatal login error, e.g. target not found or initiator not allowed)"),
        AccessDenied => (StatusCode.PermissionDenied, "access denied"),
        ConnectTimeout or Transport or PduTimeout or RequestTimeout or TryAgain or SessionNotConnected or Login => (StatusCode.Unavailable,
            "the portal could not be reached or did not answer"),
        TransportModuleMissing => (StatusCode.FailedPrecondition, "the iscsi_tcp kernel module is not loaded on this node"),
        NoIscsid or 18 => (StatusCode.FailedPrecondition, "iscsid is not running on this node (or cannot be reached)"),
        Busy => (StatusCode.Unavailable, "iscsid is busy"),
        _ => (StatusCode.Internal, "iscsiadm failed"),
    };
}
