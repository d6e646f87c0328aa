using System.Collections;
using System.Reflection;

namespace Broker.Protocol.Tests;

/// <summary>Every packet type written with MqttPacketWriter and read back with MqttPacketReader, field by field.</summary>
public sealed class RoundTripTests
{
    public static TheoryData<MqttProtocolVersion, int> Samples()
    {
        var data = new TheoryData<MqttProtocolVersion, int>();
        foreach (var version in new[] { MqttProtocolVersion.V311, MqttProtocolVersion.V500 })
        {
            int count = SamplePackets.All(version).Count();
            for (int i = 0; i < count; i++)
            {
                data.Add(version, i);
            }
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Samples))]
    public void Written_packet_reads_back_equal(MqttProtocolVersion version, int index)
    {
        var expected = SamplePackets.All(version).ElementAt(index);

        var bytes = Codec.Encode(expected, version);
        var actual = Codec.Decode(bytes, version);

        PacketAssert.Equal(expected, actual);
        Assert.Equal(bytes, Codec.Encode(actual, version));
    }

    [Fact]
    public void Every_packet_type_is_covered_in_both_versions()
    {
        var v311 = SamplePackets.All(MqttProtocolVersion.V311).Select(p => p.Type).ToHashSet();
        var v500 = SamplePackets.All(MqttProtocolVersion.V500).Select(p => p.Type).ToHashSet();

        var all = Enum.GetValues<PacketType>().Where(t => t != PacketType.Reserved).ToHashSet();
        Assert.Equal(all, v500);
        all.Remove(PacketType.Auth);
        Assert.Equal(all, v311);
    }

    [Fact]
    public void Every_property_is_covered_by_the_5_0_samples()
    {
        var set = new HashSet<string>();
        foreach (var packet in SamplePackets.All(MqttProtocolVersion.V500))
        {
            foreach (var properties in PacketAssert.PropertiesOf(packet))
            {
                foreach (var p in PacketAssert.PropertyAccessors)
                {
                    if (p.GetValue(properties) is not null)
                    {
                        set.Add(p.Name);
                    }
                }
            }
        }

        Assert.Equal(PacketAssert.PropertyAccessors.Select(p => p.Name).Order(), set.Order());
        Assert.Equal(27, set.Count); // the 27 distinct property identifiers of 2.2.2.2
    }

    [Fact]
    public void V311_drops_5_0_only_subscription_options_and_properties()
    {
        var packet = new SubscribePacket
        {
            PacketId = 1,
            Properties = new MqttProperties { SubscriptionIdentifiers = [5] },
            Subscriptions = [new TopicSubscription("a", QualityOfService.AtLeastOnce, NoLocal: true, RetainAsPublished: true, RetainHandling.DoNotSend)],
        };

        var bytes = Codec.Encode(packet, MqttProtocolVersion.V311);
        var read = Assert.IsType<SubscribePacket>(Codec.Decode(bytes, MqttProtocolVersion.V311));

        Assert.Equal(TestBuffers.Hex("82 06 00 01 00 01 'a' 01"), bytes);
        Assert.Null(read.Properties);
        Assert.Equal(new TopicSubscription("a", QualityOfService.AtLeastOnce), Assert.Single(read.Subscriptions));
    }

    [Fact]
    public void WritePublish_from_utf8_topic_and_sequence_payload_matches_Write()
    {
        var properties = SamplePackets.PublishProperties();
        var packet = new PublishPacket
        {
            Topic = "a/b",
            Payload = new byte[64],
            QoS = QualityOfService.ExactlyOnce,
            PacketId = 42,
            Retain = true,
            Properties = properties,
        };
        var payload = TestBuffers.Segmented(new byte[64], 10, 0, 54);
        var output = new System.Buffers.ArrayBufferWriter<byte>();

        int written = MqttPacketWriter.WritePublish(output, MqttProtocolVersion.V500, "a/b"u8, QualityOfService.ExactlyOnce,
            retain: true, dup: false, packetId: 42, properties, payload);

        Assert.Equal(Codec.Encode(packet, MqttProtocolVersion.V500), output.WrittenSpan.ToArray());
        Assert.Equal(written, MqttPacketWriter.GetPublishSize(MqttProtocolVersion.V500, 3, QualityOfService.ExactlyOnce, properties, 64));
    }
}

internal static class PacketAssert
{
    public static readonly PropertyInfo[] PropertyAccessors = typeof(MqttProperties)
        .GetProperties(BindingFlags.Public | BindingFlags.Instance)
        .Where(p => p.CanWrite)
        .ToArray();

    public static IEnumerable<MqttProperties> PropertiesOf(MqttPacket packet)
    {
        var list = new List<MqttProperties?>();
        switch (packet)
        {
            case ConnectPacket c:
                list.Add(c.Properties);
                list.Add(c.Will?.Properties);
                break;
            case ConnAckPacket p: list.Add(p.Properties); break;
            case PublishPacket p: list.Add(p.Properties); break;
            case PublishResponsePacket p: list.Add(p.Properties); break;
            case SubscribePacket p: list.Add(p.Properties); break;
            case SubAckPacket p: list.Add(p.Properties); break;
            case UnsubscribePacket p: list.Add(p.Properties); break;
            case UnsubAckPacket p: list.Add(p.Properties); break;
            case DisconnectPacket p: list.Add(p.Properties); break;
            case AuthPacket p: list.Add(p.Properties); break;
        }
        return list.OfType<MqttProperties>();
    }

    public static void Equal(MqttProperties? expected, MqttProperties? actual)
    {
        if (expected is null || expected.IsEmpty)
        {
            Assert.True(actual is null || actual.IsEmpty, "expected no properties");
            return;
        }
        Assert.NotNull(actual);
        foreach (var p in PropertyAccessors)
        {
            object? e = p.GetValue(expected);
            object? a = p.GetValue(actual);
            if (e is IEnumerable eList && a is IEnumerable aList)
            {
                Assert.True(eList.Cast<object>().SequenceEqual(aList.Cast<object>()), $"property {p.Name} differs");
            }
            else
            {
                Assert.True(Equals(e, a), $"property {p.Name}: expected {e}, got {a}");
            }
        }
    }

    public static void Equal(MqttPacket expected, MqttPacket actual)
    {
        Assert.Equal(expected.GetType(), actual.GetType());
        Assert.Equal(expected.Type, actual.Type);
        switch (expected)
        {
            case ConnectPacket e:
            {
                var a = (ConnectPacket)actual;
                Assert.Equal(e.ProtocolName, a.ProtocolName);
                Assert.Equal(e.ProtocolVersion, a.ProtocolVersion);
                Assert.Equal(e.CleanStart, a.CleanStart);
                Assert.Equal(e.KeepAliveSeconds, a.KeepAliveSeconds);
                Assert.Equal(e.ClientId, a.ClientId);
                Assert.Equal(e.UserName, a.UserName);
                Assert.Equal(e.Password, a.Password);
                Equal(e.Properties, a.Properties);
                Assert.Equal(e.Will is null, a.Will is null);
                if (e.Will is { } ew)
                {
                    var aw = a.Will!;
                    Assert.Equal(ew.Topic, aw.Topic);
                    Assert.Equal(ew.Payload, aw.Payload);
                    Assert.Equal(ew.QoS, aw.QoS);
                    Assert.Equal(ew.Retain, aw.Retain);
                    Equal(ew.Properties, aw.Properties);
                }
                break;
            }
            case ConnAckPacket e:
            {
                var a = (ConnAckPacket)actual;
                Assert.Equal(e.SessionPresent, a.SessionPresent);
                Assert.Equal(e.ReasonCode, a.ReasonCode);
                Equal(e.Properties, a.Properties);
                break;
            }
            case PublishPacket e:
            {
                var a = (PublishPacket)actual;
                Assert.Equal(e.Topic, a.Topic);
                Assert.Equal(e.Payload.ToArray(), a.Payload.ToArray());
                Assert.Equal(e.QoS, a.QoS);
                Assert.Equal(e.Retain, a.Retain);
                Assert.Equal(e.Dup, a.Dup);
                Assert.Equal(e.PacketId, a.PacketId);
                Equal(e.Properties, a.Properties);
                break;
            }
            case PublishResponsePacket e:
            {
                var a = (PublishResponsePacket)actual;
                Assert.Equal(e.PacketId, a.PacketId);
                Assert.Equal(e.ReasonCode, a.ReasonCode);
                Equal(e.Properties, a.Properties);
                break;
            }
            case SubscribePacket e:
            {
                var a = (SubscribePacket)actual;
                Assert.Equal(e.PacketId, a.PacketId);
                Assert.Equal(e.Subscriptions, a.Subscriptions);
                Equal(e.Properties, a.Properties);
                break;
            }
            case SubAckPacket e:
            {
                var a = (SubAckPacket)actual;
                Assert.Equal(e.PacketId, a.PacketId);
                Assert.Equal(e.ReasonCodes, a.ReasonCodes);
                Equal(e.Properties, a.Properties);
                break;
            }
            case UnsubscribePacket e:
            {
                var a = (UnsubscribePacket)actual;
                Assert.Equal(e.PacketId, a.PacketId);
                Assert.Equal(e.TopicFilters, a.TopicFilters);
                Equal(e.Properties, a.Properties);
                break;
            }
            case UnsubAckPacket e:
            {
                var a = (UnsubAckPacket)actual;
                Assert.Equal(e.PacketId, a.PacketId);
                Assert.Equal(e.ReasonCodes, a.ReasonCodes);
                Equal(e.Properties, a.Properties);
                break;
            }
            case DisconnectPacket e:
            {
                var a = (DisconnectPacket)actual;
                Assert.Equal(e.ReasonCode, a.ReasonCode);
                Equal(e.Properties, a.Properties);
                break;
            }
            case AuthPacket e:
            {
                var a = (AuthPacket)actual;
                Assert.Equal(e.ReasonCode, a.ReasonCode);
                Equal(e.Properties, a.Properties);
                break;
            }
            case PingReqPacket or PingRespPacket:
                break;
            default:
                Assert.Fail($"no comparison for {expected.GetType().Name}");
                break;
        }
    }
}
