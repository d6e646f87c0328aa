namespace Broker.Connections;

/// <summary>
/// Live connections, for shutdown and for listing. An intrusive doubly linked list (the links are fields of the
/// connection), so adding and removing are O(1) and a live connection costs no node object.
/// </summary>
internal sealed class ConnectionRegistry
{
    private readonly Lock _gate = new();
    private MqttConnection? _head;
    private int _count;
    private TaskCompletionSource? _emptied;

    public int Count => Volatile.Read(ref _count);

    public void Add(MqttConnection connection)
    {
        lock (_gate)
        {
            if (connection.InRegistry)
            {
                return;
            }
            connection.InRegistry = true;
            connection.RegistryPrevious = null;
            connection.RegistryNext = _head;
            if (_head is not null)
            {
                _head.RegistryPrevious = connection;
            }
            _head = connection;
            _count++;
        }
    }

    public void Remove(MqttConnection connection)
    {
        TaskCompletionSource? emptied = null;
        lock (_gate)
        {
            if (!connection.InRegistry)
            {
                return;
            }
            connection.InRegistry = false;
            if (connection.RegistryPrevious is { } previous)
            {
                previous.RegistryNext = connection.RegistryNext;
            }
            else
            {
                _head = connection.RegistryNext;
            }
            if (connection.RegistryNext is { } next)
            {
                next.RegistryPrevious = connection.RegistryPrevious;
            }
            connection.RegistryPrevious = null;
            connection.RegistryNext = null;
            _count--;
            if (_count == 0)
            {
                emptied = _emptied;
                _emptied = null;
            }
        }
        emptied?.TrySetResult();
    }

    /// <summary>A copy of the live connections (O(N): for shutdown and the admin API, not for hot paths).</summary>
    public MqttConnection[] Snapshot()
    {
        lock (_gate)
        {
            var all = new MqttConnection[_count];
            int i = 0;
            for (var c = _head; c is not null; c = c.RegistryNext)
            {
                all[i++] = c;
            }
            return all;
        }
    }

    /// <summary>Completes when no connection is left (at once if none is).</summary>
    public Task WhenEmpty()
    {
        lock (_gate)
        {
            if (_count == 0)
            {
                return Task.CompletedTask;
            }
            _emptied ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            return _emptied.Task;
        }
    }
}
