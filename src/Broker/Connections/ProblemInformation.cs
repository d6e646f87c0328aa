using Broker.Protocol;

namespace Broker.Connections;

/// <summary>
/// The 5.0 Reason String the broker puts on a refusal CONNACK and on its DISCONNECT: a short text from the
/// message it logs, so a client can tell an operator why it was refused or closed. Some clients (paho-mqtt 2.1)
/// read a DISCONNECT's reason code only when the packet is longer than two bytes and report every kick as a
/// normal disconnection otherwise; the string makes the reason visible there too.
/// </summary>
internal static class ProblemInformation
{
    /// <summary>Longest Reason String sent, in characters: enough for the codec's messages, small on the wire.</summary>
    public const int MaxLength = 120;

    /// <summary>
    /// Adds <paramref name="reason"/> as the Reason String of <paramref name="packet"/> unless the client asked for
    /// none (Request Problem Information 0 [MQTT-3.1.2-29]) or it would make the packet larger than the client's
    /// Maximum Packet Size [MQTT-3.2.2-19], [MQTT-3.14.2-3]; then the packet goes without it.
    /// </summary>
    public static void Attach(MqttPacket packet, string? reason, bool requested, uint clientMaximumPacketSize)
    {
        if (!requested || string.IsNullOrEmpty(reason))
        {
            return;
        }
        string text = Shorten(reason);
        MqttProperties? previous;
        switch (packet)
        {
            case DisconnectPacket d:
                previous = d.Properties;
                d.Properties = With(previous, text);
                if ((uint)MqttPacketWriter.GetSize(d, MqttProtocolVersion.V500) > clientMaximumPacketSize)
                {
                    d.Properties = previous;
                }
                break;
            case ConnAckPacket a:
                previous = a.Properties;
                a.Properties = With(previous, text);
                if ((uint)MqttPacketWriter.GetSize(a, MqttProtocolVersion.V500) > clientMaximumPacketSize)
                {
                    a.Properties = previous;
                }
                break;
        }
    }

    /// <summary>The text without the spec reference in brackets (the client has the reason code for that), cut to <see cref="MaxLength"/>.</summary>
    public static string Shorten(string reason)
    {
        int bracket = reason.IndexOf(" [MQTT-", StringComparison.Ordinal);
        string text = bracket > 0 ? reason[..bracket] : reason;
        return text.Length <= MaxLength ? text : text[..(MaxLength - 3)] + "...";
    }

    private static MqttProperties With(MqttProperties? properties, string text)
    {
        var copy = properties?.Clone() ?? new MqttProperties();
        copy.ReasonString = text;
        return copy;
    }
}
