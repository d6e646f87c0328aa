using System.Net.Sockets;
using Broker.Hosting;
using Microsoft.Extensions.Logging;

namespace Broker.Transport;

/// <summary>Applies kernel TCP keep-alive to an accepted socket.</summary>
internal static class TcpKeepAliveConfigurator
{
    /// <summary>
    /// Sets SO_KEEPALIVE, TCP_KEEPIDLE, TCP_KEEPINTVL and TCP_KEEPCNT. Each option is set on its own so
    /// that one the platform refuses does not prevent the others; a failure is logged, never thrown:
    /// a connection without kernel keep-alive still works and MQTT keep-alive still applies.
    /// When keep-alive is disabled nothing is touched (the kernel default is off).
    /// </summary>
    public static void Apply(Socket socket, TcpKeepAliveOptions options, ILogger logger)
    {
        if (!options.Enabled)
        {
            return;
        }

        SocketOptionSetter.TrySet(socket, SocketOptionLevel.Socket, SocketOptionName.KeepAlive, 1, "SO_KEEPALIVE", logger);
        SocketOptionSetter.TrySet(socket, SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveTime, options.IdleSeconds, "TCP_KEEPIDLE", logger);
        SocketOptionSetter.TrySet(socket, SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveInterval, options.IntervalSeconds, "TCP_KEEPINTVL", logger);
        SocketOptionSetter.TrySet(socket, SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveRetryCount, options.ProbeCount, "TCP_KEEPCNT", logger);
    }
}
