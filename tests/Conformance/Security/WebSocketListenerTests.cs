using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Security.Cryptography.X509Certificates;
using Broker.Connections;
using Broker.Hosting;
using Broker.Protocol;
using Broker.Tests.Security;
using Conformance.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Xunit;
using static Conformance.Security.SecurityKit;

namespace Conformance.Security;

/// <summary>
/// MQTT over WebSocket (<c>Broker:WebSocket</c>) on its own Kestrel listener: subprotocol "mqtt" (and "mqttv3.1"),
/// binary messages, the same connection as TCP (keep-alive, authentication, listener label), wss:// on the TLS
/// certificate, and a shutdown that closes WebSocket clients like the others.
/// </summary>
public sealed class WebSocketListenerTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private static Dictionary<string, string?> WebSocketSettings() => new()
    {
        ["Broker:WebSocket:Enabled"] = "true",
        ["Broker:WebSocket:Address"] = "127.0.0.1",
        ["Broker:WebSocket:Port"] = "0",
    };

    private static Uri Url(BrokerInstance broker, bool secure = false)
    {
        var server = broker.Services.GetRequiredService<WebSocketServer>();
        var endPoint = secure ? server.TlsEndPoint! : server.PlainEndPoint!;
        return new Uri($"{(secure ? "wss" : "ws")}://{(secure ? "localhost" : "127.0.0.1")}:{endPoint.Port}/mqtt");
    }

    /// <summary>A client WebSocket as a <see cref="RawClient"/>: MQTT packets in binary messages.</summary>
    private static async Task<RawClient> ConnectWebSocketAsync(Uri url, string subProtocol = "mqtt", X509Certificate2? trust = null)
    {
        var webSocket = new ClientWebSocket();
        webSocket.Options.AddSubProtocol(subProtocol);
        if (trust is not null)
        {
            webSocket.Options.RemoteCertificateValidationCallback = (_, certificate, _, _) =>
            {
                using var chain = new X509Chain();
                chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
                chain.ChainPolicy.CustomTrustStore.Add(trust);
                chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                return chain.Build(X509CertificateLoader.LoadCertificate(certificate!.GetRawCertData()));
            };
        }
        using var timeout = new CancellationTokenSource(Wait);
        await webSocket.ConnectAsync(url, timeout.Token);
        Assert.Equal(subProtocol, webSocket.SubProtocol);
        // The socket is only a placeholder here: every byte goes through the WebSocket.
        return RawClient.Wrap(new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp),
            WebSocketStream.Create(webSocket, WebSocketMessageType.Binary, ownsWebSocket: true));
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311, "mqtt")]
    [InlineData(MqttProtocolVersion.V500, "mqtt")]
    [InlineData(MqttProtocolVersion.V311, "mqttv3.1")]
    public async Task A_WebSocket_client_exchanges_messages_with_TCP_clients(MqttProtocolVersion version, string subProtocol)
    {
        await using var broker = await BrokerInstance.StartAsync(WebSocketSettings());
        await using var ws = await ConnectWebSocketAsync(Url(broker), subProtocol);
        Assert.Equal(0, (await ws.HandshakeAsync(version, "over-ws", 30)).ReasonCode);
        Assert.Equal([1], await SubscribeAsync(ws, version, 1, ("ws/#", QualityOfService.AtLeastOnce)));

        await using var tcp = await TestClients.RawConnectedAsync(broker, version, "over-tcp");
        // 200 KB: one MQTT packet spread over many WebSocket frames and reads.
        var payload = new string('x', 200_000);
        await PublishAsync(tcp, version, "ws/big", payload, QualityOfService.AtLeastOnce, 1);
        var received = await NextPublishAsync(ws, version);
        Assert.Equal(("ws/big", payload), (received.Topic, Text(received)));
        await PublishAsync(ws, version, "ws/back", "pong", QualityOfService.AtLeastOnce, 2);
        await ws.ExpectAsync<PubAckPacket>(version, Wait);

        var connection = broker.Services.GetRequiredService<ConnectionRegistry>().Snapshot().Single(c => c.ClientId == "over-ws");
        Assert.Equal("ws", connection.Listener);
        Assert.Equal(IPAddress.Loopback, ((IPEndPoint)connection.ClientEndPoint!).Address);
        // Idle again: the connection holds no buffer, so the stream's zero-byte read waits for the next message.
        await WaitForAsync(() => !connection.HoldsIoBuffers, "an idle WebSocket connection still holds a buffer");
        // Kestrel's socket was reachable, so it got the kernel keep-alive of Broker:TcpKeepAlive.
        Assert.Empty(broker.Logs.Messages(21));
    }

    [Fact]
    public async Task A_WebSocket_without_the_mqtt_subprotocol_or_a_plain_HTTP_request_is_refused()
    {
        await using var broker = await BrokerInstance.StartAsync(WebSocketSettings());
        var ex = await Assert.ThrowsAnyAsync<WebSocketException>(() => ConnectWebSocketAsync(Url(broker), "chat"));
        Assert.Contains("400", ex.Message);

        using var http = new HttpClient { Timeout = Wait };
        var response = await http.GetAsync(new Uri(Url(broker).ToString().Replace("ws://", "http://", StringComparison.Ordinal)), TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Empty(broker.Services.GetRequiredService<ConnectionRegistry>().Snapshot());
    }

    [Fact]
    public async Task MQTT_6_0_0_1_A_text_message_closes_the_connection()
    {
        await using var broker = await BrokerInstance.StartAsync(WebSocketSettings());
        using var webSocket = new ClientWebSocket();
        webSocket.Options.AddSubProtocol("mqtt");
        await webSocket.ConnectAsync(Url(broker), TestContext.Current.CancellationToken);
        var connect = new System.Buffers.ArrayBufferWriter<byte>();
        MqttPacketWriter.Write(connect, Connect(MqttProtocolVersion.V311, "texting"), MqttProtocolVersion.V311);

        await webSocket.SendAsync(connect.WrittenMemory, WebSocketMessageType.Text, endOfMessage: true, TestContext.Current.CancellationToken);

        // No CONNACK: the connection ends (the WebSocket is aborted or closed).
        using var timeout = new CancellationTokenSource(Wait);
        var buffer = new byte[64];
        try
        {
            var result = await webSocket.ReceiveAsync(buffer, timeout.Token);
            Assert.Equal(WebSocketMessageType.Close, result.MessageType);
        }
        catch (WebSocketException)
        {
            // Aborted: as good as a close.
        }
        await WaitForAsync(() => broker.Services.GetRequiredService<ConnectionRegistry>().Count == 0, "the connection is still open");
        Assert.DoesNotContain(broker.Logs.Messages(2), m => m.Contains("texting", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Keep_alive_and_authentication_are_those_of_every_listener()
    {
        var settings = WebSocketSettings();
        settings["Broker:Auth:PasswordFile"] = WritePasswordFile(_dir);
        settings["Broker:Auth:AllowAnonymous"] = "false";
        await using var broker = await BrokerInstance.StartAsync(settings);
        var v5 = MqttProtocolVersion.V500;

        await using var anonymous = await ConnectWebSocketAsync(Url(broker));
        await anonymous.SendAsync(Connect(v5, "ws-anonymous"), v5);
        Assert.Equal((byte)ReasonCode.NotAuthorized, (await anonymous.ExpectAsync<ConnAckPacket>(v5, Wait)).ReasonCode);

        await using var alice = await ConnectWebSocketAsync(Url(broker));
        var connect = Connect(v5, "ws-alice", "alice", "alice-pw");
        connect.KeepAliveSeconds = 1;
        await alice.SendAsync(connect, v5);
        Assert.Equal(0, (await alice.ExpectAsync<ConnAckPacket>(v5, Wait)).ReasonCode);
        // Keep-alive 1 s and silence: closed after 1.5 s with DISCONNECT 0x8D, as on TCP.
        var disconnect = await alice.ExpectAsync<DisconnectPacket>(v5, TimeSpan.FromSeconds(10));
        Assert.Equal(ReasonCode.KeepAliveTimeout, disconnect.ReasonCode);
        await broker.Logs.WaitForAsync(3, "Client ws-alice disconnected: MQTT 5.0, keep-alive 1s, cause keep_alive_timeout", Wait);
    }

    [Fact]
    public async Task Broker_Limits_MaxConnections_counts_WebSocket_clients_too()
    {
        var settings = WebSocketSettings();
        settings["Broker:Limits:MaxConnections"] = "1";
        await using var broker = await BrokerInstance.StartAsync(settings);
        var v5 = MqttProtocolVersion.V500;
        await using var tcp = await RawClient.ConnectAsync(broker);
        Assert.Equal(0, (await tcp.HandshakeAsync(v5, "tcp-first", 60)).ReasonCode);

        await using var overWebSocket = await ConnectWebSocketAsync(Url(broker));
        await overWebSocket.SendAsync(Connect(v5, "ws-over"), v5);
        Assert.Equal((byte)ReasonCode.QuotaExceeded, (await overWebSocket.ExpectAsync<ConnAckPacket>(v5, Wait)).ReasonCode);
    }

    [Fact]
    public async Task Wss_serves_the_TLS_certificate_and_names_its_listener()
    {
        using var authority = TestCertificates.CreateAuthority("WSS Test CA");
        using var server = TestCertificates.CreateLeaf(authority, "CN=localhost", "server");
        var (certificate, key) = TestCertificates.WritePem(_dir, "server", server);
        var settings = WebSocketSettings();
        settings["Broker:WebSocket:PlainEnabled"] = "false";
        settings["Broker:WebSocket:TlsPort"] = "0";
        settings["Broker:Tls:Enabled"] = "true";
        settings["Broker:Tls:Address"] = "127.0.0.1";
        settings["Broker:Tls:Port"] = "0";
        settings["Broker:Tls:CertificatePath"] = certificate;
        settings["Broker:Tls:KeyPath"] = key;
        await using var broker = await BrokerInstance.StartAsync(settings);
        Assert.Null(broker.Services.GetRequiredService<WebSocketServer>().PlainEndPoint);

        await using var wss = await ConnectWebSocketAsync(Url(broker, secure: true), trust: authority);
        Assert.Equal(0, (await wss.HandshakeAsync(MqttProtocolVersion.V500, "over-wss", 30)).ReasonCode);
        var connection = broker.Services.GetRequiredService<ConnectionRegistry>().Snapshot().Single();
        Assert.Equal("wss", connection.Listener);
    }

    [Fact]
    public async Task Shutdown_tells_WebSocket_clients_and_ends_their_requests()
    {
        var broker = await BrokerInstance.StartAsync(WebSocketSettings());
        var v5 = MqttProtocolVersion.V500;
        await using var ws = await ConnectWebSocketAsync(Url(broker));
        Assert.Equal(0, (await ws.HandshakeAsync(v5, "ws-shutdown", 30)).ReasonCode);

        var stopped = TimeProvider.System.GetTimestamp();
        var stopping = broker.DisposeAsync().AsTask();
        Assert.Equal(ReasonCode.ServerShuttingDown, (await ws.ExpectAsync<DisconnectPacket>(v5, Wait)).ReasonCode);
        Assert.Null(await ws.ReceiveAsync(v5, Wait));
        await stopping.WaitAsync(Wait, TestContext.Current.CancellationToken);
        Assert.True(TimeProvider.System.GetElapsedTime(stopped) < TimeSpan.FromSeconds(5), "shutdown waited for the WebSocket request");
    }

    [Fact]
    public async Task A_DISCONNECT_followed_by_the_clients_close_message_ends_in_a_close_handshake_not_a_reset()
    {
        await using var broker = await BrokerInstance.StartAsync(WebSocketSettings());
        using var webSocket = new ClientWebSocket();
        webSocket.Options.AddSubProtocol("mqtt");
        var token = TestContext.Current.CancellationToken;
        await webSocket.ConnectAsync(Url(broker), token);
        var packets = new System.Buffers.ArrayBufferWriter<byte>();
        MqttPacketWriter.Write(packets, Connect(MqttProtocolVersion.V311, "leaving"), MqttProtocolVersion.V311);
        await webSocket.SendAsync(packets.WrittenMemory, WebSocketMessageType.Binary, endOfMessage: true, token);
        var buffer = new byte[64];
        Assert.Equal(WebSocketMessageType.Binary, (await webSocket.ReceiveAsync(buffer, token)).MessageType);

        // What MQTT.js does on end(): DISCONNECT, then its close message at once, before the broker has answered. The
        // broker stops reading MQTT at the DISCONNECT; its close handshake must still read the client's close message,
        // or the TCP connection is reset with it unread (the client then sees EPIPE/ECONNRESET instead of a close).
        packets.Clear();
        MqttPacketWriter.Write(packets, new DisconnectPacket(), MqttProtocolVersion.V311);
        await webSocket.SendAsync(packets.WrittenMemory, WebSocketMessageType.Binary, endOfMessage: true, token);
        await webSocket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, token);

        using var timeout = new CancellationTokenSource(Wait);
        var close = await webSocket.ReceiveAsync(buffer, timeout.Token);
        Assert.Equal(WebSocketMessageType.Close, close.MessageType);
        Assert.Equal(WebSocketCloseStatus.NormalClosure, webSocket.CloseStatus);
        Assert.Equal(WebSocketState.Closed, webSocket.State);
        await WaitForAsync(() => broker.Services.GetRequiredService<ConnectionRegistry>().Count == 0, "the connection is still open");
    }

    private static Task WaitForAsync(Func<bool> condition, string failure) => Eventually.TrueAsync(condition, Wait, failure);
}
