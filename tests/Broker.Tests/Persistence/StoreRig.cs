using Broker.Diagnostics;
using Broker.Persistence;
using Broker.Protocol;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace Broker.Tests.Persistence;

/// <summary>
/// A store directory of its own under the temp directory (removed at the end), a fake wall clock, and the stores
/// opened on it (disposed at the end).
/// </summary>
internal sealed class StoreRig : IDisposable
{
    public static readonly TimeSpan Safety = TimeSpan.FromSeconds(10);
    public static readonly DateTimeOffset Start = new(2026, 3, 1, 12, 0, 0, TimeSpan.Zero);

    private readonly List<SqliteBrokerStateStore> _stores = [];
    private readonly List<string> _directories = [];

    public StoreRig()
    {
        Directory = NewDirectory();
    }

    public string Directory { get; }
    public string DatabasePath => Path.Combine(Directory, SqliteSchema.FileName);
    public FakeTimeProvider Time { get; } = new(Start);
    public BrokerMetrics Metrics { get; } = new();

    public string NewDirectory()
    {
        string path = Path.Combine(Path.GetTempPath(), "broker-store-tests", Guid.NewGuid().ToString("N"));
        _directories.Add(path);
        return path;
    }

    /// <summary>A store on <see cref="Directory"/> (or <paramref name="directory"/>); flush interval 0 commits as soon as the writer is free.</summary>
    public SqliteBrokerStateStore Create(int flushIntervalMs = 0, int maxBatchSize = 1024, int maxPending = 100_000, string? directory = null)
    {
        var store = new SqliteBrokerStateStore(
            new PersistenceOptions
            {
                Path = directory ?? Directory,
                FlushIntervalMilliseconds = flushIntervalMs,
                MaxBatchSize = maxBatchSize,
                MaxPendingOperations = maxPending,
            },
            Time, Metrics, NullLogger<SqliteBrokerStateStore>.Instance);
        _stores.Add(store);
        return store;
    }

    public (SqliteBrokerStateStore Store, RestoredState State) Open(int flushIntervalMs = 0, int maxBatchSize = 1024, int maxPending = 100_000)
    {
        var store = Create(flushIntervalMs, maxBatchSize, maxPending);
        return (store, store.Open());
    }

    /// <summary>Disposes <paramref name="store"/> and opens the directory again: what a restart sees.</summary>
    public RestoredState Reopen(SqliteBrokerStateStore store)
    {
        store.Dispose();
        return Create().Open();
    }

    public PersistedMessage Message(IBrokerStateStore store, string topic, byte[] payload, QualityOfService qos = QualityOfService.AtLeastOnce,
        uint? expirySeconds = null, MqttProperties? properties = null, bool retain = false) => new()
    {
        Id = store.NewMessageId(),
        Topic = topic,
        Payload = payload,
        QoS = qos,
        Retain = retain,
        Properties = PersistedProperties.Encode(properties),
        ExpiryIntervalSeconds = expirySeconds,
        ReceivedAt = Time.GetUtcNow(),
    };

    /// <summary>Appends a flush and waits until everything appended before it is durable.</summary>
    public static async Task FlushAsync(IBrokerStateStore store)
    {
        var done = new RecordingCompletion();
        store.Append(StoreOperation.Flush(), done, 0);
        await done.WaitForAsync(1);
        Assert.Equal([(0L, StoreOutcome.Durable)], done.Seen);
    }

    /// <summary>A connection of the test's own, to look at the file the way a restarted broker (or sqlite3) would.</summary>
    public SqliteConnection OpenRaw(string? path = null)
    {
        var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path ?? DatabasePath, Pooling = false }.ToString());
        connection.Open();
        return connection;
    }

    public long Count(string table)
    {
        using var connection = OpenRaw();
        using var cmd = new SqliteCommand($"SELECT count(*) FROM {table}", connection);
        return (long)cmd.ExecuteScalar()!;
    }

    public void Dispose()
    {
        foreach (var store in _stores)
        {
            store.Dispose();
        }
        Metrics.Dispose();
        foreach (string directory in _directories)
        {
            if (System.IO.Directory.Exists(directory))
            {
                System.IO.Directory.Delete(directory, recursive: true);
            }
        }
    }
}

/// <summary>Records completions in the order the store reports them; tests wait for a number of them.</summary>
internal sealed class RecordingCompletion : IStoreCompletion
{
    private readonly Lock _lock = new();
    private readonly List<(long Token, StoreOutcome Outcome)> _seen = [];
    private TaskCompletionSource? _waiter;
    private int _waitFor;

    /// <summary>Runs on the writer thread before the completion is recorded.</summary>
    public Action<long>? OnCompleted { get; init; }

    public IReadOnlyList<(long Token, StoreOutcome Outcome)> Seen
    {
        get
        {
            lock (_lock)
            {
                return [.. _seen];
            }
        }
    }

    public void OnStoreCompleted(long token, StoreOutcome outcome)
    {
        OnCompleted?.Invoke(token);
        lock (_lock)
        {
            _seen.Add((token, outcome));
            if (_waiter is not null && _seen.Count >= _waitFor)
            {
                _waiter.TrySetResult();
            }
        }
    }

    public Task WaitForAsync(int count)
    {
        lock (_lock)
        {
            if (_seen.Count >= count)
            {
                return Task.CompletedTask;
            }
            _waitFor = count;
            _waiter = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            return _waiter.Task.WaitAsync(StoreRig.Safety, TestContext.Current.CancellationToken);
        }
    }
}
