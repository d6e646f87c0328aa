using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Broker.Security;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace Broker.Tests.Security;

/// <summary>
/// Certificate loading, reload and client certificate validation, each proven by a real TLS handshake between two
/// SslStreams over a loopback TCP connection (port 0). The listener itself is not part of this.
/// </summary>
public sealed class TlsTests : IDisposable
{
    private static readonly TimeSpan HandshakeTimeout = TimeSpan.FromSeconds(15);

    private readonly TempDirectory _dir = new();
    private readonly X509Certificate2 _serverCa = TestCertificates.CreateAuthority("Test Server CA");
    private readonly X509Certificate2 _clientCa = TestCertificates.CreateAuthority("Test Client CA");
    private readonly ListLogger<TlsServerOptionsFactory> _log = new();
    private readonly List<IDisposable> _disposables = [];

    public void Dispose()
    {
        foreach (var d in _disposables)
        {
            d.Dispose();
        }
        _dir.Dispose();
    }

    private TlsOptions PemOptions(string name = "server", X509Certificate2? certificate = null)
    {
        var (cert, key) = TestCertificates.WritePem(_dir, name, certificate ?? TestCertificates.CreateLeaf(_serverCa, "CN=localhost", "server"));
        return new TlsOptions { Enabled = true, Port = 0, CertificatePath = cert, KeyPath = key };
    }

    private TlsOptions WithClientCa(TlsOptions options, bool required) =>
        options with { ClientCaPath = TestCertificates.WriteCertificatePem(_dir, "client-ca", _clientCa), RequireClientCertificate = required };

    private TlsServerOptionsFactory Factory(TlsOptions options, TimeProvider? time = null)
    {
        var factory = new TlsServerOptionsFactory(options, time ?? TimeProvider.System, _log, watchFiles: false);
        _disposables.Add(factory);
        return factory;
    }

    private sealed record Handshake(Exception? ServerError, Exception? ClientError, SslProtocols Protocol, string? ServerThumbprint, string? ClientUserName);

    /// <summary>Runs both sides to completion (or failure) with a bounded wait.</summary>
    private static async Task<Handshake> HandshakeAsync(TlsServerOptionsFactory factory, SslProtocols clientProtocols = SslProtocols.None,
        X509Certificate2? clientCertificate = null, RemoteCertificateValidationCallback? validateServer = null)
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        using var client = new TcpClient();
        var connecting = client.ConnectAsync(IPAddress.Loopback, ((IPEndPoint)listener.LocalEndpoint).Port);
        using var accepted = await listener.AcceptTcpClientAsync();
        await connecting;

        using var cts = new CancellationTokenSource(HandshakeTimeout);
        await using var serverStream = new SslStream(accepted.GetStream());
        await using var clientStream = new SslStream(client.GetStream());
        string? seenServerThumbprint = null;
        var clientOptions = new SslClientAuthenticationOptions
        {
            TargetHost = "localhost",
            EnabledSslProtocols = clientProtocols,
            RemoteCertificateValidationCallback = (sender, certificate, chain, errors) =>
            {
                seenServerThumbprint = certificate?.GetCertHashString();
                return validateServer?.Invoke(sender, certificate, chain, errors) ?? true;
            },
            ClientCertificateContext = clientCertificate is null ? null : SslStreamCertificateContext.Create(clientCertificate, null),
        };

        var server = serverStream.AuthenticateAsServerAsync(factory.CreateServerOptions(), cts.Token);
        var clientSide = clientStream.AuthenticateAsClientAsync(clientOptions, cts.Token);
        Exception? serverError = await Capture(server);
        if (serverError is not null)
        {
            accepted.Close(); // With TLS 1.3 the client may consider itself done before the server refuses its certificate.
        }
        Exception? clientError = await Capture(clientSide);
        return new Handshake(serverError, clientError, serverError is null ? serverStream.SslProtocol : SslProtocols.None, seenServerThumbprint,
            serverError is null ? TlsServerOptionsFactory.GetClientUserName(serverStream.RemoteCertificate) : null);
    }

    private static async Task<Exception?> Capture(Task task)
    {
        try
        {
            await task;
            return null;
        }
        catch (Exception ex) when (ex is AuthenticationException or IOException or OperationCanceledException or System.ComponentModel.Win32Exception)
        {
            return ex;
        }
    }

    [Theory]
    [InlineData(SslProtocols.Tls12)]
    [InlineData(SslProtocols.Tls13)]
    public async Task A_pem_certificate_serves_TLS_1_2_and_1_3(SslProtocols protocol)
    {
        var factory = Factory(PemOptions());

        var result = await HandshakeAsync(factory, protocol);

        Assert.Null(result.ServerError);
        Assert.Equal(protocol, result.Protocol);
        Assert.Equal(factory.CurrentCertificate.Thumbprint, result.ServerThumbprint);
    }

    [Fact]
    public void Only_TLS_1_2_and_1_3_are_offered_and_renegotiation_is_off()
    {
        var options = Factory(PemOptions()).CreateServerOptions();
        Assert.Equal(SslProtocols.Tls12 | SslProtocols.Tls13, options.EnabledSslProtocols);
        Assert.False(options.AllowRenegotiation);
        Assert.False(options.ClientCertificateRequired);
    }

    [Fact]
    public async Task Intermediate_certificates_in_the_pem_file_are_sent_to_clients()
    {
        var intermediate = TestCertificates.CreateAuthority("Test Intermediate", issuer: _serverCa);
        var leaf = TestCertificates.CreateLeaf(intermediate, "CN=localhost", "server");
        var (cert, key) = TestCertificates.WritePem(_dir, "chained", leaf, intermediate);
        var factory = Factory(new TlsOptions { Enabled = true, CertificatePath = cert, KeyPath = key });

        // The client trusts only the root and may not download anything: it needs the intermediate from the server.
        var result = await HandshakeAsync(factory, validateServer: (_, certificate, received, _) =>
        {
            using var chain = new X509Chain();
            chain.ChainPolicy.ExtraStore.AddRange(received!.ChainPolicy.ExtraStore);
            chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            chain.ChainPolicy.CustomTrustStore.Add(_serverCa);
            chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
            chain.ChainPolicy.DisableCertificateDownloads = true;
            return chain.Build(new X509Certificate2(certificate!));
        });

        Assert.Null(result.ServerError);
        Assert.Null(result.ClientError);
    }

    [Fact]
    public async Task A_pfx_with_its_password_loads_and_a_wrong_password_is_reported_by_key()
    {
        var leaf = TestCertificates.CreateLeaf(_serverCa, "CN=localhost", "server");
        string pfx = TestCertificates.WritePfx(_dir, "server", leaf, "pfx-pass");

        var result = await HandshakeAsync(Factory(new TlsOptions { Enabled = true, PfxPath = pfx, PfxPassword = "pfx-pass" }));
        var wrong = new TlsOptionsValidator().Validate(null, new TlsOptions { Enabled = true, PfxPath = pfx, PfxPassword = "nope" });

        Assert.Null(result.ServerError);
        var failure = Assert.Single(wrong.Failures!);
        Assert.StartsWith("Broker:Tls:PfxPath: cannot load", failure);
        Assert.DoesNotContain("nope", failure);
    }

    [Fact]
    public async Task A_client_certificate_from_the_configured_authority_authenticates_its_common_name()
    {
        var factory = Factory(WithClientCa(PemOptions(), required: true));
        var clientCertificate = TestCertificates.CreateLeaf(_clientCa, "C=DE, O=Fleet, CN=sensor-17", "client");

        var result = await HandshakeAsync(factory, clientCertificate: clientCertificate);

        Assert.Null(result.ServerError);
        Assert.Equal("sensor-17", result.ClientUserName);
    }

    [Fact]
    public async Task A_client_certificate_from_another_authority_is_refused_and_logged()
    {
        var factory = Factory(WithClientCa(PemOptions(), required: false));
        var stranger = TestCertificates.CreateAuthority("Someone Else");
        var clientCertificate = TestCertificates.CreateLeaf(stranger, "CN=intruder", "client");

        var result = await HandshakeAsync(factory, clientCertificate: clientCertificate);

        Assert.NotNull(result.ServerError);
        Assert.Contains(_log.Entries, e => e.Id.Id == 1109 && e.Message.Contains("CN=intruder"));
    }

    [Fact]
    public async Task A_certificate_not_meant_for_client_authentication_is_refused()
    {
        var factory = Factory(WithClientCa(PemOptions(), required: true));
        var serverOnly = TestCertificates.CreateLeaf(_clientCa, "CN=not-a-client", "server-only-for-a-client");

        var result = await HandshakeAsync(factory, clientCertificate: serverOnly);

        Assert.NotNull(result.ServerError);
    }

    [Theory]
    [InlineData(true, false)]
    [InlineData(false, true)]
    public async Task Without_a_client_certificate_the_handshake_follows_RequireClientCertificate(bool required, bool succeeds)
    {
        var factory = Factory(WithClientCa(PemOptions(), required));

        var result = await HandshakeAsync(factory);

        Assert.Equal(succeeds, result.ServerError is null);
        Assert.Null(result.ClientUserName);
    }

    [Fact]
    public async Task A_replaced_certificate_is_served_to_new_connections_without_a_restart()
    {
        var options = PemOptions();
        var factory = Factory(options);
        string before = factory.CurrentCertificate.Thumbprint;

        var renewed = TestCertificates.CreateLeaf(_serverCa, "CN=localhost", "server");
        File.WriteAllText(options.CertificatePath!, renewed.ExportCertificatePem());
        File.WriteAllText(options.KeyPath!, renewed.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem());
        File.SetLastWriteTimeUtc(options.CertificatePath!, DateTime.UtcNow.AddMinutes(1));
        Assert.True(factory.ReloadIfChanged());
        var result = await HandshakeAsync(factory);

        Assert.NotEqual(before, factory.CurrentCertificate.Thumbprint);
        Assert.Equal(renewed.Thumbprint, result.ServerThumbprint);
    }

    [Fact]
    public async Task A_half_written_certificate_keeps_the_previous_one_in_service()
    {
        var options = PemOptions();
        var factory = Factory(options);
        string before = factory.CurrentCertificate.Thumbprint;

        File.WriteAllText(options.KeyPath!, "-----BEGIN PRIVATE KEY-----\nAAAA\n");
        File.SetLastWriteTimeUtc(options.KeyPath!, DateTime.UtcNow.AddMinutes(1));

        Assert.False(factory.ReloadIfChanged());
        Assert.Equal(before, factory.CurrentCertificate.Thumbprint);
        Assert.Null((await HandshakeAsync(factory)).ServerError);
        Assert.Contains(_log.Entries, e => e.Level == LogLevel.Error && e.Message.Contains("Broker:Tls"));
    }

    [Fact]
    public void A_certificate_close_to_expiry_is_warned_about()
    {
        var shortLived = TestCertificates.CreateLeaf(_serverCa, "CN=localhost", "server", lifetime: TimeSpan.FromDays(3));
        Factory(PemOptions("short", shortLived));
        Assert.Contains(_log.Entries, e => e.Level == LogLevel.Warning && e.Id.Id == 1108);
    }

    [Theory]
    [InlineData("CN=sensor-17", "sensor-17")]
    [InlineData("O=Org, OU=Devices", null)]
    [InlineData("CN=\"with, comma\"", "with, comma")]
    public void The_common_name_is_the_first_CN_of_the_subject(string subject, string? expected)
    {
        var certificate = TestCertificates.CreateLeaf(_clientCa, subject, "client");
        Assert.Equal(expected, TlsMaterial.GetCommonName(certificate));
        Assert.Equal(expected, TlsServerOptionsFactory.GetClientUserName(certificate));
    }

    [Fact]
    public void With_several_CNs_the_first_in_encoded_order_counts_as_in_Mosquitto()
    {
        // The builder encodes in the reverse order of its calls (the order RFC 4514 strings are written in), so this
        // is encoded as CN=first, O=Org, CN=second, what "openssl req -subj /CN=first/O=Org/CN=second" writes.
        var name = new X500DistinguishedNameBuilder();
        name.AddCommonName("second");
        name.AddOrganizationName("Org");
        name.AddCommonName("first");
        var certificate = TestCertificates.CreateLeaf(_clientCa, name.Build(), "client");
        Assert.Equal("first", TlsMaterial.GetCommonName(certificate));
    }

    [Fact]
    public void No_certificate_means_no_user_name() => Assert.Null(TlsServerOptionsFactory.GetClientUserName(null));
}
