namespace Broker.Transport;

/// <summary>Why a socket connection ended; exactly one is recorded per connection.</summary>
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

    /// <summary>Another socket error; see <see cref="TransportEnd.SocketError"/>.</summary>
    SocketError,

    /// <summary>The broker called <see cref="SocketConnection.Abort"/>: closed at once, pending output dropped.</summary>
    Aborted,

    /// <summary>The broker closed gracefully (CloseAsync, or it completed the output).</summary>
    LocalClosed,

    /// <summary>An unexpected non-socket exception in a transport loop (a bug); it was logged.</summary>
    Faulted,
}
