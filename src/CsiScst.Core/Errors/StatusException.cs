using Grpc.Core;

namespace CsiScst.Core.Errors;

/// <summary>
/// A failure that already knows its gRPC status code (the one the CSI spec names for it).
/// Thrown anywhere below the gRPC services; the error interceptor turns it into an RpcException.
/// The message must say what was wrong and with which value, and must never contain a secret.
/// </summary>
public sealed class StatusException : Exception
{
    public StatusException(StatusCode code, string message, Exception? inner = null)
        : base(message, inner)
    {
        Code = code;
    }

    public StatusCode Code { get; }

    public static StatusException InvalidArgument(string message) => new(StatusCode.InvalidArgument, message);
    public static StatusException NotFound(string message) => new(StatusCode.NotFound, message);
    public static StatusException AlreadyExists(string message) => new(StatusCode.AlreadyExists, message);
    public static StatusException FailedPrecondition(string message) => new(StatusCode.FailedPrecondition, message);
    public static StatusException ResourceExhausted(string message) => new(StatusCode.ResourceExhausted, message);
    public static StatusException OutOfRange(string message) => new(StatusCode.OutOfRange, message);
    public static StatusException Aborted(string message) => new(StatusCode.Aborted, message);
    public static StatusException Unavailable(string message, Exception? inner = null) => new(StatusCode.Unavailable, message, inner);
    public static StatusException Internal(string message, Exception? inner = null) => new(StatusCode.Internal, message, inner);
    public static StatusException Unimplemented(string message) => new(StatusCode.Unimplemented, message);
}
