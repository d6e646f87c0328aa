using Broker.Connections;
using Broker.Protocol;
using Xunit;

namespace Broker.Tests.Connections;

public sealed class ProblemInformationTests
{
    [Fact]
    public void Reason_String_is_the_message_without_its_spec_reference()
    {
        var packet = new DisconnectPacket { ReasonCode = ReasonCode.ProtocolError };
        ProblemInformation.Attach(packet, "second CONNECT on one connection [MQTT-3.1.0-2]", requested: true, uint.MaxValue);
        Assert.Equal("second CONNECT on one connection", packet.Properties?.ReasonString);
    }

    [Fact]
    public void Long_reasons_are_cut_to_the_maximum_length()
    {
        string text = ProblemInformation.Shorten(new string('x', 500));
        Assert.Equal(ProblemInformation.MaxLength, text.Length);
        Assert.EndsWith("...", text);
    }

    [Fact]
    public void Nothing_is_added_when_the_client_set_Request_Problem_Information_to_0()
    {
        var packet = new ConnAckPacket { ReasonCode = (byte)ReasonCode.BadAuthenticationMethod };
        ProblemInformation.Attach(packet, "authentication method 'x' is not supported", requested: false, uint.MaxValue);
        Assert.Null(packet.Properties);
    }

    [Fact]
    public void Nothing_is_added_when_it_would_exceed_the_client_Maximum_Packet_Size()
    {
        var packet = new DisconnectPacket { ReasonCode = ReasonCode.SessionTakenOver };
        ProblemInformation.Attach(packet, "another connection with the same client id", requested: true, clientMaximumPacketSize: 16);
        Assert.Null(packet.Properties);
        Assert.Equal(3, MqttPacketWriter.GetSize(packet, MqttProtocolVersion.V500));
    }

    [Fact]
    public void Existing_properties_are_kept_beside_the_Reason_String()
    {
        var packet = new ConnAckPacket { ReasonCode = 0x85, Properties = new MqttProperties { ServerKeepAlive = 30 } };
        ProblemInformation.Attach(packet, "client identifier too long", requested: true, uint.MaxValue);
        Assert.Equal((ushort?)30, packet.Properties?.ServerKeepAlive);
        Assert.Equal("client identifier too long", packet.Properties?.ReasonString);
    }
}
