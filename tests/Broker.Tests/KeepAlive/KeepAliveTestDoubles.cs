using Broker.Connections.KeepAlive;
using Microsoft.Extensions.Time.Testing;

namespace Broker.Tests.KeepAlive;

internal sealed class RecordingTarget : IKeepAliveTarget
{
    private readonly List<DeadlineExpiry> _expiries = [];

    public bool HasUnreadInput { get; set; }

    /// <summary>The broker holds this client back (it does not read it): throttled, not silent.</summary>
    public bool IsHeldBack { get; set; }

    public bool ThrowOnExpiry { get; init; }

    public int HasUnreadInputQueries { get; private set; }

    /// <summary>Runs inside the wheel's unread-input check: what the read loop does concurrently at that moment.</summary>
    public Action? WhenAskedForUnreadInput { get; set; }

    public IReadOnlyList<DeadlineExpiry> Expiries
    {
        get
        {
            lock (_expiries)
            {
                return [.. _expiries];
            }
        }
    }

    public bool Expired => Expiries.Count > 0;

    bool IKeepAliveTarget.HasUnreadInput
    {
        get
        {
            HasUnreadInputQueries++;
            WhenAskedForUnreadInput?.Invoke();
            return HasUnreadInput;
        }
    }

    bool IKeepAliveTarget.IsHeldBack => IsHeldBack;

    public void OnDeadlineExpired(in DeadlineExpiry expiry)
    {
        lock (_expiries)
        {
            _expiries.Add(expiry);
        }

        if (ThrowOnExpiry)
        {
            throw new InvalidOperationException("target failed");
        }
    }
}

/// <summary>Keeps batches until the test runs them, recording their sizes.</summary>
internal sealed class HeldDispatcher : IExpiryDispatcher
{
    public List<ExpiryBatch> Held { get; } = [];

    public List<int> BatchSizes { get; } = [];

    public void Dispatch(ExpiryBatch batch)
    {
        BatchSizes.Add(batch.Count);
        Held.Add(batch);
    }

    public void RunAll()
    {
        foreach (var batch in Held)
        {
            batch.Execute();
        }

        Held.Clear();
    }
}

/// <summary>A fake clock and a wheel driven the way the heartbeat drives it: one Advance per tick.</summary>
internal sealed class WheelHarness : IDisposable
{
    public WheelHarness(int tickMilliseconds = 100, IExpiryDispatcher? dispatcher = null, int slotCount = TimerWheel.DefaultSlotCount, int batchSize = TimerWheel.DefaultBatchSize)
    {
        Time = new FakeTimeProvider();
        Tick = TimeSpan.FromMilliseconds(tickMilliseconds);
        Wheel = new TimerWheel(Time, Tick, dispatcher ?? InlineExpiryDispatcher.Instance, slotCount, batchSize);
        Start = Time.GetTimestamp();
    }

    public FakeTimeProvider Time { get; }

    public TimerWheel Wheel { get; }

    public TimeSpan Tick { get; }

    public long Start { get; }

    /// <summary>The smallest step of the clock (one timestamp unit).</summary>
    public TimeSpan Unit => TimeSpan.FromTicks(TimeSpan.TicksPerSecond / Time.TimestampFrequency);

    /// <summary>Time since the harness was created.</summary>
    public TimeSpan Elapsed => Time.GetElapsedTime(Start);

    /// <summary>Moves the clock to <paramref name="sinceStart"/>, calling Advance at every tick boundary on the way and at the end.</summary>
    public int RunUntil(TimeSpan sinceStart)
    {
        int expired = 0;
        while (Elapsed < sinceStart)
        {
            var nextBoundary = TimeSpan.FromTicks(((Elapsed.Ticks / Tick.Ticks) + 1) * Tick.Ticks);
            Time.Advance((nextBoundary < sinceStart ? nextBoundary : sinceStart) - Elapsed);
            expired += Wheel.Advance();
        }

        return expired;
    }

    /// <summary>Jumps the clock without advancing the wheel (a stall), then advances once.</summary>
    public int JumpTo(TimeSpan sinceStart)
    {
        Time.Advance(sinceStart - Elapsed);
        return Wheel.Advance();
    }

    public void Dispose() => Wheel.Dispose();
}
