using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace Broker.Protocol;

/// <summary>
/// Reads the fields of one packet body held in a contiguous span. Every read checks the remaining
/// length first, so a length field that lies can never make the codec read past the packet.
/// On failure the reader keeps the first error and every later read fails too.
/// </summary>
internal ref struct SpanReader
{
    private readonly ReadOnlySpan<byte> _span;
    private int _position;

    public SpanReader(ReadOnlySpan<byte> span)
    {
        _span = span;
        _position = 0;
        Error = default;
        Failed = false;
    }

    public MqttDecodeError Error;
    public bool Failed;

    public readonly int Position => _position;
    public readonly int Remaining => _span.Length - _position;
    public readonly bool End => _position == _span.Length;

    public bool Fail(MqttDecodeError error)
    {
        if (!Failed)
        {
            Failed = true;
            Error = error;
        }
        return false;
    }

    public bool TryReadByte(out byte value)
    {
        if (Failed || Remaining < 1)
        {
            value = 0;
            return Fail(Errors.Truncated);
        }
        value = _span[_position++];
        return true;
    }

    public bool TryReadUInt16(out ushort value)
    {
        if (Failed || Remaining < 2)
        {
            value = 0;
            return Fail(Errors.Truncated);
        }
        value = BinaryPrimitives.ReadUInt16BigEndian(_span.Slice(_position, 2));
        _position += 2;
        return true;
    }

    public bool TryReadUInt32(out uint value)
    {
        if (Failed || Remaining < 4)
        {
            value = 0;
            return Fail(Errors.Truncated);
        }
        value = BinaryPrimitives.ReadUInt32BigEndian(_span.Slice(_position, 4));
        _position += 4;
        return true;
    }

    public bool TryReadVariableByteInteger(out int value)
    {
        if (Failed)
        {
            value = 0;
            return false;
        }
        var status = VariableByteInteger.TryRead(_span[_position..], out value, out int length, out var error);
        if (status == ReadStatus.Complete)
        {
            _position += length;
            return true;
        }
        return Fail(status == ReadStatus.NeedMoreData ? Errors.Truncated : error);
    }

    /// <summary>Binary Data (1.5.6): a two-byte length then that many bytes, as a slice of the input.</summary>
    public bool TryReadBinary(out ReadOnlySpan<byte> value, out int offset)
    {
        offset = 0;
        value = default;
        if (!TryReadUInt16(out ushort length))
        {
            return false;
        }
        if (Remaining < length)
        {
            return Fail(Errors.Truncated);
        }
        offset = _position;
        value = _span.Slice(_position, length);
        _position += length;
        return true;
    }

    /// <summary>A UTF-8 Encoded String validated in place (no allocation).</summary>
    public bool TryReadUtf8(out ReadOnlySpan<byte> value, out int offset)
    {
        if (!TryReadBinary(out value, out offset))
        {
            return false;
        }
        if (!Utf8Rules.TryValidate(value, out var error))
        {
            return Fail(error);
        }
        return true;
    }

    public bool TryReadString(out string value)
    {
        if (!TryReadUtf8(out var bytes, out _))
        {
            value = string.Empty;
            return false;
        }
        value = bytes.IsEmpty ? string.Empty : Utf8Rules.Strict.GetString(bytes);
        return true;
    }

    public bool TryReadBytes(out byte[] value)
    {
        if (!TryReadBinary(out var bytes, out _))
        {
            value = [];
            return false;
        }
        value = bytes.ToArray();
        return true;
    }

    public ReadOnlySpan<byte> ReadRest()
    {
        var rest = _span[_position..];
        _position = _span.Length;
        return rest;
    }

    public bool Skip(int count)
    {
        if (Failed || Remaining < count)
        {
            return Fail(Errors.Truncated);
        }
        _position += count;
        return true;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly ReadOnlySpan<byte> Slice(int offset, int length) => _span.Slice(offset, length);
}
