namespace Broker.Connections.KeepAlive;

internal enum DeadlineKind
{
    /// <summary>From accept until CONNECT is accepted; counted from arming, activity does not extend it.</summary>
    Connect,

    /// <summary>[MQTT-3.1.2-24] (3.1.1) / [MQTT-3.1.2-22] (5.0): counted from the last packet received.</summary>
    KeepAlive,
}
