using Broker.Diagnostics;
using Broker.Protocol;
using Broker.Routing;
using Broker.Sessions;
using Xunit;

namespace Broker.Tests.Sessions;

/// <summary>The queue policy of docs/overload.md, one rule per test, on both sides of each limit.</summary>
public sealed class SessionQueueTests
{
    private static readonly QueueLimits Limits = new(MaxMessages: 8, MaxBytes: 1_000_000);

    [Fact]
    public void A_reading_client_past_half_its_limit_makes_the_publisher_wait_and_drains_it_below_a_quarter()
    {
        var session = Online(new FakeClient());
        for (int i = 0; i < 4; i++)
        {
            Assert.Equal(EnqueueResult.Queued, Enqueue(session, i, QualityOfService.AtLeastOnce));
        }
        Assert.Equal(EnqueueResult.QueuedAboveHighWatermark, Enqueue(session, 4, QualityOfService.AtLeastOnce));

        var publisher = new FakePublisher();
        Assert.True(session.TryAddWaiter(publisher, Limits));
        // 5 queued: taking 2 leaves 3 (above the low watermark of 2), the third take leaves 2: released.
        Take(session, 2);
        Assert.Equal(0, publisher.Resumed);
        Take(session, 2);
        Assert.Equal(1, publisher.Resumed);
        Assert.False(session.TryAddWaiter(publisher, Limits));
    }

    [Fact]
    public void A_reading_client_never_loses_QoS_1_up_to_twice_the_limit_then_the_oldest_goes()
    {
        var session = Online(new FakeClient());
        for (int i = 0; i < 16; i++)
        {
            Assert.NotEqual(EnqueueResult.QueuedDroppingOldest, Enqueue(session, i, QualityOfService.AtLeastOnce));
        }
        Assert.Equal(EnqueueResult.QueuedDroppingOldest, Enqueue(session, 16, QualityOfService.AtLeastOnce, out int dropped));
        Assert.Equal(1, dropped);
        Assert.Equal(1, FirstQueued(session));
    }

    [Fact]
    public void A_stalled_client_gets_no_QoS_0_keeps_the_newest_QoS_1_and_nobody_waits_for_it()
    {
        var client = new FakeClient { IsStalled = true };
        var session = Online(client);
        Assert.Equal(EnqueueResult.DroppedQoS0, Enqueue(session, 0, QualityOfService.AtMostOnce));
        for (int i = 1; i <= 8; i++)
        {
            Assert.Equal(EnqueueResult.Queued, Enqueue(session, i, QualityOfService.AtLeastOnce));
        }
        Assert.Equal(EnqueueResult.QueuedDroppingOldest, Enqueue(session, 9, QualityOfService.AtLeastOnce));
        Assert.Equal(8, session.PendingCount);
        Assert.Equal(2, FirstQueued(session));
        Assert.False(session.TryAddWaiter(new FakePublisher(), Limits));
    }

    [Fact]
    public void The_byte_limit_counts_like_the_message_limit()
    {
        var limits = new QueueLimits(MaxMessages: 1000, MaxBytes: 3 * (64 + 1 + 100));
        var session = Online(new FakeClient { IsStalled = true });
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal(EnqueueResult.Queued, session.Enqueue(Outbound(i, QualityOfService.AtLeastOnce), limits, out _));
        }
        Assert.Equal(EnqueueResult.QueuedDroppingOldest, session.Enqueue(Outbound(3, QualityOfService.AtLeastOnce), limits, out int dropped));
        Assert.Equal(1, dropped);
        Assert.Equal(3 * (64 + 1 + 100), session.PendingBytes);
    }

    [Fact]
    public void Retained_replays_stop_at_the_limit_and_never_push_out_what_was_published()
    {
        var session = Online(new FakeClient());
        for (int i = 0; i < 8; i++)
        {
            Assert.NotEqual(EnqueueResult.DroppedRetainedReplay, session.Enqueue(Outbound(i, QualityOfService.AtLeastOnce), Limits, out _, retainedReplay: true));
        }
        Assert.Equal(EnqueueResult.DroppedRetainedReplay, session.Enqueue(Outbound(8, QualityOfService.AtLeastOnce), Limits, out _, retainedReplay: true));
        Assert.Equal(0, FirstQueued(session));
    }

    [Fact]
    public void A_held_back_client_makes_nobody_wait_and_an_offline_session_releases_its_waiters()
    {
        var held = new FakeClient { IsHeldBack = true };
        var session = Online(held);
        for (int i = 0; i < 6; i++)
        {
            Assert.NotEqual(EnqueueResult.QueuedAboveHighWatermark, Enqueue(session, i, QualityOfService.AtLeastOnce));
        }

        var reading = new FakeClient();
        var other = Online(reading);
        for (int i = 0; i < 6; i++)
        {
            Enqueue(other, i, QualityOfService.AtLeastOnce);
        }
        var publisher = new FakePublisher();
        Assert.True(other.TryAddWaiter(publisher, Limits));
        Assert.True(other.Unbind(reading, now: 0));
        Assert.Equal(1, publisher.Resumed);
        // Offline: QoS 0 is not kept; QoS 1 is, up to the limit.
        Assert.Equal(EnqueueResult.DroppedQoS0, Enqueue(other, 9, QualityOfService.AtMostOnce));
    }

    private static Session Online(FakeClient client)
    {
        var session = new Session("client");
        session.Bind(client);
        return session;
    }

    private static EnqueueResult Enqueue(Session session, int n, QualityOfService qos) => Enqueue(session, n, qos, out _);

    private static EnqueueResult Enqueue(Session session, int n, QualityOfService qos, out int dropped) =>
        session.Enqueue(Outbound(n, qos), Limits, out dropped);

    private static OutboundMessage Outbound(int n, QualityOfService qos) => new(new ApplicationMessage
    {
        Topic = "t",
        TopicUtf8 = "t"u8.ToArray(),
        Payload = BitConverter.GetBytes(n).Concat(new byte[96]).ToArray(),
        QoS = qos,
    }, qos, false, null);

    private static void Take(Session session, int count)
    {
        var owner = (IDeliveryTarget)session.Owner!;
        for (int i = 0; i < count; i++)
        {
            Assert.True(session.TryTakeNext(owner, inflightWindow: 1000, Limits, out _, out _));
        }
    }

    private static int FirstQueued(Session session)
    {
        Assert.True(session.TryTakeNext(session.Owner!, inflightWindow: 1000, Limits, out var message, out _));
        return BitConverter.ToInt32(message.Message.Payload.Span);
    }

    private sealed class FakeClient : IDeliveryTarget
    {
        public bool IsStalled { get; set; }

        public bool IsHeldBack { get; set; }

        public void NotifyPending()
        {
        }

        public void OnMessagesDropped(DropReason reason, int count)
        {
        }
    }

    private sealed class FakePublisher : IBackPressureWaiter
    {
        public int Resumed { get; private set; }

        public void ResumeFromBackPressure() => Resumed++;
    }
}
