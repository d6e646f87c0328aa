using System.Buffers;

namespace Broker.Protocol;

/// <summary>The Variable Byte Integer of 1.5.5 (both specs): 7 bits a byte, at most 4 bytes.</summary>
public static class VariableByteInteger
{
    public const int MaxValue = 268_435_455;
    public const int MaxLength = 4;

    public static int GetSize(int value) => value switch
    {
        < 0 => throw new ArgumentOutOfRangeException(nameof(value)),
        < 128 => 1,
        < 16_384 => 2,
        < 2_097_152 => 3,
        <= MaxValue => 4,
        _ => throw new ArgumentOutOfRangeException(nameof(value)),
    };

    public static int Write(Span<byte> destination, int value)
    {
        int i = 0;
        uint v = (uint)value;
        do
        {
            byte b = (byte)(v & 0x7F);
            v >>= 7;
            if (v > 0)
            {
                b |= 0x80;
            }
            destination[i++] = b;
        }
        while (v > 0);
        return i;
    }

    /// <summary>
    /// Decodes from a contiguous span. Returns NeedMoreData when the span ends inside the integer.
    /// A fifth byte, or a non-minimal encoding ([MQTT-1.5.5-1]: a trailing 0x00 continuation), is malformed.
    /// </summary>
    public static ReadStatus TryRead(ReadOnlySpan<byte> source, out int value, out int length, out MqttDecodeError error)
    {
        value = 0;
        length = 0;
        error = default;
        int multiplier = 0;
        for (int i = 0; i < MaxLength; i++)
        {
            if (i >= source.Length)
            {
                return ReadStatus.NeedMoreData;
            }
            byte b = source[i];
            value |= (b & 0x7F) << multiplier;
            multiplier += 7;
            if ((b & 0x80) == 0)
            {
                length = i + 1;
                if (b == 0 && i > 0)
                {
                    error = Errors.VbiNotMinimal;
                    return ReadStatus.Error;
                }
                return ReadStatus.Complete;
            }
        }
        error = Errors.VbiTooLong;
        return ReadStatus.Error;
    }

    /// <summary>The same on a possibly multi-segment sequence, without copying it.</summary>
    public static ReadStatus TryRead(in ReadOnlySequence<byte> source, out int value, out int length, out MqttDecodeError error)
    {
        if (source.FirstSpan.Length >= MaxLength || source.IsSingleSegment)
        {
            return TryRead(source.FirstSpan, out value, out length, out error);
        }
        Span<byte> head = stackalloc byte[MaxLength];
        int n = (int)Math.Min(source.Length, MaxLength);
        source.Slice(0, n).CopyTo(head);
        return TryRead(head[..n], out value, out length, out error);
    }
}
