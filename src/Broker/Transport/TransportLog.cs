using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;

namespace Broker.Transport;

// Event ids 1000-1099 belong to the transport.
internal static partial class TransportLog
{
    [LoggerMessage(EventId = 1000, Level = LogLevel.Information, Message = "Listening on {EndPoint} (backlog {Backlog})")]
    public static partial void Listening(ILogger logger, EndPoint endPoint, int backlog);

    [LoggerMessage(EventId = 1001, Level = LogLevel.Information, Message = "Stopped listening on {EndPoint}")]
    public static partial void StoppedListening(ILogger logger, EndPoint? endPoint);

    [LoggerMessage(EventId = 1002, Level = LogLevel.Debug, Message = "A connection ended in the accept queue ({SocketError}); accepting the next one")]
    public static partial void AcceptedConnectionGone(ILogger logger, SocketError socketError);

    [LoggerMessage(EventId = 1003, Level = LogLevel.Warning, Message = "Could not set socket option {Option} on the connection from {RemoteEndPoint}: {SocketError}")]
    public static partial void SocketOptionFailed(ILogger logger, string option, EndPoint? remoteEndPoint, SocketError socketError);

    [LoggerMessage(EventId = 1005, Level = LogLevel.Warning, Message = "Accepting connections failed ({SocketError}, {Count} time(s) since the last report): pausing accepts for {PauseMs} ms and backing off; clients wait in the listen backlog. Raise the open-files limit (ulimit -n) or Broker:Limits:MaxConnections if this persists")]
    public static partial void AcceptBackingOff(ILogger logger, SocketError socketError, int count, double pauseMs);

    [LoggerMessage(EventId = 1006, Level = LogLevel.Debug, Message = "TLS handshake with {RemoteEndPoint} failed ({Reason}): {Problem}")]
    public static partial void TlsHandshakeFailed(ILogger logger, EndPoint? remoteEndPoint, string reason, string problem);
}
