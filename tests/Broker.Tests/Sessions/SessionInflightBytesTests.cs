using Broker.Diagnostics;
using Broker.Protocol;
using Broker.Routing;
using Broker.Sessions;
using Xunit;

namespace Broker.Tests.Sessions;

/// <summary>Broker:Limits:MaxInflightBytes: the in-flight window in bytes, beside its count (issue #11, "in-flight bytes").</summary>
public sealed class SessionInflightBytesTests
{
    // Each message below counts 64 + 1 (topic) + 1,000 (payload) = 1,065 bytes; three fit in 3,200, a fourth does not.
    private static readonly QueueLimits Limits = new(MaxMessages: 100, MaxBytes: 1_000_000, MaxInflightBytes: 3_200);

    [Fact]
    public void QoS_1_messages_are_sent_while_their_bytes_fit_and_the_next_waits_for_an_acknowledgement()
    {
        var (session, owner) = Online();
        for (int i = 0; i < 5; i++)
        {
            session.Enqueue(Outbound(1000, QualityOfService.AtLeastOnce), Limits, out _);
        }
        var ids = new List<ushort>();
        for (int i = 0; i < 3; i++)
        {
            Assert.True(session.TryTakeNext(owner, inflightWindow: 100, Limits, out _, out ushort id));
            ids.Add(id);
        }
        Assert.Equal(3 * 1065, session.InflightBytes);
        Assert.False(session.TryTakeNext(owner, inflightWindow: 100, Limits, out _, out _));
        Assert.Equal(2, session.PendingCount);

        Assert.True(session.Complete(ids[0], QualityOfService.AtLeastOnce));
        Assert.Equal(2 * 1065, session.InflightBytes);
        Assert.True(session.TryTakeNext(owner, inflightWindow: 100, Limits, out _, out _));
        Assert.False(session.TryTakeNext(owner, inflightWindow: 100, Limits, out _, out _));
    }

    [Fact]
    public void One_message_larger_than_the_limit_is_still_sent_alone()
    {
        var (session, owner) = Online();
        session.Enqueue(Outbound(10_000, QualityOfService.AtLeastOnce), Limits, out _);
        session.Enqueue(Outbound(10, QualityOfService.AtLeastOnce), Limits, out _);
        Assert.True(session.TryTakeNext(owner, inflightWindow: 100, Limits, out _, out ushort id));
        Assert.False(session.TryTakeNext(owner, inflightWindow: 100, Limits, out _, out _));
        session.Drop(id);
        Assert.Equal(0, session.InflightBytes);
        Assert.True(session.TryTakeNext(owner, inflightWindow: 100, Limits, out _, out _));
    }

    [Fact]
    public void QoS_0_is_not_in_flight_and_zero_means_no_limit_in_bytes()
    {
        var (session, owner) = Online();
        var unlimited = Limits with { MaxInflightBytes = 0 };
        for (int i = 0; i < 10; i++)
        {
            session.Enqueue(Outbound(1000, i % 2 == 0 ? QualityOfService.AtMostOnce : QualityOfService.AtLeastOnce), unlimited, out _);
        }
        for (int i = 0; i < 10; i++)
        {
            Assert.True(session.TryTakeNext(owner, inflightWindow: 100, unlimited, out _, out _));
        }
        Assert.Equal(5 * 1065, session.InflightBytes);
    }

    private static (Session, IDeliveryTarget) Online()
    {
        var session = new Session("client");
        var owner = new Reader();
        session.Bind(owner);
        return (session, owner);
    }

    private static OutboundMessage Outbound(int payload, QualityOfService qos) => new(new ApplicationMessage
    {
        Topic = "t",
        TopicUtf8 = "t"u8.ToArray(),
        Payload = new byte[payload],
        QoS = qos,
    }, qos, false, null);

    private sealed class Reader : IDeliveryTarget
    {
        public bool IsStalled => false;

        public bool IsHeldBack => false;

        public void NotifyPending()
        {
        }

        public void OnMessagesDropped(DropReason reason, int count)
        {
        }
    }
}
