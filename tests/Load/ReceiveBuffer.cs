using System.Buffers;
using Broker.Protocol;

namespace Broker.Load;

/// <summary>Receives the complete frames a <see cref="ReceiveBuffer"/> finds, in order.</summary>
internal interface IFrameHandler
{
    /// <summary>Handles one frame (its body is valid only during the call); false stops the connection.</summary>
    bool OnFrame(in MqttFrame frame);
}

internal enum ReceiveOutcome
{
    /// <summary>Every complete frame was handled; keep receiving into <see cref="ReceiveBuffer.FreeOffset"/>.</summary>
    NeedMoreData,
    /// <summary>The handler refused a frame; the connection is over.</summary>
    Stopped,
    /// <summary>The bytes are not MQTT.</summary>
    Malformed,
    /// <summary>A frame announced more bytes than the slice can ever hold.</summary>
    FrameTooLarge,
}

/// <summary>
/// One client's receive space: a fixed slice of a slab shared by the whole fleet. Socket receives
/// append at <see cref="FreeOffset"/>; <see cref="Commit"/> hands out every complete frame in order
/// and moves a trailing partial frame to the front of the slice. No allocation per receive.
/// </summary>
internal sealed class ReceiveBuffer
{
    private readonly int _offset;
    private readonly int _capacity;
    private int _fill;

    public ReceiveBuffer(byte[] slab, int offset, int capacity)
    {
        Slab = slab;
        _offset = offset;
        _capacity = capacity;
    }

    public byte[] Slab { get; }
    public int FreeOffset => _offset + _fill;
    public int FreeCount => _capacity - _fill;
    public int Buffered => _fill;

    public void Reset() => _fill = 0;

    public ReceiveOutcome Commit<THandler>(int received, THandler handler) where THandler : IFrameHandler
    {
        _fill += received;
        int consumed = 0;
        ReceiveOutcome outcome = ReceiveOutcome.NeedMoreData;
        while (consumed < _fill)
        {
            var buffer = new ReadOnlySequence<byte>(Slab, _offset + consumed, _fill - consumed);
            ReadStatus status = Wire.TryReadFrame(buffer, _capacity, out MqttFrame frame, out MqttDecodeError error);
            if (status == ReadStatus.NeedMoreData)
            {
                break;
            }

            if (status == ReadStatus.Error)
            {
                return error.Code == ReasonCode.PacketTooLarge ? ReceiveOutcome.FrameTooLarge : ReceiveOutcome.Malformed;
            }

            consumed += frame.TotalLength;
            if (!handler.OnFrame(frame))
            {
                outcome = ReceiveOutcome.Stopped;
                break;
            }
        }

        if (consumed > 0)
        {
            Slab.AsSpan(_offset + consumed, _fill - consumed).CopyTo(Slab.AsSpan(_offset));
            _fill -= consumed;
        }

        return outcome;
    }
}
