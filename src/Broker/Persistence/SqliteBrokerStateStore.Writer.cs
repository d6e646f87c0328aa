using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Broker.Diagnostics;
using Microsoft.Data.Sqlite;

namespace Broker.Persistence;

internal sealed partial class SqliteBrokerStateStore
{
    private static readonly TimeSpan FirstRetryDelay = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan MaxRetryDelay = TimeSpan.FromSeconds(5);

    // Writer thread only (and Open, before it starts).
    private readonly HashSet<long> _messagesWritten = [];
    private readonly HashSet<long> _messagesReleased = [];
    // Which operations of the batch being committed cancel out (FindCancelled), and the queue entries it tracks.
    private bool[] _cancelled = new bool[64];
    private readonly Dictionary<(string ClientId, long Sequence), EntryOperations> _entries = [];
    private Statements? _sql;
    private bool _failedForGood;
    private long _maxPageCountForTest;
    private long _appliedMaxPageCount;

    /// <summary>Tests: caps the database size (PRAGMA max_page_count) before the next commit, to provoke SQLITE_FULL.</summary>
    internal void SetMaxPageCountForTest(long pages) => Interlocked.Exchange(ref _maxPageCountForTest, pages);

    /// <summary>Tests: transactions committed since the store opened.</summary>
    internal long CommittedBatches => Interlocked.Read(ref _committedBatches);

    private long _committedBatches;

    private void WriterLoop()
    {
        while (true)
        {
            StoreBatch? batch;
            lock (_gate)
            {
                batch = TakeReadyBatchLocked();
                if (batch is null)
                {
                    if (_stopping)
                    {
                        // Nothing left: a stopping store makes every non-empty batch ready.
                        return;
                    }
                    // Reset under the lock: whoever makes a batch ready does so under it and signals after it, so
                    // either this pass saw the batch or the signal comes after the reset.
                    _wake.Reset();
                }
            }
            if (batch is null)
            {
                _wake.Wait();
                continue;
            }

            bool durable = !_failedForGood && CommitWithRetry(batch);
            if (!durable)
            {
                // Once a batch is lost, nothing after it may be reported durable: it would claim its predecessors too.
                _failedForGood = true;
            }
            var outcome = durable ? StoreOutcome.Durable : StoreOutcome.Failed;
            foreach (var pending in batch.Completions)
            {
                Complete(pending.Completion, pending.Token, outcome);
            }
            batch.Clear();
            lock (_gate)
            {
                _committingCount = 0;
                _spare = batch;
                if (_behind && _current.Count <= _lowWater)
                {
                    ReleaseCaughtUpLocked();
                }
            }
        }
    }

    // _gate held.
    private StoreBatch? TakeReadyBatchLocked()
    {
        var current = _current;
        if (current.Count == 0)
        {
            return null;
        }
        if (!(_stopping || _flushTimer is null || _due || current.Count >= _maxBatchSize || current.FlushRequested))
        {
            return null;
        }
        _current = _spare ?? new StoreBatch();
        _spare = null;
        _due = false;
        _committingCount = current.Count;
        return current;
    }

    /// <summary>
    /// Commits the batch in one transaction. While the disk fails, the same batch is retried with backoff and its
    /// completions wait (nothing acknowledged is lost, and publishers are held back through <see cref="IsBehind"/>).
    /// A stopping store makes one attempt. Returns false when the batch could not be written.
    /// </summary>
    private bool CommitWithRetry(StoreBatch batch)
    {
        int attempt = 0;
        var delay = FirstRetryDelay;
        while (true)
        {
            long started = _time.GetTimestamp();
            StoreErrorKind kind;
            try
            {
                Commit(batch);
                _metrics.StoreCommitted(batch.Count, _time.GetElapsedTime(started));
                Interlocked.Increment(ref _committedBatches);
                if (attempt > 0)
                {
                    lock (_gate)
                    {
                        _failing = false;
                    }
                    PersistenceLog.CommitRecovered(_logger, _databasePath, attempt);
                    _health = StoreHealth.Healthy;
                }
                return true;
            }
            catch (Exception e)
            {
                Rollback();
                attempt++;
                kind = Classify(e);
                _metrics.StoreError(kind);
                if (IsStopping())
                {
                    PersistenceLog.OperationsLost(_logger, _databasePath, batch.Count, kind);
                    return false;
                }
                PersistenceLog.CommitFailed(_logger, _databasePath, batch.Count, kind, attempt, delay.TotalMilliseconds, e);
                if (attempt == 1)
                {
                    FailWaitingCompletions(batch);
                }
            }

            _retryWake.Reset();
            _retryTimer!.Change(delay, Timeout.InfiniteTimeSpan);
            // Set after the timer is armed, so that whoever sees Retrying (a test advancing a fake clock) finds it armed.
            _health = StoreHealth.Retrying;
            // Dispose sets _stopping before it signals: checked after the reset, its signal cannot be lost.
            if (!IsStopping())
            {
                _retryWake.Wait();
            }
            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, MaxRetryDelay.Ticks));
        }
    }

    /// <summary>
    /// A commit failed: everyone waiting for this batch or the next is told now that their operations are not durable
    /// (the broker answers its clients with an error instead of holding them until the disk recovers), and appends
    /// are answered the same way until a commit succeeds. The operations stay and are written by the retry, so the
    /// store converges with memory once space returns; nobody is told Durable for them.
    /// </summary>
    private void FailWaitingCompletions(StoreBatch batch)
    {
        PendingCompletion[] next;
        lock (_gate)
        {
            _failing = true;
            next = _current.TakeCompletions();
        }
        foreach (var pending in batch.TakeCompletions())
        {
            Complete(pending.Completion, pending.Token, StoreOutcome.Failed);
        }
        foreach (var pending in next)
        {
            Complete(pending.Completion, pending.Token, StoreOutcome.Failed);
        }
    }

    private bool IsStopping()
    {
        lock (_gate)
        {
            return _stopping;
        }
    }

    private void Commit(StoreBatch batch)
    {
        var sql = _sql!;
        ApplyTestPageLimit();
        sql.Begin.ExecuteNonQuery();
        _messagesWritten.Clear();
        _messagesReleased.Clear();
        var operations = batch.Operations;
        bool cancelling = batch.HasRemoveOutbound && FindCancelled(operations);
        for (int i = 0; i < operations.Length; i++)
        {
            if (!cancelling || !_cancelled[i])
            {
                Apply(sql, operations[i]);
            }
        }
        // A message row goes with the last queue entry that referred to it.
        foreach (long id in _messagesReleased)
        {
            sql.CollectMessage.Parameters[0].Value = id;
            sql.CollectMessage.ExecuteNonQuery();
        }
        sql.Commit.ExecuteNonQuery();
    }

    /// <summary>
    /// A queue entry enqueued and removed again within one batch (the usual life of a message for a subscriber that is
    /// online: queued, sent, acknowledged within a few milliseconds) needs no write at all: its Enqueue, MarkInflight,
    /// MarkReleased and RemoveOutbound are skipped, and its message row is not written unless another queue keeps it.
    /// The store ends the batch in the state applying them all would leave. Returns whether anything cancels.
    /// </summary>
    private bool FindCancelled(ReadOnlySpan<StoreOperation> operations)
    {
        if (_cancelled.Length < operations.Length)
        {
            _cancelled = new bool[Math.Max(operations.Length, _cancelled.Length * 2)];
        }
        Array.Clear(_cancelled, 0, operations.Length);
        _entries.Clear();
        bool any = false;
        for (int i = 0; i < operations.Length; i++)
        {
            ref readonly var op = ref operations[i];
            switch (op.Kind)
            {
                case StoreOperationKind.Enqueue:
                    // The latest Enqueue of a key: a later session of the same client id may reuse a sequence.
                    _entries[(op.ClientId!, op.Sequence)] = new EntryOperations(i, -1, -1);
                    break;
                case StoreOperationKind.MarkInflight when _entries.TryGetValue((op.ClientId!, op.Sequence), out var entry):
                    _entries[(op.ClientId!, op.Sequence)] = entry with { Inflight = i };
                    break;
                case StoreOperationKind.MarkReleased when _entries.TryGetValue((op.ClientId!, op.Sequence), out var entry):
                    _entries[(op.ClientId!, op.Sequence)] = entry with { Released = i };
                    break;
                case StoreOperationKind.RemoveOutbound when _entries.Remove((op.ClientId!, op.Sequence), out var entry):
                    _cancelled[entry.Enqueue] = true;
                    if (entry.Inflight >= 0)
                    {
                        _cancelled[entry.Inflight] = true;
                    }
                    if (entry.Released >= 0)
                    {
                        _cancelled[entry.Released] = true;
                    }
                    _cancelled[i] = true;
                    any = true;
                    break;
                case StoreOperationKind.DeleteSession:
                    // Entries enqueued before it are deleted with the session: a removal after it pairs with nothing.
                    RemoveEntriesOf(op.ClientId!);
                    break;
            }
        }
        return any;
    }

    private void RemoveEntriesOf(string clientId)
    {
        if (_entries.Count == 0)
        {
            return;
        }
        List<(string, long)>? gone = null;
        foreach (var key in _entries.Keys)
        {
            if (string.Equals(key.Item1, clientId, StringComparison.Ordinal))
            {
                (gone ??= []).Add(key);
            }
        }
        if (gone is not null)
        {
            foreach (var key in gone)
            {
                _entries.Remove(key);
            }
        }
    }

    private readonly record struct EntryOperations(int Enqueue, int Inflight, int Released);

    private void Apply(Statements sql, in StoreOperation op)
    {
        switch (op.Kind)
        {
            case StoreOperationKind.UpsertSession:
                Run(sql.UpsertSession, op.ClientId, (long)op.SessionExpirySeconds, op.WallTimeMs, op.OwnerUserName);
                break;
            case StoreOperationKind.DeleteSession:
                Run(sql.DeleteSubscriptions, op.ClientId);
                Run(sql.DeleteInboundAll, op.ClientId);
                sql.DeleteQueue.Parameters[0].Value = op.ClientId;
                using (var reader = sql.DeleteQueue.ExecuteReader())
                {
                    while (reader.Read())
                    {
                        _messagesReleased.Add(reader.GetInt64(0));
                    }
                }
                Run(sql.DeleteSession, op.ClientId);
                break;
            case StoreOperationKind.UpsertSubscription:
                Run(sql.UpsertSubscription, op.ClientId, op.Topic, (long)op.SubscriptionOptions, op.SubscriptionIdentifier);
                break;
            case StoreOperationKind.DeleteSubscription:
                Run(sql.DeleteSubscription, op.ClientId, op.Topic);
                break;
            case StoreOperationKind.Enqueue:
                var message = op.Message!;
                // The first queue entry of a batch that names a message writes it; OR IGNORE covers earlier batches.
                if (_messagesWritten.Add(message.Id))
                {
                    Run(sql.InsertMessage, message.Id, message.Topic, Blob(message.Payload), (long)message.QoS, message.Retain ? 1L : 0L,
                        message.Properties, message.ExpiryIntervalSeconds, message.ReceivedAt.ToUnixTimeMilliseconds());
                }
                Run(sql.InsertQueued, op.ClientId, op.Sequence, message.Id, (long)op.QoS, op.Retain ? 1L : 0L, EncodeIdentifiers(op.SubscriptionIdentifiers));
                break;
            case StoreOperationKind.MarkInflight:
                Run(sql.MarkInflight, op.ClientId, op.Sequence, (long)op.PacketId);
                break;
            case StoreOperationKind.MarkReleased:
                Run(sql.MarkReleased, op.ClientId, op.Sequence);
                break;
            case StoreOperationKind.RemoveOutbound:
                sql.RemoveOutbound.Parameters[0].Value = op.ClientId;
                sql.RemoveOutbound.Parameters[1].Value = op.Sequence;
                if (sql.RemoveOutbound.ExecuteScalar() is long removedMessage)
                {
                    _messagesReleased.Add(removedMessage);
                }
                break;
            case StoreOperationKind.AddInboundQoS2:
                Run(sql.AddInbound, op.ClientId, (long)op.PacketId);
                break;
            case StoreOperationKind.RemoveInboundQoS2:
                Run(sql.RemoveInbound, op.ClientId, (long)op.PacketId);
                break;
            case StoreOperationKind.SetRetained:
                var retained = op.Message!;
                Run(sql.SetRetained, retained.Topic, Blob(retained.Payload), (long)retained.QoS, retained.Properties, retained.ExpiryIntervalSeconds,
                    retained.ReceivedAt.ToUnixTimeMilliseconds());
                break;
            case StoreOperationKind.ClearRetained:
                Run(sql.ClearRetained, op.Topic);
                break;
            case StoreOperationKind.SaveWill:
                var will = op.Message!;
                Run(sql.SaveWill, op.ClientId, will.Topic, Blob(will.Payload), (long)will.QoS, will.Retain ? 1L : 0L, will.Properties,
                    will.ExpiryIntervalSeconds, op.WallTimeMs);
                break;
            case StoreOperationKind.DeleteWill:
                Run(sql.DeleteWill, op.ClientId);
                break;
            case StoreOperationKind.Flush:
            case StoreOperationKind.Barrier:
            case StoreOperationKind.None:
                break;
            default:
                throw new InvalidOperationException($"Unknown store operation {op.Kind}");
        }
    }

    private static void Run(SqliteCommand cmd, params ReadOnlySpan<object?> values)
    {
        var parameters = cmd.Parameters;
        for (int i = 0; i < values.Length; i++)
        {
            parameters[i].Value = values[i] ?? DBNull.Value;
        }
        cmd.ExecuteNonQuery();
    }

    /// <summary>The payload's own array when it is whole (the broker copies each payload into one), else a copy.</summary>
    private static byte[] Blob(ReadOnlyMemory<byte> payload)
        => MemoryMarshal.TryGetArray(payload, out var segment) && segment.Offset == 0 && segment.Count == segment.Array!.Length
            ? segment.Array
            : payload.ToArray();

    private static byte[]? EncodeIdentifiers(int[]? ids)
    {
        if (ids is null || ids.Length == 0)
        {
            return null;
        }
        var blob = new byte[ids.Length * 4];
        for (int i = 0; i < ids.Length; i++)
        {
            BinaryPrimitives.WriteInt32LittleEndian(blob.AsSpan(i * 4), ids[i]);
        }
        return blob;
    }

    private void Rollback()
    {
        try
        {
            _sql!.Rollback.ExecuteNonQuery();
        }
        catch (SqliteException)
        {
            // SQLite may have rolled back already (it does on some SQLITE_FULL and I/O errors): nothing to undo.
        }
    }

    private void ApplyTestPageLimit()
    {
        long pages = Interlocked.Read(ref _maxPageCountForTest);
        if (pages != _appliedMaxPageCount)
        {
            using var cmd = new SqliteCommand($"PRAGMA max_page_count = {pages}", _connection);
            cmd.ExecuteNonQuery();
            _appliedMaxPageCount = pages;
        }
    }

    private static StoreErrorKind Classify(Exception e) => e is SqliteException sqlite
        ? (sqlite.SqliteErrorCode & 0xFF) switch
        {
            13 => StoreErrorKind.DiskFull,              // SQLITE_FULL
            10 or 14 => StoreErrorKind.IoError,         // SQLITE_IOERR, SQLITE_CANTOPEN
            11 or 26 => StoreErrorKind.Corrupt,         // SQLITE_CORRUPT, SQLITE_NOTADB
            8 or 3 => StoreErrorKind.ReadOnly,          // SQLITE_READONLY, SQLITE_PERM
            5 or 6 => StoreErrorKind.Busy,              // SQLITE_BUSY, SQLITE_LOCKED
            _ => StoreErrorKind.Other,
        }
        : e is IOException ? StoreErrorKind.IoError : StoreErrorKind.Other;

    private void Complete(IStoreCompletion completion, long token, StoreOutcome outcome)
    {
        try
        {
            completion.OnStoreCompleted(token, outcome);
        }
        catch (Exception e)
        {
            // One faulty caller must not stop the writer, or every other caller would wait forever.
            PersistenceLog.CompletionFailed(_logger, e);
        }
    }

    private void PrepareStatements(SqliteConnection connection) => _sql = new Statements(connection);

    private void DisposeStatements() => _sql?.Dispose();

    /// <summary>The writer's statements, prepared once and re-bound for every operation.</summary>
    private sealed class Statements : IDisposable
    {
        private readonly List<SqliteCommand> _all = [];

        public Statements(SqliteConnection c)
        {
            Begin = Create(c, "BEGIN IMMEDIATE");
            Commit = Create(c, "COMMIT");
            Rollback = Create(c, "ROLLBACK");
            UpsertSession = Create(c, """
                INSERT INTO session (client_id, expiry_interval, disconnected_at, owner) VALUES ($c, $e, $t, $o)
                ON CONFLICT (client_id) DO UPDATE SET expiry_interval = excluded.expiry_interval, disconnected_at = excluded.disconnected_at,
                    owner = excluded.owner
                """, "$c", "$e", "$t", "$o");
            DeleteSubscriptions = Create(c, "DELETE FROM subscription WHERE client_id = $c", "$c");
            DeleteInboundAll = Create(c, "DELETE FROM inbound_qos2 WHERE client_id = $c", "$c");
            DeleteQueue = Create(c, "DELETE FROM session_message WHERE client_id = $c RETURNING message_id", "$c");
            DeleteSession = Create(c, "DELETE FROM session WHERE client_id = $c", "$c");
            UpsertSubscription = Create(c, "INSERT OR REPLACE INTO subscription (client_id, filter, options, subscription_id) VALUES ($c, $f, $o, $i)",
                "$c", "$f", "$o", "$i");
            DeleteSubscription = Create(c, "DELETE FROM subscription WHERE client_id = $c AND filter = $f", "$c", "$f");
            InsertMessage = Create(c, """
                INSERT OR IGNORE INTO message (id, topic, payload, qos, retain, properties, expiry_interval, received_at)
                VALUES ($id, $t, $p, $q, $r, $pr, $e, $at)
                """, "$id", "$t", "$p", "$q", "$r", "$pr", "$e", "$at");
            InsertQueued = Create(c, """
                INSERT OR REPLACE INTO session_message (client_id, sequence, message_id, qos, retain, subscription_ids, packet_id, released)
                VALUES ($c, $s, $m, $q, $r, $i, NULL, 0)
                """, "$c", "$s", "$m", "$q", "$r", "$i");
            MarkInflight = Create(c, "UPDATE session_message SET packet_id = $p WHERE client_id = $c AND sequence = $s", "$c", "$s", "$p");
            MarkReleased = Create(c, "UPDATE session_message SET released = 1 WHERE client_id = $c AND sequence = $s", "$c", "$s");
            RemoveOutbound = Create(c, "DELETE FROM session_message WHERE client_id = $c AND sequence = $s RETURNING message_id", "$c", "$s");
            CollectMessage = Create(c, "DELETE FROM message WHERE id = $m AND NOT EXISTS (SELECT 1 FROM session_message WHERE message_id = $m)", "$m");
            AddInbound = Create(c, "INSERT OR IGNORE INTO inbound_qos2 (client_id, packet_id) VALUES ($c, $p)", "$c", "$p");
            RemoveInbound = Create(c, "DELETE FROM inbound_qos2 WHERE client_id = $c AND packet_id = $p", "$c", "$p");
            SetRetained = Create(c, """
                INSERT OR REPLACE INTO retained (topic, payload, qos, properties, expiry_interval, received_at) VALUES ($t, $p, $q, $pr, $e, $at)
                """, "$t", "$p", "$q", "$pr", "$e", "$at");
            ClearRetained = Create(c, "DELETE FROM retained WHERE topic = $t", "$t");
            SaveWill = Create(c, """
                INSERT OR REPLACE INTO will (client_id, topic, payload, qos, retain, properties, expiry_interval, due_at)
                VALUES ($c, $t, $p, $q, $r, $pr, $e, $due)
                """, "$c", "$t", "$p", "$q", "$r", "$pr", "$e", "$due");
            DeleteWill = Create(c, "DELETE FROM will WHERE client_id = $c", "$c");
        }

        public SqliteCommand Begin { get; }
        public SqliteCommand Commit { get; }
        public SqliteCommand Rollback { get; }
        public SqliteCommand UpsertSession { get; }
        public SqliteCommand DeleteSubscriptions { get; }
        public SqliteCommand DeleteInboundAll { get; }
        public SqliteCommand DeleteQueue { get; }
        public SqliteCommand DeleteSession { get; }
        public SqliteCommand UpsertSubscription { get; }
        public SqliteCommand DeleteSubscription { get; }
        public SqliteCommand InsertMessage { get; }
        public SqliteCommand InsertQueued { get; }
        public SqliteCommand MarkInflight { get; }
        public SqliteCommand MarkReleased { get; }
        public SqliteCommand RemoveOutbound { get; }
        public SqliteCommand CollectMessage { get; }
        public SqliteCommand AddInbound { get; }
        public SqliteCommand RemoveInbound { get; }
        public SqliteCommand SetRetained { get; }
        public SqliteCommand ClearRetained { get; }
        public SqliteCommand SaveWill { get; }
        public SqliteCommand DeleteWill { get; }

        private SqliteCommand Create(SqliteConnection connection, string sql, params string[] parameters)
        {
            var cmd = new SqliteCommand(sql, connection);
            foreach (string name in parameters)
            {
                cmd.Parameters.Add(new SqliteParameter { ParameterName = name });
            }
            _all.Add(cmd);
            return cmd;
        }

        public void Dispose()
        {
            foreach (var cmd in _all)
            {
                cmd.Dispose();
            }
        }
    }
}
