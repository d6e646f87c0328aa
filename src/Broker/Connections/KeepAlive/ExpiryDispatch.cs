namespace Broker.Connections.KeepAlive;

/// <summary>Runs expiry batches somewhere other than the wheel's own tick, so a mass expiry never delays it.</summary>
internal interface IExpiryDispatcher
{
    void Dispatch(ExpiryBatch batch);
}

/// <summary>Production dispatcher: one thread-pool work item per batch.</summary>
internal sealed class ThreadPoolExpiryDispatcher : IExpiryDispatcher
{
    public static readonly ThreadPoolExpiryDispatcher Instance = new();

    private ThreadPoolExpiryDispatcher()
    {
    }

    // Unsafe: the wheel's execution context (whatever AsyncLocals the heartbeat has) must not leak into
    // connection callbacks; preferLocal false so a large expiry spreads over all workers.
    public void Dispatch(ExpiryBatch batch) => ThreadPool.UnsafeQueueUserWorkItem(batch, preferLocal: false);
}

/// <summary>Runs each batch on the calling thread, during <see cref="TimerWheel.Advance"/>: for unit tests.</summary>
internal sealed class InlineExpiryDispatcher : IExpiryDispatcher
{
    public static readonly InlineExpiryDispatcher Instance = new();

    private InlineExpiryDispatcher()
    {
    }

    public void Dispatch(ExpiryBatch batch) => batch.Execute();
}

/// <summary>At most <see cref="TimerWheel.BatchSize"/> expiries, delivered together.</summary>
internal sealed class ExpiryBatch : IThreadPoolWorkItem
{
    private readonly TimerWheel _wheel;
    private readonly PendingExpiry[] _items;
    private int _executed;

    internal ExpiryBatch(TimerWheel wheel, PendingExpiry[] items)
    {
        _wheel = wheel;
        _items = items;
    }

    public int Count => _items.Length;

    /// <summary>Delivers the expiries that were not cancelled (Remove/Rearm) since the wheel collected them.</summary>
    public void Execute()
    {
        if (Interlocked.Exchange(ref _executed, 1) == 0)
        {
            _wheel.Deliver(_items);
        }
    }
}

internal readonly record struct PendingExpiry(KeepAliveDeadline Deadline, int Version, DeadlineExpiry Expiry);
