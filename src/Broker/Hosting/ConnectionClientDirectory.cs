using System.Net;
using Broker.Connections;
using Broker.Diagnostics;
using Broker.Sessions;

namespace Broker.Hosting;

/// <summary>
/// <see cref="IClientDirectory"/> over today's connection type. The only place that knows how a connection exposes
/// what operators see (<see cref="MqttConnection.Facts"/>, its last activity, its session).
/// </summary>
internal sealed class ConnectionClientDirectory(ConnectionRegistry registry, SessionStore sessions, TimeProvider time) : IClientDirectory
{
    public const string TcpListener = "tcp";

    public IReadOnlyList<ClientSnapshot> List()
    {
        var result = new List<ClientSnapshot>();
        foreach (var connection in registry.Snapshot())
        {
            if (Snapshot(connection) is { } snapshot)
            {
                result.Add(snapshot);
            }
        }
        return result;
    }

    public ClientSnapshot? Find(string clientId) => Owner(clientId) is { } connection ? Snapshot(connection) : null;

    public bool Disconnect(string clientId, string reason)
    {
        if (Owner(clientId) is not { } connection)
        {
            return false;
        }
        connection.DisconnectByAdministrator(reason);
        return true;
    }

    /// <summary>The connection that owns the client's session now: one lookup, not a scan of every connection.</summary>
    private MqttConnection? Owner(string clientId)
        => sessions.TryGet(clientId, out var session) && session!.Owner is MqttConnection connection && connection.Facts is not null
            ? connection
            : null;

    private ClientSnapshot? Snapshot(MqttConnection connection)
    {
        if (connection.Facts is not { } facts)
        {
            return null; // no accepted CONNECT yet: not a client
        }
        var session = connection.Session;
        return new ClientSnapshot(
            facts.ClientId,
            facts.RemoteEndPoint switch
            {
                IPEndPoint ip => ip.ToString(),
                { } other => other.ToString() ?? string.Empty,
                null => string.Empty,
            },
            facts.ProtocolText,
            facts.KeepAliveSeconds,
            ToWallClock(facts.ConnectedTimestamp),
            ToWallClock(connection.LastActivityTimestamp),
            session?.PendingCount ?? 0,
            session?.InflightCount ?? 0,
            connection.Listener,
            facts.UserName);
    }

    /// <summary>Timestamps are monotonic; operators read wall-clock times.</summary>
    private DateTimeOffset ToWallClock(long timestamp)
    {
        var ago = time.GetElapsedTime(timestamp);
        var now = time.GetUtcNow();
        return ago > TimeSpan.Zero ? now - ago : now;
    }
}
