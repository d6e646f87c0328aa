namespace Broker.Protocol;

/// <summary>Outcome of an attempt to read a frame or a packet from buffered input.</summary>
public enum ReadStatus
{
    /// <summary>A whole packet was read; the caller advances to the reported position.</summary>
    Complete,
    /// <summary>The buffer holds only part of a packet; nothing was consumed.</summary>
    NeedMoreData,
    /// <summary>The input violates the protocol; the error says how and which reason code to send.</summary>
    Error,
}

/// <summary>
/// Why input was rejected: the MQTT 5 reason code the broker sends (or maps to a 3.1.1 action)
/// and a message for the log. Messages are constant strings so that reporting never allocates.
/// </summary>
public readonly record struct MqttDecodeError(ReasonCode Code, string Message)
{
    public override string ToString() => $"0x{(byte)Code:X2} {Code}: {Message}";
}
