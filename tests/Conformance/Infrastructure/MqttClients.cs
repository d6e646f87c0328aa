using MQTTnet;
using MQTTnet.Formatter;

namespace Conformance.Infrastructure;

/// <summary>MQTTnet clients pointed at a <see cref="BrokerInstance"/>.</summary>
internal static class MqttClients
{
    public static readonly MqttClientFactory Factory = new();

    public static MqttClientOptionsBuilder Options(BrokerInstance broker, MqttProtocolVersion version, string? clientId = null)
        => new MqttClientOptionsBuilder()
            .WithTcpServer("127.0.0.1", broker.Port)
            .WithProtocolVersion(version)
            .WithClientId(clientId ?? "c-" + Guid.NewGuid().ToString("N")[..12])
            .WithTimeout(TimeSpan.FromSeconds(10));

    public static async Task<IMqttClient> ConnectAsync(BrokerInstance broker, MqttProtocolVersion version, string? clientId = null,
        Action<MqttClientOptionsBuilder>? configure = null)
    {
        var client = Factory.CreateMqttClient();
        var options = Options(broker, version, clientId);
        configure?.Invoke(options);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await client.ConnectAsync(options.Build(), timeout.Token);
        return client;
    }
}
