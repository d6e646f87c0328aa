using System.Net.Sockets;

namespace Broker.Transport;

/// <summary>The one recorded end of a connection, for the connection's log line and metrics.</summary>
/// <param name="SocketError">The socket error code when the end came from one, else <see cref="System.Net.Sockets.SocketError.Success"/>.</param>
internal sealed record TransportEnd(TransportEndReason Reason, SocketError SocketError, string? Message);
