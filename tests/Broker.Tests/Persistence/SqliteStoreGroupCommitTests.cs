using Broker.Persistence;
using Microsoft.Data.Sqlite;
using Xunit;

namespace Broker.Tests.Persistence;

/// <summary>Operations share transactions; a completion is called only once its operation is on disk.</summary>
public sealed class SqliteStoreGroupCommitTests : IDisposable
{
    private readonly StoreRig _rig = new();

    public void Dispose() => _rig.Dispose();

    [Fact]
    public async Task Operations_within_the_flush_interval_share_one_transaction_and_complete_after_it_in_order()
    {
        var (store, _) = _rig.Open(flushIntervalMs: 5);
        long visibleAtFirstCompletion = -1;
        var done = new RecordingCompletion
        {
            // Read by another connection from inside the callback: the data is committed before anyone is told.
            OnCompleted = token =>
            {
                if (token == 0)
                {
                    visibleAtFirstCompletion = _rig.Count("session");
                }
            },
        };
        for (int i = 0; i < 100; i++)
        {
            store.Append(StoreOperation.UpsertSession($"c{i}", 60, null), done, i);
        }
        Assert.Equal(100, store.PendingOperations);

        _rig.Time.Advance(TimeSpan.FromMilliseconds(4));
        Assert.Equal(100, store.PendingOperations); // the interval has not passed: nothing was taken

        _rig.Time.Advance(TimeSpan.FromMilliseconds(1));
        await done.WaitForAsync(100);

        Assert.Equal(1, store.CommittedBatches);
        Assert.Equal(100, visibleAtFirstCompletion);
        Assert.Equal(Enumerable.Range(0, 100).Select(i => ((long)i, StoreOutcome.Durable)), done.Seen);
        Assert.Equal(0, store.PendingOperations);
    }

    [Fact]
    public async Task A_full_batch_is_committed_without_waiting_for_the_interval()
    {
        var (store, _) = _rig.Open(flushIntervalMs: 1000, maxBatchSize: 10);
        var done = new RecordingCompletion();
        for (int i = 0; i < 10; i++)
        {
            store.Append(StoreOperation.UpsertSession($"c{i}", 60, null), done, i);
        }
        await done.WaitForAsync(10); // the fake clock never moves

        Assert.Equal(1, store.CommittedBatches);
        Assert.Equal(10, _rig.Count("session"));
    }

    [Fact]
    public async Task A_flush_commits_what_is_pending_without_waiting_for_the_interval()
    {
        var (store, _) = _rig.Open(flushIntervalMs: 1000);
        var done = new RecordingCompletion();
        store.Append(StoreOperation.UpsertSession("a", 60, null), done, 1);
        store.Append(StoreOperation.UpsertSession("b", 60, null));
        store.Append(StoreOperation.Flush(), done, 2);
        await done.WaitForAsync(2);

        Assert.Equal([(1L, StoreOutcome.Durable), (2L, StoreOutcome.Durable)], done.Seen);
        Assert.Equal(2, _rig.Count("session"));
    }

    [Fact]
    public async Task A_barrier_completes_with_its_batch_without_shortening_the_interval()
    {
        var (store, _) = _rig.Open(flushIntervalMs: 5);
        var done = new RecordingCompletion();
        store.Append(StoreOperation.UpsertSession("a", 60, null));
        store.Append(StoreOperation.UpsertSession("b", 60, null));
        store.Append(StoreOperation.Barrier(), done, 1);

        _rig.Time.Advance(TimeSpan.FromMilliseconds(4));
        Assert.Equal(3, store.PendingOperations);

        _rig.Time.Advance(TimeSpan.FromMilliseconds(1));
        await done.WaitForAsync(1);
        Assert.Equal(2, _rig.Count("session"));
        Assert.Equal(1, store.CommittedBatches);
    }

    [Fact]
    public async Task Operations_appended_during_a_commit_share_the_next_one()
    {
        var (store, _) = _rig.Open(flushIntervalMs: 0);
        var cancelled = TestContext.Current.CancellationToken;
        using var inCallback = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        // The first completion holds the writer (as a slow fsync would) while 50 more operations arrive.
        var first = new RecordingCompletion
        {
            OnCompleted = _ =>
            {
                inCallback.Set();
                release.Wait(StoreRig.Safety, cancelled);
            },
        };
        store.Append(StoreOperation.UpsertSession("first", 60, null), first, 0);
        Assert.True(inCallback.Wait(StoreRig.Safety, cancelled));
        var rest = new RecordingCompletion();
        for (int i = 0; i < 50; i++)
        {
            store.Append(StoreOperation.UpsertSession($"c{i}", 60, null), rest, i);
        }
        release.Set();
        await rest.WaitForAsync(50);

        Assert.Equal(2, store.CommittedBatches);
    }

    [Fact]
    public async Task A_store_behind_by_more_than_the_limit_says_so_until_it_has_caught_up()
    {
        var (store, _) = _rig.Open(flushIntervalMs: 0, maxBatchSize: 4, maxPending: 8);
        var cancelled = TestContext.Current.CancellationToken;
        using var inCallback = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        var slow = new RecordingCompletion
        {
            OnCompleted = _ =>
            {
                inCallback.Set();
                release.Wait(StoreRig.Safety, cancelled);
            },
        };
        store.Append(StoreOperation.UpsertSession("first", 60, null), slow, 0);
        Assert.True(inCallback.Wait(StoreRig.Safety, cancelled));
        Assert.False(store.IsBehind);
        Assert.True(store.WhenCaughtUp().IsCompleted);

        var rest = new RecordingCompletion();
        for (int i = 0; i < 8; i++)
        {
            store.Append(StoreOperation.UpsertSession($"c{i}", 60, null), rest, i);
        }
        Assert.True(store.IsBehind);
        var caughtUp = store.WhenCaughtUp();
        Assert.False(caughtUp.IsCompleted);
        // Appends still succeed while behind: work already taken must be finished.
        store.Append(StoreOperation.UpsertSession("late", 60, null), rest, 8);

        release.Set();
        await caughtUp.WaitAsync(StoreRig.Safety, TestContext.Current.CancellationToken);
        await rest.WaitForAsync(9);
        Assert.False(store.IsBehind);
        Assert.Equal(10, _rig.Count("session"));
    }

    [Fact]
    public async Task Disposing_commits_what_is_pending_and_reports_it_durable()
    {
        var (store, _) = _rig.Open(flushIntervalMs: 1000);
        var done = new RecordingCompletion();
        store.Append(StoreOperation.UpsertSession("a", 60, null), done, 1);
        store.Dispose(); // the fake clock never reached the interval

        await done.WaitForAsync(1);
        Assert.Equal([(1L, StoreOutcome.Durable)], done.Seen);
        Assert.Equal("a", Assert.Single(_rig.Create().Open().Sessions).ClientId);
    }

    [Fact]
    public void An_append_after_disposal_is_reported_failed_at_once()
    {
        var (store, _) = _rig.Open();
        store.Dispose();
        var done = new RecordingCompletion();
        store.Append(StoreOperation.UpsertSession("late", 60, null), done, 7);
        Assert.Equal([(7L, StoreOutcome.Failed)], done.Seen);
    }

    [Fact]
    public void Appending_before_open_is_a_programming_error()
    {
        var store = _rig.Create();
        Assert.Throws<InvalidOperationException>(() => store.Append(StoreOperation.Flush()));
        Assert.Throws<InvalidOperationException>(() => store.NewMessageId());
    }

    [Fact]
    public async Task A_completion_that_throws_does_not_stop_the_writer()
    {
        var (store, _) = _rig.Open();
        var faulty = new RecordingCompletion { OnCompleted = _ => throw new InvalidOperationException("caller bug") };
        store.Append(StoreOperation.UpsertSession("a", 60, null), faulty, 1);
        await StoreRig.FlushAsync(store);
        Assert.Equal(1, _rig.Count("session"));
    }

    [Fact]
    public async Task The_database_is_left_in_wal_mode()
    {
        var (store, _) = _rig.Open();
        await StoreRig.FlushAsync(store);
        using var connection = _rig.OpenRaw();
        using var mode = new SqliteCommand("PRAGMA journal_mode", connection);
        Assert.Equal("wal", mode.ExecuteScalar());
    }
}
