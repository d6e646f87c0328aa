using System.Net.Sockets;

namespace Broker.Diagnostics.Insight;

/// <summary>
/// How a connection the broker still thought alive was proven dead. A normal close (DISCONNECT, FIN) is not
/// one of these. The values are the <c>cause</c> label of <c>mqtt.connection.idle_before_death</c>.
/// </summary>
internal enum HalfOpenCause
{
    /// <summary>The same client id connected again while this connection was open [MQTT-3.1.4-3].</summary>
    Takeover,

    /// <summary>The peer, or a middlebox on its behalf, reset the connection (RST, EPIPE).</summary>
    Reset,

    /// <summary>The kernel gave up (ETIMEDOUT): TCP keep-alive probes or retransmissions unanswered.</summary>
    TimedOut,

    /// <summary>EHOSTUNREACH / ENETUNREACH: the path to the peer is gone.</summary>
    HostUnreachable,

    /// <summary>No MQTT packet within the keep-alive grace (1.5 x K).</summary>
    KeepAliveExpired,
}

internal static class HalfOpenCauses
{
    public const int Count = (int)HalfOpenCause.KeepAliveExpired + 1;

    /// <summary>
    /// Whether the idle age at this kind of death says when the path died. A takeover or a reset is noticed
    /// when the device (or the middlebox) acts, which the path's idle timeout decides. A keep-alive expiry
    /// always comes at 1.5 x K, and ETIMEDOUT / EHOSTUNREACH when the broker's own kernel timers or its next
    /// write decide: their idle ages would cluster at the broker's settings and name a middlebox that is not there.
    /// </summary>
    public static bool DatesThePathsDeath(HalfOpenCause cause) => cause is HalfOpenCause.Takeover or HalfOpenCause.Reset;

    /// <summary>The half-open cause a socket error proves, or null when it proves none (FIN, our own close).</summary>
    public static HalfOpenCause? FromSocketError(SocketError error) => error switch
    {
        SocketError.ConnectionReset or SocketError.ConnectionAborted or SocketError.Shutdown => HalfOpenCause.Reset,
        SocketError.TimedOut => HalfOpenCause.TimedOut,
        SocketError.HostUnreachable or SocketError.NetworkUnreachable or SocketError.HostDown or SocketError.NetworkDown => HalfOpenCause.HostUnreachable,
        _ => null,
    };
}
