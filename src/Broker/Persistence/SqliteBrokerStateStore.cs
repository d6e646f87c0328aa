using Broker.Diagnostics;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;

namespace Broker.Persistence;

/// <summary>
/// The embedded store: one SQLite database in WAL mode with <c>synchronous=FULL</c>, written by one dedicated
/// thread that commits appended operations in batches (group commit: one transaction and one fsync per batch).
/// </summary>
/// <remarks>
/// Why synchronous=FULL: in WAL mode, NORMAL does not fsync the log at commit, so a transaction that reported
/// success can vanish if the machine (not just the process) dies before the next checkpoint. The broker
/// acknowledges a QoS 1/2 PUBLISH on the strength of the commit, so the commit must survive power loss: FULL
/// fsyncs the WAL at every commit, and group commit spreads that one fsync over the whole batch.
/// </remarks>
internal sealed partial class SqliteBrokerStateStore : IBrokerStateStore
{
    private readonly string _directory;
    private readonly string _databasePath;
    private readonly TimeSpan _flushInterval;
    private readonly int _maxBatchSize;
    private readonly int _highWater;
    private readonly int _lowWater;
    private readonly TimeProvider _time;
    private readonly BrokerMetrics _metrics;
    private readonly ILogger _logger;

    // Guards the batches and the flags below; held only to copy an operation in or to swap batches.
    private readonly Lock _gate = new();
    private StoreBatch _current = new();
    private StoreBatch? _spare = new();
    private int _committingCount;
    private bool _due;
    private bool _stopping;
    private bool _behind;
    // A commit failed and is being retried: completions are answered Failed at once (see AppendCore).
    private bool _failing;
    private TaskCompletionSource? _caughtUp;

    private readonly ManualResetEventSlim _wake = new(false, spinCount: 0);
    private readonly ManualResetEventSlim _retryWake = new(false, spinCount: 0);
    private ITimer? _flushTimer;
    private ITimer? _retryTimer;
    private Thread? _writer;
    private SqliteConnection? _connection;
    private FileStream? _lockFile;
    private long _lastMessageId;
    private volatile StoreHealth _health = StoreHealth.Closed;
    private int _disposed;

    public SqliteBrokerStateStore(PersistenceOptions options, TimeProvider time, BrokerMetrics metrics, ILogger<SqliteBrokerStateStore> logger)
    {
        _directory = System.IO.Path.GetFullPath(options.Path);
        _databasePath = System.IO.Path.Combine(_directory, SqliteSchema.FileName);
        _flushInterval = TimeSpan.FromMilliseconds(options.FlushIntervalMilliseconds);
        _maxBatchSize = options.MaxBatchSize;
        _highWater = options.MaxPendingOperations;
        _lowWater = options.MaxPendingOperations / 2;
        _time = time;
        _metrics = metrics;
        _logger = logger;
    }

    public string DatabasePath => _databasePath;

    public StoreHealth Health => _health;

    public int PendingOperations
    {
        get
        {
            lock (_gate)
            {
                return _current.Count + _committingCount;
            }
        }
    }

    public bool IsBehind => Volatile.Read(ref _behind);

    public Task WhenCaughtUp()
    {
        lock (_gate)
        {
            if (!_behind)
            {
                return Task.CompletedTask;
            }
            // One task shared by every waiter of this episode, not one per caller.
            return (_caughtUp ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
        }
    }

    public long NewMessageId()
    {
        if (_health == StoreHealth.Closed)
        {
            throw new InvalidOperationException("The store is not open: message ids continue from those it holds.");
        }
        return Interlocked.Increment(ref _lastMessageId);
    }

    public RestoredState Open()
    {
        if (_health != StoreHealth.Closed || Volatile.Read(ref _disposed) != 0)
        {
            throw new InvalidOperationException("The store can be opened once.");
        }
        long started = _time.GetTimestamp();
        try
        {
            Directory.CreateDirectory(_directory);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new StoreUnreadableException(_databasePath, StoreUnreadableReason.Inaccessible, $"the directory {_directory} cannot be created ({e.Message})", e);
        }
        AcquireLockFile();
        RestoredState state;
        try
        {
            _connection = new SqliteConnection(new SqliteConnectionStringBuilder
            {
                DataSource = _databasePath,
                Mode = SqliteOpenMode.ReadWriteCreate,
                // Without this, Dispose would return the file handle to a pool and the file would stay open.
                Pooling = false,
                DefaultTimeout = 5,
            }.ToString());
            _connection.Open();
            bool created = Initialise(_connection);
            state = Restore(_connection, created, started);
            PrepareStatements(_connection);
        }
        catch (Exception e)
        {
            _connection?.Dispose();
            _connection = null;
            _lockFile?.Dispose();
            _lockFile = null;
            throw e switch
            {
                StoreUnreadableException unreadable => unreadable,
                SqliteException sqlite => Unreadable(sqlite),
                IOException or UnauthorizedAccessException => new StoreUnreadableException(_databasePath, StoreUnreadableReason.Inaccessible, e.Message, e),
                // Rows the schema allows but the broker cannot read (a value edited by hand, a dangling key).
                _ => new StoreUnreadableException(_databasePath, StoreUnreadableReason.Corrupt, $"its contents cannot be read ({e.GetType().Name}: {e.Message})", e),
            };
        }

        if (_flushInterval > TimeSpan.Zero)
        {
            _flushTimer = _time.CreateTimer(static s => ((SqliteBrokerStateStore)s!).OnFlushDue(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        }
        _retryTimer = _time.CreateTimer(static s => ((SqliteBrokerStateStore)s!)._retryWake.Set(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        _metrics.ObserveStorePending(() => PendingOperations);
        _health = StoreHealth.Healthy;
        _writer = new Thread(WriterLoop) { IsBackground = true, Name = "Broker store writer" };
        _writer.Start();
        return state;
    }

    public void Append(in StoreOperation operation) => AppendCore(operation, null, 0);

    public void Append(in StoreOperation operation, IStoreCompletion completion, long token)
    {
        ArgumentNullException.ThrowIfNull(completion);
        AppendCore(operation, completion, token);
    }

    private void AppendCore(in StoreOperation operation, IStoreCompletion? completion, long token)
    {
        bool wake = false;
        lock (_gate)
        {
            if (_health == StoreHealth.Closed && !_stopping)
            {
                throw new InvalidOperationException("Open the store before appending to it.");
            }
            if (!_stopping)
            {
                // While a commit fails, the operation still joins the batch (the retry writes it, in order), but its
                // caller is told at once that it is not durable, instead of waiting for the disk to recover.
                _current.Add(operation, _failing ? null : completion, token);
                int count = _current.Count;
                // The writer is woken on transitions only, not for every operation: when a batch starts (or, with a
                // flush interval, when its timer fires), when it is full, and when someone asks for a flush.
                if (count == 1)
                {
                    if (_flushTimer is null)
                    {
                        wake = true;
                    }
                    else
                    {
                        _flushTimer.Change(_flushInterval, Timeout.InfiniteTimeSpan);
                    }
                }
                if (count == _maxBatchSize || operation.Kind == StoreOperationKind.Flush)
                {
                    wake = true;
                }
                if (!_behind && count + _committingCount >= _highWater)
                {
                    Volatile.Write(ref _behind, true);
                }
                if (!_failing)
                {
                    completion = null;
                }
            }
        }
        if (wake)
        {
            _wake.Set();
        }
        if (completion is not null)
        {
            // The store is stopping (a connection finishing while the broker stops), or a commit is failing: not durable.
            Complete(completion, token, StoreOutcome.Failed);
        }
    }

    private void OnFlushDue()
    {
        lock (_gate)
        {
            _due = true;
        }
        _wake.Set();
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        lock (_gate)
        {
            _stopping = true;
        }
        _wake.Set();
        _retryWake.Set();
        // The writer commits what is pending (one attempt if the disk is failing) before it ends.
        _writer?.Join();
        lock (_gate)
        {
            ReleaseCaughtUpLocked();
        }
        _flushTimer?.Dispose();
        _retryTimer?.Dispose();
        DisposeStatements();
        // Closing the last connection checkpoints the WAL into the database file and removes the -wal file.
        _connection?.Dispose();
        _lockFile?.Dispose();
        _health = StoreHealth.Stopped;
    }

    private void AcquireLockFile()
    {
        string path = System.IO.Path.Combine(_directory, SqliteSchema.LockFileName);
        try
        {
            // FileShare.None takes an exclusive lock (flock on Unix) that the OS drops when the process dies, so a
            // crash never leaves a stale lock behind.
            _lockFile = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (UnauthorizedAccessException e)
        {
            throw new StoreUnreadableException(_databasePath, StoreUnreadableReason.Inaccessible, $"the lock file {path} cannot be opened ({e.Message})", e);
        }
        catch (IOException e)
        {
            throw new StoreUnreadableException(_databasePath, StoreUnreadableReason.InUse, $"the lock file {path} is held by another process ({e.Message})", e);
        }
    }

    public StoreMeasurement Measure()
    {
        if (_health != StoreHealth.Healthy && _health != StoreHealth.Retrying)
        {
            return default;
        }
        // A connection of its own: WAL lets it read the last commit while the writer goes on.
        using var connection = new SqliteConnection(new SqliteConnectionStringBuilder
        {
            DataSource = _databasePath,
            Mode = SqliteOpenMode.ReadOnly,
            Pooling = false,
        }.ToString());
        connection.Open();
        using var cmd = new SqliteCommand("""
            SELECT (SELECT count(*) FROM session),
                   (SELECT count(*) FROM subscription),
                   (SELECT count(*) FROM session_message WHERE packet_id IS NULL),
                   (SELECT count(*) FROM session_message WHERE packet_id IS NOT NULL),
                   (SELECT count(*) FROM inbound_qos2),
                   (SELECT count(*) FROM message),
                   (SELECT coalesce(sum(length(payload)), 0) FROM message),
                   (SELECT count(*) FROM retained),
                   (SELECT coalesce(sum(length(payload)), 0) FROM retained),
                   (SELECT count(*) FROM will)
            """, connection);
        using var r = cmd.ExecuteReader();
        r.Read();
        long fileBytes = FileLength(_databasePath) + FileLength(_databasePath + "-wal");
        return new StoreMeasurement(r.GetInt64(0), r.GetInt64(1), r.GetInt64(2), r.GetInt64(3), r.GetInt64(4), r.GetInt64(5), r.GetInt64(6),
            r.GetInt64(7), r.GetInt64(8), r.GetInt64(9), fileBytes);
    }

    private static long FileLength(string path)
    {
        var info = new FileInfo(path);
        return info.Exists ? info.Length : 0;
    }

    private StoreUnreadableException Unreadable(SqliteException e)
    {
        var reason = (e.SqliteErrorCode & 0xFF) switch
        {
            26 => StoreUnreadableReason.NotADatabase, // SQLITE_NOTADB
            11 => StoreUnreadableReason.Corrupt,      // SQLITE_CORRUPT
            5 or 6 => StoreUnreadableReason.InUse,    // SQLITE_BUSY, SQLITE_LOCKED
            _ => StoreUnreadableReason.Inaccessible,
        };
        return new StoreUnreadableException(_databasePath, reason, $"SQLite error {e.SqliteErrorCode}: {e.Message}", e);
    }

    // _gate held.
    private void ReleaseCaughtUpLocked()
    {
        Volatile.Write(ref _behind, false);
        _caughtUp?.TrySetResult();
        _caughtUp = null;
    }
}
