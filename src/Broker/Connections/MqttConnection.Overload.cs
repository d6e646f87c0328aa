using Broker.Connections.KeepAlive;
using Broker.Diagnostics;
using Broker.Protocol;
using Broker.Sessions;

namespace Broker.Connections;

/// <summary>
/// Overload, from both sides of a connection. As a publisher: when a message it published put a reading subscriber's
/// queue past its high watermark, the connection stops reading its socket (TCP slows the client) until that queue
/// drains below its low watermark. As a subscriber: once its socket has taken nothing for
/// <c>Broker:Limits:StalledAfterMilliseconds</c> while output waits, it counts as stalled (nobody waits for it, its
/// QoS 0 is dropped, its queue keeps the newest); after <c>Broker:Limits:SlowConsumerSeconds</c> it is disconnected.
/// A client that keeps reading is never disconnected for the length of its queue. See docs/overload.md.
/// </summary>
internal sealed partial class MqttConnection : IBackPressureWaiter
{
    private static readonly TimeSpan DropLogInterval = TimeSpan.FromSeconds(10);

    // Set when the stall watch expired with output still waiting; cleared by the next byte the kernel takes.
    private volatile bool _stalled;

    /// <inheritdoc cref="IDeliveryTarget.IsStalled"/>
    public bool IsStalled => _stalled;

    /// <summary>The publisher side: wait (not read) until <paramref name="congested"/> drains.</summary>
    private void WaitFor(Session congested)
    {
        // Held first, then registered: a release that comes at once then finds the hold to lift.
        Hold(HoldReason.BackPressure);
        if (!congested.TryAddWaiter(this, _services.Router.QueueLimits))
        {
            Release(HoldReason.BackPressure);
        }
    }

    void IBackPressureWaiter.ResumeFromBackPressure() => Release(HoldReason.BackPressure);

    /// <summary>
    /// The kernel's send buffer for this client is full: watch for a stall. The watch is a wheel entry made the first
    /// time a client falls behind (an idle or keeping-up client never has one); each byte taken counts as activity.
    /// </summary>
    private void WatchForStall()
    {
        var extras = Extras;
        if (!extras.StallWatchArmed)
        {
            extras.StallWatch = ArmWatch(extras.StallWatch, DeadlineKind.SendStall, TimeSpan.FromMilliseconds(_services.Limits.StalledAfterMilliseconds));
            extras.StallWatchArmed = true;
        }
    }

    /// <summary>
    /// Arms a watch of this connection on the wheel: re-arms the entry it has, or registers a new one when there is
    /// none or the old one has expired (a delivered expiry cannot be re-armed, not even from its own callback).
    /// </summary>
    private KeepAliveDeadline ArmWatch(KeepAliveDeadline? watch, DeadlineKind kind, TimeSpan timeout)
    {
        if (watch is not null && _services.Wheel.Rearm(watch, kind, timeout))
        {
            return watch;
        }
        return _services.Wheel.Register(this, kind, timeout);
    }

    /// <summary>The kernel took bytes, or the client acknowledged a message: it consumes.</summary>
    private void OnSendProgress()
    {
        if (_extras is { StallWatchArmed: true } extras)
        {
            extras.StallWatch!.Touch();
            if (_stalled)
            {
                _stalled = false;
                Diagnostics.BrokerLog.ClientReadsAgain(_services.Logger, LogClientId);
            }
        }
    }

    /// <summary>Everything written is in the kernel: no stall to watch.</summary>
    private void OnOutputDrained()
    {
        if (_extras is { StallWatchArmed: true } extras)
        {
            extras.StallWatchArmed = false;
            _stalled = false;
            _services.Wheel.Rearm(extras.StallWatch!, DeadlineKind.SendStall, TimeSpan.Zero);
        }
    }

    /// <summary>The stall watch expired: first the client counts as stalled, then, if it still took nothing, it goes.</summary>
    private void OnStallWatchExpired()
    {
        var extras = _extras!;
        if (IsEnded || (Volatile.Read(ref _flushState) == FlushIdle && (_session?.PendingCount ?? 0) == 0))
        {
            extras.StallWatchArmed = false;
            return;
        }
        var stalledAfter = TimeSpan.FromMilliseconds(_services.Limits.StalledAfterMilliseconds);
        if (!_stalled)
        {
            _stalled = true;
            Diagnostics.BrokerLog.ClientStalled(_services.Logger, LogClientId, stalledAfter.TotalSeconds, PendingOutputBytes, _session?.PendingCount ?? 0);
            // Nobody waits for a client that does not read.
            _session?.ReleaseWaiters();
            extras.StallWatch = ArmWatch(extras.StallWatch, DeadlineKind.SendStall,
                TimeSpan.FromSeconds(_services.Limits.SlowConsumerSeconds) - stalledAfter);
            return;
        }
        extras.StallWatchArmed = false;
        int seconds = _services.Limits.SlowConsumerSeconds;
        Diagnostics.BrokerLog.SlowConsumer(_services.Logger, LogClientId, seconds, _session?.PendingCount ?? 0);
        // Its output is stuck: a DISCONNECT could not get through, so it is reset.
        End(DisconnectCause.SlowConsumer, $"took no data for {seconds}s");
    }

    /// <inheritdoc cref="IDeliveryTarget.OnMessagesDropped"/>
    public void OnMessagesDropped(DropReason reason, int count)
    {
        var extras = Extras;
        long now = _services.Time.GetTimestamp();
        bool log;
        lock (extras)
        {
            if (reason == DropReason.QoS0Congestion)
            {
                extras.DroppedQoS0 += count;
            }
            else
            {
                extras.DroppedQueued += count;
            }
            log = extras.LastDropLog == 0 || _services.Time.GetElapsedTime(extras.LastDropLog, now) >= DropLogInterval;
            if (log)
            {
                extras.LastDropLog = now;
            }
        }
        if (log)
        {
            long qos0, queued;
            lock (extras)
            {
                (qos0, queued) = (extras.DroppedQoS0, extras.DroppedQueued);
                extras.DroppedQoS0 = extras.DroppedQueued = 0;
            }
            Diagnostics.BrokerLog.MessagesDropped(_services.Logger, LogClientId, qos0, queued, DropLogInterval.TotalSeconds);
        }
    }
}
