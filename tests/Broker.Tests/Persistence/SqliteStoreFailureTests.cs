using System.Diagnostics.Metrics;
using Broker.Persistence;
using Broker.Protocol;
using Microsoft.Data.Sqlite;
using Xunit;

namespace Broker.Tests.Persistence;

/// <summary>
/// An unusable store stops start-up with a message naming the file (never an empty start); a full disk answers
/// completions failed (never durable) and keeps retrying; a crash keeps exactly what was reported durable.
/// </summary>
public sealed class SqliteStoreFailureTests : IDisposable
{
    private readonly StoreRig _rig = new();

    public void Dispose() => _rig.Dispose();

    [Fact]
    public void A_file_that_is_not_a_database_stops_start_up_and_is_left_untouched()
    {
        Directory.CreateDirectory(_rig.Directory);
        byte[] garbage = [.. Enumerable.Range(0, 8192).Select(i => (byte)(i * 7 + 3))];
        File.WriteAllBytes(_rig.DatabasePath, garbage);

        var ex = Assert.Throws<StoreUnreadableException>(() => _rig.Create().Open());

        Assert.Equal(StoreUnreadableReason.NotADatabase, ex.Reason);
        Assert.Equal(_rig.DatabasePath, ex.DatabasePath);
        Assert.Contains(_rig.DatabasePath, ex.Message);
        Assert.Contains("is not a SQLite database", ex.Message);
        Assert.Contains($"mv \"{_rig.DatabasePath}\" \"{_rig.DatabasePath}.bad\"", ex.Message);
        Assert.Contains("Broker:Persistence:Enabled=false", ex.Message);
        Assert.Equal(garbage, File.ReadAllBytes(_rig.DatabasePath));
    }

    [Fact]
    public async Task Damaged_pages_fail_the_quick_check_and_stop_start_up()
    {
        var (store, _) = _rig.Open();
        for (int i = 0; i < 200; i++)
        {
            store.Append(StoreOperation.SetRetained(_rig.Message(store, $"r/{i}", new byte[1000])));
        }
        await StoreRig.FlushAsync(store);
        store.Dispose();
        long length = new FileInfo(_rig.DatabasePath).Length;
        Assert.True(length > 20 * 4096);
        using (var file = new FileStream(_rig.DatabasePath, FileMode.Open, FileAccess.Write))
        {
            // Pages 3 to 10 (4 KiB pages) overwritten: b-tree pages of the retained table.
            file.Position = 2 * 4096;
            file.Write(Enumerable.Repeat((byte)0xA5, 8 * 4096).ToArray());
        }

        var ex = Assert.Throws<StoreUnreadableException>(() => _rig.Create().Open());

        Assert.Equal(StoreUnreadableReason.Corrupt, ex.Reason);
        Assert.Contains("is damaged", ex.Message);
    }

    [Fact]
    public async Task A_store_of_another_schema_version_stops_start_up()
    {
        var (store, _) = _rig.Open();
        await StoreRig.FlushAsync(store);
        store.Dispose();
        using (var raw = _rig.OpenRaw())
        {
            using var cmd = new SqliteCommand("PRAGMA user_version = 99", raw);
            cmd.ExecuteNonQuery();
        }

        var ex = Assert.Throws<StoreUnreadableException>(() => _rig.Create().Open());

        Assert.Equal(StoreUnreadableReason.SchemaVersion, ex.Reason);
        Assert.Contains("schema version 99; this broker reads version 2 (a newer broker wrote it)", ex.Message);
    }

    [Fact]
    public async Task A_version_1_store_is_upgraded_in_place_its_sessions_kept_with_an_unknown_owner()
    {
        var (store, _) = _rig.Open();
        store.Append(StoreOperation.UpsertSession("old-device", 3600, _rig.Time.GetUtcNow(), "alice"));
        await StoreRig.FlushAsync(store);
        store.Dispose();
        // What a broker of schema version 1 left: the same tables without the session's owner.
        using (var raw = _rig.OpenRaw())
        {
            using var cmd = new SqliteCommand("ALTER TABLE session DROP COLUMN owner; PRAGMA user_version = 1", raw);
            cmd.ExecuteNonQuery();
        }

        var (upgraded, restored) = _rig.Open();

        var session = Assert.Single(restored.Sessions);
        Assert.Equal(("old-device", (string?)null, true), (session.ClientId, session.OwnerUserName, session.OwnerUnknown));
        upgraded.Append(StoreOperation.UpsertSession("old-device", 3600, _rig.Time.GetUtcNow(), "alice"));
        await StoreRig.FlushAsync(upgraded);
        var claimed = Assert.Single(_rig.Reopen(upgraded).Sessions);
        Assert.Equal(("alice", false), (claimed.OwnerUserName, claimed.OwnerUnknown));
        using (var raw = _rig.OpenRaw())
        {
            using var cmd = new SqliteCommand("PRAGMA user_version", raw);
            Assert.Equal(2L, cmd.ExecuteScalar());
        }
    }

    [Fact]
    public void Another_applications_database_is_not_taken_over()
    {
        Directory.CreateDirectory(_rig.Directory);
        using (var raw = _rig.OpenRaw())
        {
            using var cmd = new SqliteCommand("CREATE TABLE notes (text TEXT)", raw);
            cmd.ExecuteNonQuery();
        }

        var ex = Assert.Throws<StoreUnreadableException>(() => _rig.Create().Open());

        Assert.Equal(StoreUnreadableReason.ForeignDatabase, ex.Reason);
    }

    [Fact]
    public async Task A_missing_table_is_reported_as_damage()
    {
        var (store, _) = _rig.Open();
        await StoreRig.FlushAsync(store);
        store.Dispose();
        using (var raw = _rig.OpenRaw())
        {
            using var cmd = new SqliteCommand("DROP TABLE will", raw);
            cmd.ExecuteNonQuery();
        }

        var ex = Assert.Throws<StoreUnreadableException>(() => _rig.Create().Open());

        Assert.Equal(StoreUnreadableReason.Corrupt, ex.Reason);
        Assert.Contains("table 'will'", ex.Message);
    }

    [Fact]
    public void A_store_in_use_by_another_broker_is_refused_and_usable_once_released()
    {
        var (first, _) = _rig.Open();

        var ex = Assert.Throws<StoreUnreadableException>(() => _rig.Create().Open());
        Assert.Equal(StoreUnreadableReason.InUse, ex.Reason);

        first.Dispose();
        _rig.Create().Open();
    }

    [Fact]
    public void A_directory_that_cannot_be_created_stops_start_up()
    {
        Directory.CreateDirectory(_rig.Directory);
        string blocker = Path.Combine(_rig.Directory, "a-file");
        File.WriteAllText(blocker, "");

        var ex = Assert.Throws<StoreUnreadableException>(() => _rig.Create(directory: Path.Combine(blocker, "data")).Open());

        Assert.Equal(StoreUnreadableReason.Inaccessible, ex.Reason);
    }

    [Fact]
    public async Task After_a_crash_exactly_what_was_reported_durable_is_there()
    {
        var (store, _) = _rig.Open(flushIntervalMs: 1000);
        var durable = new RecordingCompletion();
        var message = _rig.Message(store, "t", [1, 2, 3]);
        store.Append(StoreOperation.UpsertSession("c", 600, null));
        store.Append(StoreOperation.Enqueue("c", 1, message, QualityOfService.AtLeastOnce, false, null), durable, 1);
        store.Append(StoreOperation.Flush());
        await durable.WaitForAsync(1);
        var pending = new RecordingCompletion();
        store.Append(StoreOperation.Enqueue("c", 2, message, QualityOfService.AtLeastOnce, false, null), pending, 2);

        // The files as a kill -9 would leave them now: the database and its write-ahead log, no clean close.
        string crashed = _rig.NewDirectory();
        Directory.CreateDirectory(crashed);
        foreach (string suffix in new[] { "", "-wal" })
        {
            if (File.Exists(_rig.DatabasePath + suffix))
            {
                File.Copy(_rig.DatabasePath + suffix, Path.Combine(crashed, SqliteSchema.FileName + suffix));
            }
        }
        Assert.Empty(pending.Seen);

        var restored = _rig.Create(directory: crashed).Open();

        var session = Assert.Single(restored.Sessions);
        Assert.True(session.WasConnected);
        Assert.Equal([1L], session.Queued.Select(q => q.Sequence));
        Assert.Equal([1, 2, 3], session.Queued[0].Message.Payload.ToArray());
    }

    [Fact]
    public async Task A_full_disk_answers_the_waiting_completions_failed_counts_the_error_retries_and_recovers_when_space_returns()
    {
        var (store, _) = _rig.Open();
        var errors = new List<string>();
        using var listener = ListenForErrors(errors);
        await StoreRig.FlushAsync(store);
        store.SetMaxPageCountForTest(PageCount());

        var done = new RecordingCompletion();
        store.Append(StoreOperation.SetRetained(_rig.Message(store, "big", new byte[256 * 1024])), done, 1);
        await done.WaitForAsync(1);
        // Told at once, not held until the disk recovers: the broker answers its client with an error.
        Assert.Equal([(1L, StoreOutcome.Failed)], done.Seen);
        Assert.True(SpinWait.SpinUntil(() => store.Health == StoreHealth.Retrying, StoreRig.Safety));
        Assert.Contains("kind=disk_full", errors);
        Assert.Equal(1, store.PendingOperations);

        // While it fails, later appends are answered failed at once, and still written in order by the retry.
        store.Append(StoreOperation.UpsertSession("later", 60, null), done, 2);
        Assert.Equal([(1L, StoreOutcome.Failed), (2L, StoreOutcome.Failed)], done.Seen);

        store.SetMaxPageCountForTest(1_000_000);
        _rig.Time.Advance(TimeSpan.FromMilliseconds(100)); // the first retry is due after 100 ms
        Assert.True(SpinWait.SpinUntil(() => store.Health == StoreHealth.Healthy && store.PendingOperations == 0, StoreRig.Safety));

        // Healthy again: completions report durable again, and nothing was reported twice.
        var after = new RecordingCompletion();
        store.Append(StoreOperation.Flush(), after, 3);
        await after.WaitForAsync(1);
        Assert.Equal([(3L, StoreOutcome.Durable)], after.Seen);
        Assert.Equal(2, done.Seen.Count);
        var restored = _rig.Reopen(store);
        Assert.Equal("big", Assert.Single(restored.Retained).Topic);
        Assert.Equal("later", Assert.Single(restored.Sessions).ClientId);
    }

    [Fact]
    public async Task Stopping_while_the_disk_is_full_reports_the_unwritten_operations_failed_never_durable()
    {
        var (store, _) = _rig.Open();
        await StoreRig.FlushAsync(store);
        store.SetMaxPageCountForTest(PageCount());
        var done = new RecordingCompletion();
        store.Append(StoreOperation.SetRetained(_rig.Message(store, "big", new byte[256 * 1024])), done, 1);
        Assert.True(SpinWait.SpinUntil(() => store.Health == StoreHealth.Retrying, StoreRig.Safety));
        // Appended after the failing batch: it may not be reported durable even if it alone would fit.
        store.Append(StoreOperation.UpsertSession("small", 60, null), done, 2);
        store.Append(StoreOperation.UpsertSession("quiet", 60, null));

        store.Dispose();

        Assert.Equal([(1L, StoreOutcome.Failed), (2L, StoreOutcome.Failed)], done.Seen);
        var state = _rig.Create().Open();
        Assert.Empty(state.Retained);
        Assert.Empty(state.Sessions);
    }

    private long PageCount()
    {
        using var raw = _rig.OpenRaw();
        using var cmd = new SqliteCommand("PRAGMA page_count", raw);
        return (long)cmd.ExecuteScalar()!;
    }

    private MeterListener ListenForErrors(List<string> errors)
    {
        var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (ReferenceEquals(instrument.Meter, _rig.Metrics.Meter) && instrument.Name == "mqtt.persistence.errors")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, _, tags, _) =>
        {
            lock (errors)
            {
                errors.Add($"{tags[0].Key}={tags[0].Value}");
            }
        });
        listener.Start();
        return listener;
    }
}
