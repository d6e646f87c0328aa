using FsCheck;
using FsCheck.Fluent;

namespace Broker.Protocol.Tests;

/// <summary>The Variable Byte Integer table of 1.5.5 (identical in 3.1.1 and 5.0): both edges of every length.</summary>
public sealed class VariableByteIntegerTests
{
    public static TheoryData<int, string> SpecTable => new()
    {
        { 0, "00" },                     // smallest 1-byte value
        { 127, "7F" },                   // largest 1-byte value
        { 128, "80 01" },                // smallest 2-byte value: 0 + continuation, then 1 x 128
        { 16_383, "FF 7F" },             // largest 2-byte value: 127 + 127 x 128
        { 16_384, "80 80 01" },          // smallest 3-byte value: 1 x 128^2
        { 2_097_151, "FF FF 7F" },       // largest 3-byte value
        { 2_097_152, "80 80 80 01" },    // smallest 4-byte value: 1 x 128^3
        { 268_435_455, "FF FF FF 7F" },  // largest value the encoding can hold
    };

    [Theory]
    [MemberData(nameof(SpecTable))]
    public void Encodes_the_spec_table(int value, string hex)
    {
        var expected = TestBuffers.Hex(hex);
        var buffer = new byte[VariableByteInteger.MaxLength];

        int written = VariableByteInteger.Write(buffer, value);

        Assert.Equal(expected, buffer[..written]);
        Assert.Equal(expected.Length, VariableByteInteger.GetSize(value));
    }

    [Theory]
    [MemberData(nameof(SpecTable))]
    public void Decodes_the_spec_table(int value, string hex)
    {
        var bytes = TestBuffers.Hex(hex);

        var status = VariableByteInteger.TryRead(bytes, out int decoded, out int length, out _);

        Assert.Equal(ReadStatus.Complete, status);
        Assert.Equal(value, decoded);
        Assert.Equal(bytes.Length, length);
    }

    [Theory]
    [MemberData(nameof(SpecTable))]
    public void Decodes_the_spec_table_one_byte_per_segment(int value, string hex)
    {
        var bytes = TestBuffers.Hex(hex);

        var status = VariableByteInteger.TryRead(TestBuffers.OneBytePerSegment(bytes), out int decoded, out int length, out _);

        Assert.Equal(ReadStatus.Complete, status);
        Assert.Equal(value, decoded);
        Assert.Equal(bytes.Length, length);
    }

    [Theory]
    [InlineData("")]
    [InlineData("80")]
    [InlineData("FF FF")]
    [InlineData("80 80 80")]
    public void A_prefix_needs_more_data(string hex)
    {
        Assert.Equal(ReadStatus.NeedMoreData, VariableByteInteger.TryRead(TestBuffers.Hex(hex), out _, out _, out _));
    }

    [Theory]
    [InlineData("FF FF FF FF 01")] // a fifth byte [MQTT-1.5.5]
    [InlineData("80 80 80 80")]    // four continuation bits: a fifth byte would be needed
    public void More_than_four_bytes_is_malformed(string hex)
    {
        var status = VariableByteInteger.TryRead(TestBuffers.Hex(hex), out _, out _, out var error);

        Assert.Equal(ReadStatus.Error, status);
        Assert.Equal(ReasonCode.MalformedPacket, error.Code);
    }

    [Theory]
    [InlineData("80 00")]          // 0 in two bytes
    [InlineData("FF 00")]          // 127 in two bytes
    [InlineData("80 80 00")]       // 0 in three bytes
    [InlineData("FF FF FF 00")]    // 2,097,151 in four bytes
    public void Non_minimal_encoding_is_malformed(string hex)
    {
        var status = VariableByteInteger.TryRead(TestBuffers.Hex(hex), out _, out _, out var error);

        Assert.Equal(ReadStatus.Error, status);
        Assert.Equal(ReasonCode.MalformedPacket, error.Code);
        Assert.Same(Errors.VbiNotMinimal.Message, error.Message);
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(VariableByteInteger.MaxValue + 1)]
    public void Size_of_an_unencodable_value_throws(int value)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => VariableByteInteger.GetSize(value));
    }

    [Fact]
    public void Every_value_round_trips_in_minimal_form()
    {
        var values = Gen.Choose(0, VariableByteInteger.MaxValue).ToArbitrary();
        Prop.ForAll(values, value =>
        {
            var buffer = new byte[VariableByteInteger.MaxLength];
            int written = VariableByteInteger.Write(buffer, value);
            var status = VariableByteInteger.TryRead(buffer.AsSpan(0, written), out int decoded, out int length, out _);
            return status == ReadStatus.Complete && decoded == value && length == written
                && written == VariableByteInteger.GetSize(value);
        }).QuickCheckThrowOnFailure();
    }
}
