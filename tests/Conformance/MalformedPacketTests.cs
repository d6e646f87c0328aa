using Broker.Protocol;
using Conformance.Infrastructure;
using MQTTnet;
using MQTTnet.Protocol;
using Xunit;
using static Conformance.Infrastructure.TestClients;
using RawVersion = Broker.Protocol.MqttProtocolVersion;

namespace Conformance;

/// <summary>
/// Malformed packets and protocol errors from a connected client: the broker closes that connection
/// (5.0: DISCONNECT with the reason code first [MQTT-4.13.1-1]) and every other client carries on.
/// </summary>
public sealed class MalformedPacketTests
{
    /// <summary>A QoS 0 PUBLISH with an arbitrary topic encoding.</summary>
    private static byte[] RawPublish(RawVersion version, byte[] topic, byte flags = 0x30, ushort? packetId = null)
    {
        var body = new List<byte> { (byte)(topic.Length >> 8), (byte)topic.Length };
        body.AddRange(topic);
        if (packetId is { } id)
        {
            body.Add((byte)(id >> 8));
            body.Add((byte)id);
        }
        if (version == RawVersion.V500)
        {
            body.Add(0x00);
        }
        body.AddRange("x"u8.ToArray());
        return [flags, (byte)body.Count, .. body];
    }

    /// <summary>
    /// Connects, sends <paramref name="bytes"/>, and checks the connection is closed; in 5.0 after a DISCONNECT
    /// whose reason code is <paramref name="v5Reason"/> (any error code when null). A bystander connected
    /// before keeps working afterwards.
    /// </summary>
    private static async Task AssertClosedAsync(RawVersion version, byte[] bytes, ReasonCode? v5Reason,
        IDictionary<string, string?>? settings = null)
    {
        await using var broker = await BrokerInstance.StartAsync(settings);
        var (bystander, messages) = await SubscriberAsync(broker, V500, "ok", MqttQualityOfServiceLevel.AtLeastOnce);
        using var _ = bystander;

        await using var raw = await RawConnectedAsync(broker, version, "offender");
        await raw.SendAsync(bytes);
        var answers = await raw.ReadUntilClosedAsync(version, TimeSpan.FromSeconds(5));
        if (version == RawVersion.V500)
        {
            var disconnect = Assert.IsType<DisconnectPacket>(Assert.Single(answers));
            // The client did not set Request Problem Information to 0: the broker says why in a Reason String.
            Assert.False(string.IsNullOrEmpty(disconnect.Properties?.ReasonString), "no Reason String");
            if (v5Reason is { } expected)
            {
                Assert.Equal(expected, disconnect.ReasonCode);
            }
            else
            {
                Assert.True((byte)disconnect.ReasonCode >= 0x80, $"reason 0x{(byte)disconnect.ReasonCode:X2}");
            }
        }
        else
        {
            Assert.Empty(answers);
        }

        using var publisher = await MqttClients.ConnectAsync(broker, V311);
        await publisher.PublishAsync("ok", "still fine", MqttQualityOfServiceLevel.AtLeastOnce);
        Assert.Equal("still fine", (await messages.NextAsync()).ConvertPayloadToString());
    }

    [Theory]
    [InlineData(RawVersion.V311)]
    [InlineData(RawVersion.V500)]
    public Task MQTT_1_5_4_1_Ill_formed_UTF8_topic_closes_the_connection(RawVersion version)
        => AssertClosedAsync(version, RawPublish(version, [(byte)'a', 0xC0, 0x80]), null);

    [Theory]
    [InlineData(RawVersion.V311)]
    [InlineData(RawVersion.V500)]
    public Task MQTT_1_5_4_1_UTF16_surrogate_in_topic_closes_the_connection(RawVersion version)
        => AssertClosedAsync(version, RawPublish(version, [(byte)'a', 0xED, 0xA0, 0x80]), null);

    [Theory]
    [InlineData(RawVersion.V311)]
    [InlineData(RawVersion.V500)]
    public Task MQTT_1_5_4_2_Null_character_in_topic_closes_the_connection(RawVersion version)
        => AssertClosedAsync(version, RawPublish(version, [(byte)'a', 0x00, (byte)'b']), null);

    [Theory]
    [InlineData(RawVersion.V311)]
    [InlineData(RawVersion.V500)]
    public Task MQTT_3_3_2_2_Wildcard_in_topic_name_closes_the_connection(RawVersion version)
        => AssertClosedAsync(version, RawPublish(version, "a/+/b"u8.ToArray()), null);

    [Theory]
    [InlineData(RawVersion.V311)]
    [InlineData(RawVersion.V500)]
    public Task MQTT_3_3_1_4_PUBLISH_with_QoS_3_closes_the_connection(RawVersion version)
        => AssertClosedAsync(version, RawPublish(version, "t"u8.ToArray(), flags: 0x36, packetId: 1), ReasonCode.MalformedPacket);

    [Theory]
    [InlineData(RawVersion.V311)]
    [InlineData(RawVersion.V500)]
    public Task MQTT_3_3_1_2_QoS_0_PUBLISH_with_DUP_1_closes_the_connection(RawVersion version)
        => AssertClosedAsync(version, RawPublish(version, "t"u8.ToArray(), flags: 0x38), null);

    [Theory]
    [InlineData(RawVersion.V311)]
    [InlineData(RawVersion.V500)]
    public Task MQTT_2_2_1_3_QoS_1_PUBLISH_with_packet_id_0_closes_the_connection(RawVersion version)
        => AssertClosedAsync(version, RawPublish(version, "t"u8.ToArray(), flags: 0x32, packetId: 0), null);

    [Theory]
    [InlineData(RawVersion.V311)]
    [InlineData(RawVersion.V500)]
    public Task MQTT_3_8_1_1_SUBSCRIBE_with_wrong_fixed_header_flags_closes_the_connection(RawVersion version)
        => AssertClosedAsync(version, version == RawVersion.V500
            ? [0x80, 0x07, 0x00, 0x01, 0x00, 0x00, 0x01, (byte)'a', 0x00]
            : [0x80, 0x06, 0x00, 0x01, 0x00, 0x01, (byte)'a', 0x00], ReasonCode.MalformedPacket);

    [Theory]
    [InlineData(RawVersion.V311)]
    [InlineData(RawVersion.V500)]
    public Task MQTT_3_8_3_2_SUBSCRIBE_without_topic_filters_closes_the_connection(RawVersion version)
        => AssertClosedAsync(version, version == RawVersion.V500 ? [0x82, 0x03, 0x00, 0x01, 0x00] : [0x82, 0x02, 0x00, 0x01], null);

    [Theory]
    [InlineData(RawVersion.V311)]
    [InlineData(RawVersion.V500)]
    public Task MQTT_3_10_3_2_UNSUBSCRIBE_without_topic_filters_closes_the_connection(RawVersion version)
        => AssertClosedAsync(version, version == RawVersion.V500 ? [0xA2, 0x03, 0x00, 0x01, 0x00] : [0xA2, 0x02, 0x00, 0x01], null);

    [Theory]
    [InlineData(RawVersion.V311)]
    [InlineData(RawVersion.V500)]
    public Task MQTT_2_1_Reserved_packet_type_0_closes_the_connection(RawVersion version)
        => AssertClosedAsync(version, [0x00, 0x00], null);

    [Theory]
    [InlineData(RawVersion.V311)]
    [InlineData(RawVersion.V500)]
    public Task MQTT_1_5_5_1_Remaining_length_longer_than_four_bytes_closes_the_connection(RawVersion version)
        => AssertClosedAsync(version, [0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01], ReasonCode.MalformedPacket);

    [Theory]
    [InlineData(RawVersion.V311)]
    [InlineData(RawVersion.V500)]
    public Task MQTT_3_2_2_15_Packet_larger_than_the_broker_Maximum_Packet_Size_closes_the_connection(RawVersion version)
    {
        var topic = "big"u8.ToArray();
        var payload = new byte[1000];
        var body = new List<byte> { 0x00, (byte)topic.Length };
        body.AddRange(topic);
        if (version == RawVersion.V500)
        {
            body.Add(0x00);
        }
        body.AddRange(payload);
        int length = body.Count;
        byte[] bytes = [0x30, (byte)(length % 128 | 0x80), (byte)(length / 128), .. body];
        return AssertClosedAsync(version, bytes, ReasonCode.PacketTooLarge,
            new Dictionary<string, string?> { ["Broker:Limits:MaxPacketSize"] = "256" });
    }

    [Fact]
    public Task MQTT_3_3_2_9_Topic_alias_above_the_broker_maximum_gets_DISCONNECT_0x94()
    {
        // PUBLISH "t" with Topic Alias (0x23) 65000.
        byte[] bytes = [0x30, 0x08, 0x00, 0x01, (byte)'t', 0x03, 0x23, 0xFD, 0xE8, (byte)'x'];
        return AssertClosedAsync(RawVersion.V500, bytes, ReasonCode.TopicAliasInvalid);
    }

    [Fact]
    public Task MQTT_3_3_4_6_PUBLISH_from_a_client_with_a_Subscription_Identifier_is_a_protocol_error()
    {
        // PUBLISH "t" with Subscription Identifier (0x0B) 1.
        byte[] bytes = [0x30, 0x07, 0x00, 0x01, (byte)'t', 0x02, 0x0B, 0x01, (byte)'x'];
        return AssertClosedAsync(RawVersion.V500, bytes, ReasonCode.ProtocolError);
    }
}
