using System.Net;
using Broker.Protocol;

namespace Broker.Diagnostics;

/// <summary>
/// The connected clients as operators see them (admin API, $SYS). Kept apart from the connection type so that
/// what reads it does not change when the connection layer does: only the implementation knows connections.
/// </summary>
internal interface IClientDirectory
{
    /// <summary>Every client with an accepted CONNECT, in no particular order. O(clients): for operators, not hot paths.</summary>
    IReadOnlyList<ClientSnapshot> List();

    /// <summary>The connected client with this identifier, or null.</summary>
    ClientSnapshot? Find(string clientId);

    /// <summary>Ends the client's connection (5.0: DISCONNECT 0x98). False when no such client is connected.</summary>
    bool Disconnect(string clientId, string reason);
}

/// <summary>One connected client at the moment it was read.</summary>
/// <param name="KeepAlive">Keep Alive in force after negotiation, in seconds (0 = none).</param>
/// <param name="Queued">Messages waiting to be sent to it.</param>
/// <param name="Inflight">QoS 1/2 messages sent and not yet acknowledged.</param>
/// <param name="Listener">The listener it came through (today only "tcp").</param>
internal sealed record ClientSnapshot(
    string ClientId,
    string RemoteAddress,
    string Protocol,
    int KeepAlive,
    DateTimeOffset ConnectedAt,
    DateTimeOffset LastActivity,
    int Queued,
    int Inflight,
    string Listener,
    string? UserName);

/// <summary>What a connection knows once its CONNECT was accepted; written once, then only read.</summary>
internal sealed record ConnectionFacts(
    string ClientId,
    MqttProtocolVersion Version,
    int KeepAliveSeconds,
    EndPoint? RemoteEndPoint,
    string? UserName,
    long ConnectedTimestamp)
{
    public string ProtocolText => Version == MqttProtocolVersion.V500 ? "5.0" : "3.1.1";
}
