namespace Broker.Connections.KeepAlive;

/// <summary>What a wheel deadline stands for. Only <see cref="KeepAlive"/> is extended by activity.</summary>
internal enum DeadlineKind
{
    /// <summary>From accept until CONNECT is accepted; counted from arming, activity does not extend it.</summary>
    Connect,

    /// <summary>[MQTT-3.1.2-24] (3.1.1) / [MQTT-3.1.2-22] (5.0): counted from the last packet received.</summary>
    KeepAlive,

    /// <summary>A closing connection flushes its last packet and drains the peer's input until this passes, then aborts.</summary>
    Linger,

    /// <summary>An offline session is discarded when its Session Expiry Interval passes [MQTT-3.1.2-23].</summary>
    SessionExpiry,

    /// <summary>A will waits for its Will Delay Interval before it is published [MQTT-3.1.3-9].</summary>
    WillDelay,

    /// <summary>
    /// The kernel's send buffer towards a client is full: counted from the last byte it took (extended by activity,
    /// like <see cref="KeepAlive"/>). Expired once: the client counts as stalled; twice: it is a slow consumer.
    /// </summary>
    SendStall,

    /// <summary>Part of a packet arrived and the rest must follow within this time, whatever the keep-alive.</summary>
    PartialPacket,
}
