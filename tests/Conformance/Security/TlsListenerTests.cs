using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Reflection;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Broker.Connections;
using Broker.Diagnostics;
using Broker.Hosting;
using Broker.Protocol;
using Broker.Security;
using Broker.Tests.Security;
using Conformance.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Xunit;
using static Conformance.Security.SecurityKit;

namespace Conformance.Security;

/// <summary>
/// The TLS listener (<c>Broker:Tls</c>) with certificates made at run time: TLS 1.2 and 1.3 only, plain MQTT sent to
/// the TLS port fails cleanly while other clients go on, client certificates authenticate their CN, a replaced
/// certificate is served without a restart, and a TLS client is an ordinary connection (same behaviour, its listener
/// named in the metrics).
/// </summary>
public sealed class TlsListenerTests : IDisposable
{
    private const int HandshakeFailedEvent = 1006;
    private readonly TempDirectory _dir = new();
    private readonly X509Certificate2 _authority = TestCertificates.CreateAuthority("Broker Test CA");

    public void Dispose()
    {
        _authority.Dispose();
        _dir.Dispose();
    }

    private Dictionary<string, string?> TlsSettings(bool clientCa = false, bool requireClientCertificate = false)
    {
        using var server = TestCertificates.CreateLeaf(_authority, "CN=localhost", "server");
        var (certificate, key) = TestCertificates.WritePem(_dir, "server", server);
        var settings = new Dictionary<string, string?>
        {
            ["Broker:Tls:Enabled"] = "true",
            ["Broker:Tls:Address"] = "127.0.0.1",
            ["Broker:Tls:Port"] = "0",
            ["Broker:Tls:CertificatePath"] = certificate,
            ["Broker:Tls:KeyPath"] = key,
        };
        if (clientCa)
        {
            settings["Broker:Tls:ClientCaPath"] = TestCertificates.WriteCertificatePem(_dir, "client-ca", _authority);
            settings["Broker:Tls:RequireClientCertificate"] = requireClientCertificate ? "true" : "false";
        }
        return settings;
    }

    private static IPEndPoint TlsEndPoint(BrokerInstance broker) => broker.Services.GetRequiredService<TlsServer>().LocalEndPoint;

    /// <summary>A TLS client that trusts the test authority only; the server's certificate is returned too.</summary>
    private async Task<(RawClient Client, X509Certificate2 ServerCertificate, SslProtocols Protocol)> ConnectTlsAsync(BrokerInstance broker,
        SslProtocols protocols = SslProtocols.None, X509Certificate2? clientCertificate = null)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(TlsEndPoint(broker));
        var ssl = new SslStream(new NetworkStream(socket, ownsSocket: false));
        X509Certificate2? seen = null;
        using var timeout = new CancellationTokenSource(Wait);
        await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "localhost",
            EnabledSslProtocols = protocols,
            ClientCertificates = clientCertificate is null ? null : [clientCertificate],
            RemoteCertificateValidationCallback = (_, certificate, _, _) =>
            {
                seen = X509CertificateLoader.LoadCertificate(certificate!.GetRawCertData());
                using var chain = new X509Chain();
                chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
                chain.ChainPolicy.CustomTrustStore.Add(_authority);
                chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                return chain.Build(seen);
            },
        }, timeout.Token);
        return (RawClient.Wrap(socket, ssl), seen!, ssl.SslProtocol);
    }

    [Theory]
    [InlineData(SslProtocols.Tls12)]
    [InlineData(SslProtocols.Tls13)]
    public async Task TLS_1_2_and_1_3_clients_exchange_messages_with_plain_TCP_clients(SslProtocols protocol)
    {
        await using var broker = await BrokerInstance.StartAsync(TlsSettings());
        var (tls, _, negotiated) = await ConnectTlsAsync(broker, protocol);
        await using var _ = tls;
        Assert.Equal(protocol, negotiated);
        var v5 = MqttProtocolVersion.V500;
        Assert.Equal(0, (await tls.HandshakeAsync(v5, "over-tls", 30)).ReasonCode);
        Assert.Equal([1], await SubscribeAsync(tls, v5, 1, ("t/#", QualityOfService.AtLeastOnce)));

        await using var tcp = await TestClients.RawConnectedAsync(broker, MqttProtocolVersion.V311, "over-tcp");
        await PublishAsync(tcp, MqttProtocolVersion.V311, "t/1", "hello", QualityOfService.AtLeastOnce, 1);
        var received = await NextPublishAsync(tls, v5);
        Assert.Equal(("t/1", "hello"), (received.Topic, Text(received)));

        var connection = broker.Services.GetRequiredService<ConnectionRegistry>().Snapshot().Single(c => c.ClientId == "over-tls");
        Assert.Equal("tls", connection.Listener);
    }

    [Fact]
    public async Task A_TLS_1_1_hello_is_refused_with_an_alert()
    {
        await using var broker = await BrokerInstance.StartAsync(TlsSettings());
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(TlsEndPoint(broker));

        // A ClientHello that offers TLS 1.1 at most (record 3.2, client_version 3.2), written by hand: the client
        // libraries here may refuse to send one at all.
        await socket.SendAsync(ClientHello(0x02), SocketFlags.None);

        var answer = await ReadUntilClosedAsync(socket);
        Assert.True(answer.Length == 0 || answer[0] == 0x15, $"expected a TLS alert record or a close, got {Convert.ToHexString(answer)}");
        Assert.Contains("refused", await broker.Logs.WaitForAsync(HandshakeFailedEvent, "failed", Wait));
    }

    [Fact]
    public async Task Plain_MQTT_to_the_TLS_port_fails_cleanly_and_nobody_else_notices()
    {
        await using var broker = await BrokerInstance.StartAsync(TlsSettings());
        var v5 = MqttProtocolVersion.V500;
        var (tls, _, _) = await ConnectTlsAsync(broker);
        await using var _ = tls;
        Assert.Equal(0, (await tls.HandshakeAsync(v5, "tls-bystander", 30)).ReasonCode);
        await using var tcp = await TestClients.RawConnectedAsync(broker, v5, "tcp-bystander");
        long failures = 0;
        using var listener = CountTlsFailures(broker, () => Interlocked.Increment(ref failures));

        foreach (var id in new[] { "confused-1", "confused-2", "confused-3" })
        {
            using var plain = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await plain.ConnectAsync(TlsEndPoint(broker));
            var connect = new System.Buffers.ArrayBufferWriter<byte>();
            MqttPacketWriter.Write(connect, new ConnectPacket { ProtocolVersion = v5, ClientId = id, KeepAliveSeconds = 30, CleanStart = true }, v5);
            await plain.SendAsync(connect.WrittenMemory, SocketFlags.None);
            var answer = await ReadUntilClosedAsync(plain);
            Assert.True(answer.Length == 0 || answer[0] == 0x15, $"expected a TLS alert or a close, got {Convert.ToHexString(answer)}");
        }

        await WaitForAsync(() => Interlocked.Read(ref failures) == 3, "three refused handshakes counted");
        Assert.Equal(3, broker.Logs.Messages(HandshakeFailedEvent).Count(m => m.Contains("(refused)", StringComparison.Ordinal)));
        Assert.Empty(broker.Logs.Errors);
        // Nothing warned about but a stall of this machine itself (the wheel's tick-lag warning under a loaded test run).
        Assert.DoesNotContain(broker.Logs.Entries, e => e.Level >= Microsoft.Extensions.Logging.LogLevel.Warning
            && e.Category != "Broker.Hosting.BrokerStateObserver");
        // Both bystanders are still served.
        foreach (var client in new[] { tls, tcp })
        {
            await client.SendAsync(new PingReqPacket(), v5);
            await client.ExpectAsync<PingRespPacket>(v5, Wait);
        }
    }

    [Fact]
    public async Task A_client_certificate_authenticates_its_common_name_as_the_user()
    {
        var settings = TlsSettings(clientCa: true);
        settings["Broker:Auth:AllowAnonymous"] = "false";
        settings["Broker:Auth:AclFile"] = _dir.Write("acl", "user device-7\ntopic readwrite dev/7/#\n");
        await using var broker = await BrokerInstance.StartAsync(settings);
        using var deviceCertificate = TestCertificates.CreateLeaf(_authority, "CN=device-7, O=Fleet", "client");
        var v311 = MqttProtocolVersion.V311;

        var (device, _, _) = await ConnectTlsAsync(broker, clientCertificate: deviceCertificate);
        await using var _ = device;
        // No user name or password in CONNECT: the certificate is the identity.
        Assert.Equal(0, (await device.HandshakeAsync(v311, "device-7-conn", 30)).ReasonCode);
        Assert.Equal([1, 0x80], await SubscribeAsync(device, v311, 1, ("dev/7/#", QualityOfService.AtLeastOnce), ("dev/8/#", QualityOfService.AtLeastOnce)));
        var connection = broker.Services.GetRequiredService<ConnectionRegistry>().Snapshot().Single(c => c.ClientId == "device-7-conn");
        Assert.Equal("device-7", connection.Facts!.UserName);

        // Without a certificate the same listener needs credentials, and anonymous is refused here.
        var (anonymous, _, _) = await ConnectTlsAsync(broker);
        await using var __ = anonymous;
        Assert.Equal((byte)ConnectReturnCode.NotAuthorized, (await anonymous.HandshakeAsync(v311, "no-cert", 30)).ReasonCode);
    }

    [Fact]
    public async Task With_RequireClientCertificate_a_client_without_one_fails_the_handshake()
    {
        await using var broker = await BrokerInstance.StartAsync(TlsSettings(clientCa: true, requireClientCertificate: true));
        await Assert.ThrowsAnyAsync<Exception>(async () =>
        {
            var (client, _, _) = await ConnectTlsAsync(broker);
            await using var _ = client;
            // TLS 1.3 clients learn of the refusal at their first read.
            await client.SendAsync(TlsConnect(), MqttProtocolVersion.V500);
            if (await client.ReceiveAsync(MqttProtocolVersion.V500, Wait) is null)
            {
                throw new IOException("closed by the broker");
            }
        });
        await broker.Logs.WaitForAsync(1109, "no client certificate", Wait);
    }

    [Fact]
    public async Task A_replaced_certificate_is_served_to_new_connections_without_a_restart()
    {
        var settings = TlsSettings();
        await using var broker = await BrokerInstance.StartAsync(settings);
        var (before, oldCertificate, _) = await ConnectTlsAsync(broker);
        await using var _ = before;
        Assert.Equal(0, (await before.HandshakeAsync(MqttProtocolVersion.V500, "before-renewal", 30)).ReasonCode);

        using var renewed = TestCertificates.CreateLeaf(_authority, "CN=localhost", "server", TimeSpan.FromDays(25));
        string key = renewed.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem();
        // Key first, then certificate (a half-done pair is refused and the old one stays: tested in Broker.Tests).
        File.WriteAllText(settings["Broker:Tls:KeyPath"]!, key);
        File.WriteAllText(settings["Broker:Tls:CertificatePath"]!, renewed.ExportCertificatePem());
        broker.Services.GetRequiredService<TlsServerOptionsFactory>().ReloadIfChanged();

        var (after, newCertificate, _) = await ConnectTlsAsync(broker);
        await using var __ = after;
        Assert.NotEqual(oldCertificate.Thumbprint, newCertificate.Thumbprint);
        Assert.Equal(renewed.Thumbprint, newCertificate.Thumbprint);
        Assert.Equal(0, (await after.HandshakeAsync(MqttProtocolVersion.V500, "after-renewal", 30)).ReasonCode);
        // The connection opened before keeps its session.
        await before.SendAsync(new PingReqPacket(), MqttProtocolVersion.V500);
        await before.ExpectAsync<PingRespPacket>(MqttProtocolVersion.V500, Wait);
    }

    [Fact]
    public async Task An_idle_TLS_client_holds_no_read_buffer_and_counts_under_its_listener()
    {
        await using var broker = await BrokerInstance.StartAsync(TlsSettings());
        var connected = new Dictionary<string, long>();
        var meter = broker.Services.GetRequiredService<BrokerMetrics>().Meter;
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (ReferenceEquals(instrument.Meter, meter) && instrument.Name == "mqtt.clients.connected")
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            string key = string.Join(",", tags.ToArray().Select(t => $"{t.Key}={t.Value}"));
            lock (connected)
            {
                connected[key] = connected.GetValueOrDefault(key) + value;
            }
        });
        listener.Start();

        var (tls, _, _) = await ConnectTlsAsync(broker);
        await using var _ = tls;
        Assert.Equal(0, (await tls.HandshakeAsync(MqttProtocolVersion.V311, "idle-tls", 30)).ReasonCode);
        await tls.SendAsync(new PingReqPacket(), MqttProtocolVersion.V311);
        await tls.ExpectAsync<PingRespPacket>(MqttProtocolVersion.V311, Wait);

        var connection = broker.Services.GetRequiredService<ConnectionRegistry>().Snapshot().Single();
        await WaitForAsync(() => !connection.HoldsIoBuffers, "the idle TLS connection still holds a buffer");
        // SslStream's own read buffer: given back once drained, and a zero-byte read waits without taking it again.
        var transport = (StreamTransport)typeof(MqttConnection).GetField("_stream", BindingFlags.NonPublic | BindingFlags.Instance)!.GetValue(connection)!;
        var ssl = Assert.IsType<SslStream>(transport.Stream);
        await WaitForAsync(() => SslReadBufferBytes(ssl) == 0, "SslStream holds its read buffer while idle");

        lock (connected)
        {
            Assert.Equal(1, connected.GetValueOrDefault("protocol=3.1.1,listener=tls"));
        }
    }

    /// <summary>The size of SslStream's pooled read buffer (its private fields, as in .NET 10: _buffer._buffer._bytes).</summary>
    private static int SslReadBufferBytes(SslStream ssl)
    {
        const BindingFlags Private = BindingFlags.NonPublic | BindingFlags.Instance;
        object? sslBuffer = typeof(SslStream).GetField("_buffer", Private)?.GetValue(ssl);
        object? arrayBuffer = sslBuffer?.GetType().GetField("_buffer", Private)?.GetValue(sslBuffer);
        var bytes = arrayBuffer?.GetType().GetField("_bytes", Private)?.GetValue(arrayBuffer) as byte[];
        return bytes?.Length ?? throw new InvalidOperationException("SslStream's read buffer field changed: check again that zero-byte reads release it");
    }

    private static ConnectPacket TlsConnect() => new() { ProtocolVersion = MqttProtocolVersion.V500, ClientId = "tls", KeepAliveSeconds = 30, CleanStart = true };

    private static MeterListener CountTlsFailures(BrokerInstance broker, Action onFailure)
    {
        var meter = broker.Services.GetRequiredService<BrokerMetrics>().Meter;
        var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (ReferenceEquals(instrument.Meter, meter) && instrument.Name == "mqtt.tls.handshake_failures")
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            if (value > 0 && tags.ToArray().Any(t => t.Key == "reason" && (string?)t.Value == "refused"))
            {
                onFailure();
            }
        });
        listener.Start();
        return listener;
    }

    /// <summary>A TLS ClientHello record offering at most TLS 1.{minor - 1}, two common CBC suites, no extensions.</summary>
    private static byte[] ClientHello(byte minor)
    {
        var body = new List<byte> { 0x03, minor };
        body.AddRange(new byte[32]); // random
        body.Add(0); // session id
        body.AddRange([0x00, 0x04, 0xC0, 0x13, 0x00, 0x2F]); // ECDHE-RSA-AES128-SHA, AES128-SHA
        body.AddRange([0x01, 0x00]); // compression: null
        var handshake = new List<byte> { 0x01, 0, (byte)(body.Count >> 8), (byte)body.Count };
        handshake.AddRange(body);
        var record = new List<byte> { 0x16, 0x03, minor, (byte)(handshake.Count >> 8), (byte)handshake.Count };
        record.AddRange(handshake);
        return [.. record];
    }

    private static async Task<byte[]> ReadUntilClosedAsync(Socket socket)
    {
        var received = new List<byte>();
        var buffer = new byte[4096];
        using var timeout = new CancellationTokenSource(Wait);
        while (true)
        {
            int n;
            try
            {
                n = await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token);
            }
            catch (SocketException)
            {
                return [.. received];
            }
            if (n == 0)
            {
                return [.. received];
            }
            received.AddRange(buffer.AsSpan(0, n).ToArray());
        }
    }

    private static Task WaitForAsync(Func<bool> condition, string failure) => Eventually.TrueAsync(condition, Wait, failure);
}
