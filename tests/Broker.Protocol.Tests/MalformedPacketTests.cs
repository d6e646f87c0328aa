using System.Text;

namespace Broker.Protocol.Tests;

/// <summary>
/// Every rejection rule of the codec with the reason code it yields (the table in docs/codec.md).
/// Vectors are written "first byte | body": the test inserts the Remaining Length, so each vector
/// shows only the fields that matter.
/// </summary>
public sealed class MalformedPacketTests
{
    private const MqttProtocolVersion V311 = MqttProtocolVersion.V311;
    private const MqttProtocolVersion V500 = MqttProtocolVersion.V500;

    /// <summary>Builds a packet from "first | body", computing the Remaining Length; without '|' the hex is taken as is.</summary>
    internal static byte[] Packet(string vector)
    {
        int bar = vector.IndexOf('|');
        if (bar < 0)
        {
            return TestBuffers.Hex(vector);
        }
        var first = TestBuffers.Hex(vector[..bar]);
        var body = TestBuffers.Hex(vector[(bar + 1)..]);
        var length = new byte[4];
        int n = VariableByteInteger.Write(length, body.Length);
        return [.. first, .. length[..n], .. body];
    }

    private static void AssertRejected(MqttProtocolVersion version, string vector, ReasonCode expected, MqttDecodeError? exact = null)
    {
        var error = Codec.DecodeError(Packet(vector), version);
        Assert.Equal(expected, error.Code);
        if (exact is { } e)
        {
            Assert.Equal(e, error);
        }
    }

    private static MqttDecodeError ErrorNamed(string name) =>
        (MqttDecodeError)typeof(Errors).GetField(name)!.GetValue(null)!;

    // ---- Framing -------------------------------------------------------------------------------

    [Theory]
    [InlineData(V311)]
    [InlineData(V500)]
    public void Remaining_length_of_five_bytes_is_malformed(MqttProtocolVersion version) =>
        AssertRejected(version, "30 FF FF FF FF 01", ReasonCode.MalformedPacket, Errors.VbiTooLong);

    [Theory]
    [InlineData(V311, "C0 80 00")]            // PINGREQ, remaining length 0 written in two bytes
    [InlineData(V500, "C0 80 00")]
    [InlineData(V311, "30 85 00 00 03 'a' '/' 'b'")] // PUBLISH, remaining length 5 written as 85 00
    [InlineData(V500, "40 | 00 01 00 80 00")]  // PUBACK whose property length is 0 written as 80 00
    public void Non_minimal_variable_byte_integer_is_malformed(MqttProtocolVersion version, string vector) =>
        AssertRejected(version, vector, ReasonCode.MalformedPacket, Errors.VbiNotMinimal);

    [Theory]
    [InlineData("11")] // CONNECT
    [InlineData("18")]
    [InlineData("21")] // CONNACK
    [InlineData("41")] // PUBACK
    [InlineData("58")] // PUBREC
    [InlineData("60")] // PUBREL must be 0010
    [InlineData("63")]
    [InlineData("72")] // PUBCOMP
    [InlineData("80")] // SUBSCRIBE must be 0010
    [InlineData("8A")]
    [InlineData("94")] // SUBACK
    [InlineData("A0")] // UNSUBSCRIBE must be 0010
    [InlineData("A3")]
    [InlineData("B1")] // UNSUBACK
    [InlineData("C1")] // PINGREQ
    [InlineData("D2")] // PINGRESP
    [InlineData("EF")] // DISCONNECT
    [InlineData("F4")] // AUTH
    public void Wrong_fixed_header_flags_are_malformed(string first)
    {
        // [MQTT-2.1.3-1]; rejected from the first byte alone, before the remaining length is read
        foreach (var version in new[] { V311, V500 })
        {
            var error = Codec.DecodeError(TestBuffers.Hex(first), version);
            Assert.Equal(ReasonCode.MalformedPacket, error.Code);
            Assert.Equal(Errors.InvalidFixedHeaderFlags, error);
        }
    }

    [Theory]
    [InlineData(V311)]
    [InlineData(V500)]
    public void Packet_type_0_is_malformed(MqttProtocolVersion version) =>
        AssertRejected(version, "00 00", ReasonCode.MalformedPacket, Errors.ReservedPacketType);

    [Fact]
    public void Auth_is_malformed_in_3_1_1_and_accepted_in_5_0()
    {
        AssertRejected(V311, "F0 00", ReasonCode.MalformedPacket, Errors.AuthInV311);
        Assert.IsType<AuthPacket>(Codec.Decode(TestBuffers.Hex("F0 00"), V500));
    }

    [Theory]
    [InlineData(V311)]
    [InlineData(V500)]
    public void Publish_with_QoS_3_is_malformed(MqttProtocolVersion version) =>
        AssertRejected(version, "36 | 00 01 'a' 00 01", ReasonCode.MalformedPacket, Errors.PublishQoS3); // 0110: QoS bits 11

    [Theory]
    [InlineData(V311)]
    [InlineData(V500)]
    public void Publish_with_DUP_and_QoS_0_is_malformed(MqttProtocolVersion version) =>
        AssertRejected(version, "38 | 00 01 'a'", ReasonCode.MalformedPacket, Errors.PublishDupWithQoS0); // 1000: DUP, QoS 0

    [Fact]
    public void Packet_announcing_more_than_the_maximum_size_is_refused_from_its_fixed_header()
    {
        // 30 FF FF FF 7F: a PUBLISH announcing 268,435,455 bytes; nothing of its body is buffered
        var buffer = TestBuffers.Single(TestBuffers.Hex("30 FF FF FF 7F"));

        var status = MqttFrameReader.TryReadFrame(buffer, 1024, out _, out var error);

        Assert.Equal(ReadStatus.Error, status);
        Assert.Equal(ReasonCode.PacketTooLarge, error.Code);
        Assert.Equal(Errors.PacketTooLarge, Codec.DecodeError(TestBuffers.Hex("30 FF FF FF 7F"), V500, 1024));
    }

    [Theory]
    [InlineData("30 FF FF", 1024, ReadStatus.Error)]      // at least 127 + 127 x 128 + 1 x 128^2 bytes follow
    [InlineData("30 80 80", 1024, ReadStatus.Error)]      // at least 1 x 128^2 bytes follow
    [InlineData("30 FF", 1024, ReadStatus.NeedMoreData)]  // at least 127 + 128: still under the limit
    [InlineData("30 80", 130, ReadStatus.Error)]          // 1 + 2 header bytes + at least 128
    [InlineData("30 80", 131, ReadStatus.NeedMoreData)]
    [InlineData("30", 2, ReadStatus.NeedMoreData)]        // could still be a 2-byte packet
    public void Incomplete_remaining_length_that_already_exceeds_the_maximum_is_refused(string hex, int max, ReadStatus expected)
    {
        var status = MqttFrameReader.TryReadFrame(TestBuffers.Single(TestBuffers.Hex(hex)), max, out _, out var error);

        Assert.Equal(expected, status);
        if (expected == ReadStatus.Error)
        {
            Assert.Equal(Errors.PacketTooLarge, error);
        }
    }

    [Fact]
    public void Maximum_packet_size_counts_the_whole_packet()
    {
        var packet = Packet("30 | 00 01 'a' 'p' 'a' 'y'"); // 2 + 6 = 8 bytes

        Assert.Equal(Errors.PacketTooLarge, Codec.DecodeError(packet, V311, maxPacketSize: 7));
        var status = MqttPacketReader.TryRead(TestBuffers.Single(packet), V311, 8, out _, out _, out _);
        Assert.Equal(ReadStatus.Complete, status);
    }

    // ---- Lengths ------------------------------------------------------------------------------

    [Theory]
    [InlineData(V311, "30 | 00 09 'a' '/' 'b'")]                  // topic length 9, only 3 bytes follow
    [InlineData(V500, "30 | 00 03 'a' '/' 'b'")]                  // 5.0: property length missing
    [InlineData(V311, "32 | 00 01 'a' 00")]                       // QoS 1: packet identifier cut in half
    [InlineData(V311, "10 | 00 04 'M' 'Q' 'T' 'T' 04 02 00")]     // CONNECT: keep alive cut in half
    [InlineData(V311, "10 | 00 04 'M' 'Q' 'T' 'T' 04 02 00 3C 00 05 'a'")] // client id length 5, 1 byte left
    [InlineData(V500, "30 | 00 01 'a' 05 02 00 00")]              // property length 5, 3 bytes left
    [InlineData(V311, "40 | 00")]                                 // PUBACK with half a packet identifier
    [InlineData(V311, "82 | 00 01 00 01 'a'")]                    // SUBSCRIBE filter without options byte
    public void A_field_running_past_the_remaining_length_is_malformed(MqttProtocolVersion version, string vector) =>
        AssertRejected(version, vector, ReasonCode.MalformedPacket, vector.StartsWith("30 | 00 01 'a' 05", StringComparison.Ordinal)
            ? Errors.PropertyLengthMismatch
            : Errors.Truncated);

    [Theory]
    [InlineData(V311, "40 | 00 01 00")]            // PUBACK 3.1.1 is exactly 2 bytes
    [InlineData(V311, "20 | 00 00 00")]            // CONNACK 3.1.1 is exactly 2 bytes
    [InlineData(V311, "B0 | 00 01 00")]            // UNSUBACK 3.1.1 has no payload
    [InlineData(V311, "E0 | 00")]                  // DISCONNECT 3.1.1 has no body
    [InlineData(V500, "40 | 00 01 00 00 FF")]      // PUBACK with a byte after its empty properties
    [InlineData(V311, "10 | 00 04 'M' 'Q' 'T' 'T' 04 02 00 3C 00 01 'c' 00")] // CONNECT with a byte after the client id
    public void Trailing_bytes_are_malformed(MqttProtocolVersion version, string vector) =>
        AssertRejected(version, vector, ReasonCode.MalformedPacket, Errors.TrailingBytes);

    [Theory]
    [InlineData(V311, "C0 01 00")] // PINGREQ with remaining length 1
    [InlineData(V500, "C0 01 00")]
    [InlineData(V311, "D0 01 00")] // PINGRESP
    public void Ping_with_a_body_is_malformed(MqttProtocolVersion version, string vector) =>
        AssertRejected(version, vector, ReasonCode.MalformedPacket, Errors.NonZeroRemainingLength);

    // ---- UTF-8 --------------------------------------------------------------------------------

    [Theory]
    [InlineData("C3 28")]       // a 2-byte lead followed by an ASCII byte
    [InlineData("FF")]          // never valid in UTF-8
    [InlineData("80")]          // a lone continuation byte
    [InlineData("C0 AF")]       // overlong '/' (2 bytes for U+002F)
    [InlineData("E0 80 AF")]    // overlong '/' (3 bytes)
    [InlineData("F0 80 80 AF")] // overlong '/' (4 bytes)
    [InlineData("ED A0 80")]    // U+D800, a surrogate code point [MQTT-1.5.4-1]
    [InlineData("ED BF BF")]    // U+DFFF
    [InlineData("F4 90 80 80")] // U+110000, past the last code point
    public void Ill_formed_utf8_is_malformed(string bad)
    {
        var topic = TestBuffers.Hex("'a' " + bad);
        string str = HexOf([0, (byte)topic.Length, .. topic]); // a string: two-byte length, then 'a' and the bad bytes

        foreach (var version in new[] { V311, V500 })
        {
            AssertRejected(version, "30 | " + str + (version == V500 ? " 00" : ""), ReasonCode.MalformedPacket, Errors.InvalidUtf8);
        }
        // The same string as a CONNECT client identifier, a SUBSCRIBE filter and a user property value
        AssertRejected(V311, "10 | 00 04 'M' 'Q' 'T' 'T' 04 02 00 3C " + str, ReasonCode.MalformedPacket, Errors.InvalidUtf8);
        AssertRejected(V311, "82 | 00 01 " + str + " 00", ReasonCode.MalformedPacket, Errors.InvalidUtf8);
        AssertRejected(V500, $"30 | 00 01 'x' {topic.Length + 6:X2} 26 00 01 'k' " + str, ReasonCode.MalformedPacket, Errors.InvalidUtf8);
    }

    private static string HexOf(byte[] bytes) => string.Join(' ', bytes.Select(b => b.ToString("X2")));

    [Theory]
    [InlineData(V311, "30 | 00 03 'a' 00 'b'")]                         // topic name
    [InlineData(V500, "30 | 00 03 'a' 00 'b' 00")]
    [InlineData(V311, "10 | 00 04 'M' 'Q' 'T' 'T' 04 02 00 3C 00 01 00")] // client identifier "\0"
    [InlineData(V311, "A2 | 00 01 00 02 'a' 00")]                         // UNSUBSCRIBE filter
    [InlineData(V500, "30 | 00 01 'x' 04 03 00 01 00")]                   // Content Type property "\0"
    public void Null_character_in_a_string_is_malformed(MqttProtocolVersion version, string vector) =>
        AssertRejected(version, vector, ReasonCode.MalformedPacket, Errors.NullCharacter);

    // ---- Properties ---------------------------------------------------------------------------

    [Theory]
    [InlineData("30 | 00 01 'a' 0A 02 00 00 00 01 02 00 00 00 02")] // Message Expiry Interval twice
    [InlineData("30 | 00 01 'a' 06 23 00 01 23 00 02")]             // Topic Alias twice
    [InlineData("82 | 00 01 04 0B 01 0B 02 00 01 'a' 00")]          // Subscription Identifier twice in SUBSCRIBE
    [InlineData("10 | 00 04 'M' 'Q' 'T' 'T' 05 02 00 3C 06 21 00 01 21 00 01 00 00")] // Receive Maximum twice
    public void Duplicate_property_is_a_protocol_error(string vector) =>
        AssertRejected(V500, vector, ReasonCode.ProtocolError, Errors.DuplicateProperty);

    [Fact]
    public void Repeatable_properties_may_repeat()
    {
        // User Property (26) twice, and Subscription Identifier (0B) twice in a PUBLISH sent to a client
        var packet = Packet("30 | 00 01 'a' 12 26 00 01 'k' 00 01 'v' 26 00 01 'k' 00 01 'w' 0B 01 0B 02");
        var publish = Assert.IsType<PublishPacket>(Codec.Decode(packet, V500));
        Assert.Equal([1, 2], publish.Properties!.SubscriptionIdentifiers!);
        Assert.Equal(2, publish.Properties.UserProperties!.Count);
    }

    [Theory]
    [InlineData("30 | 00 01 'a' 05 11 00 00 00 01")]    // Session Expiry Interval on PUBLISH
    [InlineData("40 | 00 01 00 03 23 00 01")]           // Topic Alias on PUBACK
    [InlineData("82 | 00 01 02 01 01 00 01 'a' 00")]    // Payload Format Indicator on SUBSCRIBE
    [InlineData("A2 | 00 01 02 0B 01 00 01 'a'")]       // Subscription Identifier on UNSUBSCRIBE
    [InlineData("E0 | 00 03 21 00 01")]                 // Receive Maximum on DISCONNECT
    [InlineData("10 | 00 04 'M' 'Q' 'T' 'T' 05 02 00 3C 03 23 00 01 00 00")] // Topic Alias on CONNECT
    public void Property_not_allowed_on_the_packet_is_malformed(string vector) =>
        AssertRejected(V500, vector, ReasonCode.MalformedPacket, Errors.PropertyNotAllowed);

    [Fact]
    public void Will_properties_are_checked_against_the_will_set()
    {
        // CONNECT 5.0 with will flag (04) + clean start (02) = 06; no CONNECT properties; client id "c";
        // will properties: 03 = length, 21 00 01 = Receive Maximum, which belongs to CONNECT, not to the will
        AssertRejected(V500, "10 | 00 04 'M' 'Q' 'T' 'T' 05 06 00 3C 00 00 01 'c' 03 21 00 01 00 01 't' 00 00",
            ReasonCode.MalformedPacket, Errors.PropertyNotAllowed);
    }

    [Theory]
    [InlineData("30 | 00 01 'a' 02 04 00")]       // 0x04 is not assigned
    [InlineData("30 | 00 01 'a' 02 2B 00")]       // 0x2B, past the last identifier
    [InlineData("30 | 00 01 'a' 02 7F 00")]
    [InlineData("30 | 00 01 'a' 03 80 01 00")]    // identifier 128 (a two-byte VBI)
    [InlineData("30 | 00 01 'a' 01 00")]          // 0x00
    public void Unknown_property_identifier_is_malformed(string vector) =>
        AssertRejected(V500, vector, ReasonCode.MalformedPacket, Errors.UnknownProperty);

    [Theory]
    [InlineData("30 | 00 01 'a' 02 01 02", ReasonCode.ProtocolError, nameof(Errors.InvalidPropertyValue))]            // Payload Format Indicator 2
    [InlineData("20 | 00 00 02 24 02", ReasonCode.ProtocolError, nameof(Errors.InvalidPropertyValue))]                // Maximum QoS 2
    [InlineData("10 | 00 04 'M' 'Q' 'T' 'T' 05 02 00 3C 02 17 02 00 00", ReasonCode.ProtocolError, nameof(Errors.InvalidPropertyValue))] // Request Problem Information 2
    [InlineData("30 | 00 01 'a' 02 0B 00", ReasonCode.ProtocolError, nameof(Errors.ZeroSubscriptionIdentifier))]     // Subscription Identifier 0
    [InlineData("20 | 00 00 03 21 00 00", ReasonCode.ProtocolError, nameof(Errors.ZeroReceiveMaximum))]               // Receive Maximum 0
    [InlineData("20 | 00 00 05 27 00 00 00 00", ReasonCode.ProtocolError, nameof(Errors.ZeroMaximumPacketSize))]     // Maximum Packet Size 0
    [InlineData("30 | 00 01 'a' 03 23 00 00", ReasonCode.TopicAliasInvalid, nameof(Errors.ZeroTopicAlias))]          // Topic Alias 0
    [InlineData("30 | 00 01 'a' 04 08 00 01 '#'", ReasonCode.TopicNameInvalid, nameof(Errors.TopicNameWithWildcard))] // Response Topic with a wildcard
    public void Property_with_a_forbidden_value_is_rejected(string vector, ReasonCode code, string error) =>
        AssertRejected(V500, vector, code, ErrorNamed(error));

    [Theory]
    [InlineData("30 | 00 01 'a' 06 02 00 00 00 01")]      // property length 6 > the 5 bytes left
    [InlineData("30 | 00 01 'a' 03 02 00 00 00 01")]      // length 3 cuts Message Expiry Interval in half
    public void Property_length_that_does_not_match_is_malformed(string vector) =>
        AssertRejected(V500, vector, ReasonCode.MalformedPacket, Errors.PropertyLengthMismatch);

    [Fact]
    public void Payload_marked_utf8_that_is_not_is_payload_format_invalid()
    {
        // Payload Format Indicator (01) = 1, payload FF (never valid UTF-8)
        AssertRejected(V500, "30 | 00 01 'a' 02 01 01 FF", ReasonCode.PayloadFormatInvalid, Errors.PayloadNotUtf8);
        // The same in a will: CONNECT flags 06 (will, clean start); will properties 02 01 01; will topic "t"; will payload FF
        AssertRejected(V500, "10 | 00 04 'M' 'Q' 'T' 'T' 05 06 00 3C 00 00 01 'c' 02 01 01 00 01 't' 00 01 FF",
            ReasonCode.PayloadFormatInvalid, Errors.PayloadNotUtf8);
    }

    // ---- Packet identifiers and topics --------------------------------------------------------

    [Theory]
    [InlineData(V311, "32 | 00 01 'a' 00 00")]          // PUBLISH QoS 1
    [InlineData(V500, "34 | 00 01 'a' 00 00 00")]       // PUBLISH QoS 2
    [InlineData(V311, "82 | 00 00 00 01 'a' 00")]       // SUBSCRIBE
    [InlineData(V500, "82 | 00 00 00 00 01 'a' 00")]
    [InlineData(V311, "A2 | 00 00 00 01 'a'")]          // UNSUBSCRIBE
    [InlineData(V311, "40 | 00 00")]                    // PUBACK
    [InlineData(V500, "40 | 00 00")]
    [InlineData(V311, "50 | 00 00")]                    // PUBREC
    [InlineData(V311, "62 | 00 00")]                    // PUBREL
    [InlineData(V311, "70 | 00 00")]                    // PUBCOMP
    public void Packet_identifier_0_is_a_protocol_error(MqttProtocolVersion version, string vector) =>
        AssertRejected(version, vector, ReasonCode.ProtocolError, Errors.ZeroPacketIdentifier);

    [Theory]
    [InlineData(V311, "30 | 00 03 'a' '/' '+'")]
    [InlineData(V311, "30 | 00 01 '#'")]
    [InlineData(V500, "30 | 00 05 's' 'p' '+' 'r' 't' 00")]
    [InlineData(V500, "30 | 00 03 'a' '#' 'b' 00")]
    public void Topic_name_with_a_wildcard_is_invalid(MqttProtocolVersion version, string vector) =>
        AssertRejected(version, vector, ReasonCode.TopicNameInvalid, Errors.TopicNameWithWildcard);

    [Theory]
    [InlineData(V311, "30 | 00 00")]
    [InlineData(V500, "30 | 00 00 00")]                 // no Topic Alias
    [InlineData(V500, "30 | 00 00 02 01 00")]           // properties, but no Topic Alias
    public void Empty_topic_without_alias_is_invalid(MqttProtocolVersion version, string vector) =>
        AssertRejected(version, vector, ReasonCode.TopicNameInvalid, Errors.EmptyTopicName);

    [Theory]
    [InlineData("a/b#")]
    [InlineData("a+/b")]
    [InlineData("#/a")]
    [InlineData("a/#/b")]
    [InlineData("a/+b")]
    [InlineData("##")]
    [InlineData("")]
    [InlineData("$share/")]          // no share name
    [InlineData("$share//a")]        // empty share name
    [InlineData("$share/g+/a")]      // wildcard in the share name
    [InlineData("$share/g")]         // no filter after the share name
    [InlineData("$share/g/a#")]
    public void Invalid_topic_filter_is_rejected_in_subscribe_and_unsubscribe(string filter)
    {
        string f = FilterHex(filter);
        AssertRejected(V311, $"82 | 00 01 {f} 00", ReasonCode.TopicFilterInvalid, Errors.InvalidTopicFilter);
        AssertRejected(V500, $"82 | 00 01 00 {f} 00", ReasonCode.TopicFilterInvalid, Errors.InvalidTopicFilter);
        AssertRejected(V311, $"A2 | 00 01 {f}", ReasonCode.TopicFilterInvalid, Errors.InvalidTopicFilter);
        AssertRejected(V500, $"A2 | 00 01 00 {f}", ReasonCode.TopicFilterInvalid, Errors.InvalidTopicFilter);
    }

    [Theory]
    [InlineData("#")]
    [InlineData("+")]
    [InlineData("+/+")]
    [InlineData("/")]
    [InlineData("a//b")]
    [InlineData("$SYS/#")]
    [InlineData("$share/g/#")]
    [InlineData("sport/tennis/+/#")]
    public void Valid_topic_filters_are_accepted(string filter)
    {
        var packet = Assert.IsType<SubscribePacket>(Codec.Decode(Packet($"82 | 00 01 00 {FilterHex(filter)} 01"), V500));
        Assert.Equal(filter, Assert.Single(packet.Subscriptions).TopicFilter);
    }

    private static string FilterHex(string filter)
    {
        var bytes = Encoding.UTF8.GetBytes(filter);
        return HexOf([(byte)(bytes.Length >> 8), (byte)bytes.Length, .. bytes]);
    }

    // ---- SUBSCRIBE options --------------------------------------------------------------------

    [Theory]
    [InlineData(V311, "82 | 00 01 00 01 'a' 03")]
    [InlineData(V500, "82 | 00 01 00 00 01 'a' 03")]
    public void Subscription_QoS_3_is_malformed(MqttProtocolVersion version, string vector) =>
        AssertRejected(version, vector, ReasonCode.MalformedPacket, Errors.SubscriptionQoS3);

    [Theory]
    [InlineData(V311, "82 | 00 01 00 01 'a' 04")]     // 3.1.1: bits 7-2 are reserved (here No Local's bit)
    [InlineData(V311, "82 | 00 01 00 01 'a' 80")]
    [InlineData(V500, "82 | 00 01 00 00 01 'a' 40")]  // 5.0: bits 7-6 are reserved
    [InlineData(V500, "82 | 00 01 00 00 01 'a' 81")]
    public void Reserved_subscription_option_bits_are_malformed(MqttProtocolVersion version, string vector) =>
        AssertRejected(version, vector, ReasonCode.MalformedPacket, Errors.SubscriptionReservedBits);

    [Fact]
    public void Retain_handling_3_is_a_protocol_error() =>
        AssertRejected(V500, "82 | 00 01 00 00 01 'a' 30", ReasonCode.ProtocolError, Errors.RetainHandling3);

    [Fact]
    public void No_local_on_a_shared_subscription_is_a_protocol_error() =>
        AssertRejected(V500, $"82 | 00 01 00 {FilterHex("$share/g/a")} 04", ReasonCode.ProtocolError, Errors.SharedSubscriptionNoLocal);

    [Theory]
    [InlineData(V311, "82 | 00 01")]
    [InlineData(V500, "82 | 00 01 00")]
    [InlineData(V311, "A2 | 00 01")]
    [InlineData(V500, "A2 | 00 01 00")]
    public void Subscribe_or_unsubscribe_without_a_filter_is_a_protocol_error(MqttProtocolVersion version, string vector) =>
        AssertRejected(version, vector, ReasonCode.ProtocolError, Errors.NoTopicFilters);

    // ---- CONNECT ------------------------------------------------------------------------------

    [Theory]
    [InlineData("03")] // MQTT 3.1's level, under the 3.1.1 name
    [InlineData("06")]
    [InlineData("00")]
    [InlineData("FF")]
    public void Connect_with_an_unsupported_protocol_level_is_refused(string level)
    {
        // name "MQTT", the level under test, flags 02 (clean start), keep alive 60, client id ""
        foreach (var version in new[] { V311, V500 })
        {
            AssertRejected(version, $"10 | 00 04 'M' 'Q' 'T' 'T' {level} 02 00 3C 00 00", ReasonCode.UnsupportedProtocolVersion,
                Errors.UnsupportedProtocolLevel);
        }
    }

    [Fact]
    public void Connect_level_byte_is_reported_with_the_refusal()
    {
        var packet = Packet("10 | 00 04 'M' 'Q' 'T' 'T' 03 02 00 3C 00 00");
        Assert.Equal(ReadStatus.Complete, MqttFrameReader.TryReadFrame(TestBuffers.Single(packet), 1024, out var frame, out _));

        Assert.False(MqttPacketDecoder.TryDecodeConnect(frame, out _, out byte level, out var error));

        Assert.Equal(3, level);
        Assert.Equal(ReasonCode.UnsupportedProtocolVersion, error.Code);
    }

    [Fact]
    public void Mqtt_3_1_connect_is_an_unsupported_version() =>
        AssertRejected(V311, "10 | 00 06 'M' 'Q' 'I' 's' 'd' 'p' 03 02 00 3C 00 00", ReasonCode.UnsupportedProtocolVersion,
            Errors.UnsupportedProtocolLevel);

    [Theory]
    [InlineData("00 04 'M' 'Q' 'T' 'X'")]
    [InlineData("00 04 'm' 'q' 't' 't'")]
    [InlineData("00 00")]
    public void Connect_with_a_bad_protocol_name_is_refused(string name) =>
        AssertRejected(V311, $"10 | {name} 04 02 00 3C 00 00", ReasonCode.UnsupportedProtocolVersion, Errors.InvalidProtocolName);

    [Theory]
    [InlineData("04")]
    [InlineData("05")]
    public void Connect_reserved_flag_is_malformed(string level) =>
        AssertRejected(V311, $"10 | 00 04 'M' 'Q' 'T' 'T' {level} 03 00 3C 00 00 00", ReasonCode.MalformedPacket, Errors.ConnectReservedFlag);

    [Theory]
    [InlineData("0A")] // will QoS 1 + clean start, no will flag
    [InlineData("12")] // will QoS 2 + clean start
    [InlineData("22")] // will retain + clean start
    public void Will_QoS_or_retain_without_the_will_flag_is_malformed(string flags)
    {
        AssertRejected(V311, $"10 | 00 04 'M' 'Q' 'T' 'T' 04 {flags} 00 3C 00 00", ReasonCode.MalformedPacket, Errors.WillFlagsWithoutWill);
        AssertRejected(V500, $"10 | 00 04 'M' 'Q' 'T' 'T' 05 {flags} 00 3C 00 00 00", ReasonCode.MalformedPacket, Errors.WillFlagsWithoutWill);
    }

    [Fact]
    public void Will_QoS_3_is_malformed() =>
        // flags 1E: will QoS 11, will flag, clean start
        AssertRejected(V311, "10 | 00 04 'M' 'Q' 'T' 'T' 04 1E 00 3C 00 00 00 01 't' 00 00", ReasonCode.MalformedPacket, Errors.WillQoS3);

    [Fact]
    public void Password_without_user_name_is_malformed_in_3_1_1_only()
    {
        // flags 42: password, clean start; client id ""; password "p"
        AssertRejected(V311, "10 | 00 04 'M' 'Q' 'T' 'T' 04 42 00 3C 00 00 00 01 'p'", ReasonCode.MalformedPacket, Errors.PasswordWithoutUserName);
        var connect = Assert.IsType<ConnectPacket>(Codec.Decode(Packet("10 | 00 04 'M' 'Q' 'T' 'T' 05 42 00 3C 00 00 00 00 01 'p'"), V500));
        Assert.Null(connect.UserName);
        Assert.Equal("p"u8.ToArray(), connect.Password);
    }

    [Theory]
    [InlineData("00 01 '#'", ReasonCode.TopicNameInvalid)]
    [InlineData("00 00", ReasonCode.TopicNameInvalid)]
    public void Will_topic_must_be_a_topic_name(string topic, ReasonCode code) =>
        AssertRejected(V311, $"10 | 00 04 'M' 'Q' 'T' 'T' 04 06 00 3C 00 00 {topic} 00 00", code);

    [Fact]
    public void Decoding_a_connect_from_another_packet_type_is_a_protocol_error()
    {
        Assert.Equal(ReadStatus.Complete, MqttFrameReader.TryReadFrame(TestBuffers.Single(TestBuffers.Hex("C0 00")), 1024, out var frame, out _));
        Assert.False(MqttPacketDecoder.TryDecodeConnect(frame, out _, out _, out var error));
        Assert.Equal(Errors.UnexpectedPacketForServer, error);
    }

    // ---- Reason codes -------------------------------------------------------------------------

    [Theory]
    [InlineData("40 | 00 01 8E")]       // PUBACK with Session taken over
    [InlineData("62 | 00 01 10")]       // PUBREL with No matching subscribers
    [InlineData("E0 | 18")]             // DISCONNECT with Continue authentication
    [InlineData("F0 | 87 00")]          // AUTH with Not authorized
    public void Reason_code_not_allowed_on_the_packet_is_malformed(string vector) =>
        AssertRejected(V500, vector, ReasonCode.MalformedPacket, Errors.InvalidReasonCode);

    [Fact]
    public void Connack_with_reserved_acknowledge_flags_is_malformed() =>
        AssertRejected(V311, "20 | 02 00", ReasonCode.MalformedPacket, Errors.InvalidFixedHeaderFlags); // only bit 0 (session present) may be set

    [Fact]
    public void Every_error_in_Errors_is_exercised_by_this_class()
    {
        // Keeps docs/codec.md and this class in step with Errors.cs: a new rule needs a test here.
        var fields = typeof(Errors).GetFields().Where(f => f.FieldType == typeof(MqttDecodeError)).Select(f => f.Name).ToHashSet();
        var source = File.ReadAllText(ThisSourceFile());
        var missing = fields.Where(f => !source.Contains("Errors." + f, StringComparison.Ordinal)).ToList();
        Assert.Empty(missing);
    }

    private static string ThisSourceFile([System.Runtime.CompilerServices.CallerFilePath] string path = "") => path;
}
