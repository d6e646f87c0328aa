using System.Collections.Concurrent;

namespace Broker.Connections;

/// <summary>Live connections, for graceful shutdown.</summary>
internal sealed class ConnectionRegistry
{
    private readonly ConcurrentDictionary<MqttConnection, byte> _connections = new(ReferenceEqualityComparer.Instance);

    public int Count => _connections.Count;

    public void Add(MqttConnection connection) => _connections.TryAdd(connection, 0);

    public void Remove(MqttConnection connection) => _connections.TryRemove(connection, out _);

    public ICollection<MqttConnection> Snapshot() => _connections.Keys;
}
