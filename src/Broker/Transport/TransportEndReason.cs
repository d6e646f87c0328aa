using System.Net.Sockets;

namespace Broker.Transport;

/// <summary>Why a transport ended; exactly one is recorded per connection.</summary>
internal enum TransportEndReason
{
    /// <summary>The connection has not ended.</summary>
    None = 0,

    /// <summary>The peer sent FIN (a 0-byte receive).</summary>
    RemoteClosed,

    /// <summary>The peer reset the connection (ECONNRESET, ECONNABORTED, EPIPE).</summary>
    Reset,

    /// <summary>The kernel gave up on the peer (ETIMEDOUT): keep-alive probes or retransmissions unanswered.</summary>
    TimedOut,

    /// <summary>The network says the peer cannot be reached (EHOSTUNREACH, ENETUNREACH).</summary>
    Unreachable,

    /// <summary>Another socket error.</summary>
    SocketError,

    /// <summary>The broker closed the connection at once, pending output dropped.</summary>
    Aborted,

    /// <summary>The broker closed gracefully after its last packet was sent.</summary>
    LocalClosed,
}

internal static class TransportEndReasons
{
    public static TransportEndReason FromSocketError(SocketError error) => error switch
    {
        SocketError.ConnectionReset or SocketError.ConnectionAborted => TransportEndReason.Reset,
        // EPIPE: the peer's side is gone while we were still sending.
        SocketError.Shutdown => TransportEndReason.Reset,
        SocketError.TimedOut => TransportEndReason.TimedOut,
        SocketError.HostUnreachable or SocketError.NetworkUnreachable or SocketError.HostDown or SocketError.NetworkDown => TransportEndReason.Unreachable,
        // Our own close woke the operation.
        SocketError.OperationAborted or SocketError.Interrupted => TransportEndReason.Aborted,
        _ => TransportEndReason.SocketError,
    };
}
