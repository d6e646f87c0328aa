using System.Net.Sockets;
using Microsoft.Extensions.Logging;

namespace Broker.Transport;

/// <summary>Sets one socket option; a refusal is logged, never thrown: an option we could not set must not cost the client its connection.</summary>
internal static class SocketOptionSetter
{
    public static void TrySet(Socket socket, SocketOptionLevel level, SocketOptionName name, int value, string displayName, ILogger logger)
    {
        try
        {
            socket.SetSocketOption(level, name, value);
        }
        catch (SocketException e)
        {
            TransportLog.SocketOptionFailed(logger, displayName, TryGetRemoteEndPoint(socket), e.SocketErrorCode);
        }
        catch (PlatformNotSupportedException)
        {
            TransportLog.SocketOptionFailed(logger, displayName, TryGetRemoteEndPoint(socket), SocketError.OperationNotSupported);
        }
    }

    private static System.Net.EndPoint? TryGetRemoteEndPoint(Socket socket)
    {
        try
        {
            return socket.RemoteEndPoint;
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            return null;
        }
    }
}
