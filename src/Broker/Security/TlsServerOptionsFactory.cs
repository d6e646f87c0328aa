using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Logging;

namespace Broker.Security;

/// <summary>
/// What the TLS listener hands to <see cref="SslStream.AuthenticateAsServerAsync(SslServerAuthenticationOptions, CancellationToken)"/>
/// for each connection: TLS 1.2 and 1.3 only, the current certificate (swapped atomically when its files change,
/// without a restart; connections already open keep theirs), and client certificate validation against
/// Broker:Tls:ClientCaPath. After the handshake, <see cref="GetClientUserName"/> gives the user name for
/// <see cref="AuthenticationRequest.CertificateUserName"/>.
/// </summary>
internal sealed class TlsServerOptionsFactory : IDisposable
{
    private static readonly TimeSpan FileCheckInterval = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan ExpiryWarning = TimeSpan.FromDays(14);
    private static readonly Oid ClientAuthentication = new("1.3.6.1.5.5.7.3.2");

    private readonly TlsOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly WatchedFile<TlsMaterial> _material;
    private readonly RemoteCertificateValidationCallback _validateClient;
    private X509ChainPolicy? _clientChainPolicy;

    public TlsServerOptionsFactory(TlsOptions options, TimeProvider time, ILogger<TlsServerOptionsFactory> logger, bool watchFiles = true)
    {
        _options = options;
        _time = time;
        _logger = logger;
        _validateClient = ValidateClientCertificate;
        _material = new WatchedFile<TlsMaterial>(options.MaterialPaths, () => TlsMaterial.Load(options), time, logger,
            TlsOptions.SectionName, FileCheckInterval, watchFiles);
        OnLoaded(_material.Current);
        _material.Reloaded += OnLoaded;
    }

    public X509Certificate2 CurrentCertificate => _material.Current.Certificate;

    /// <summary>For tests and an operator-triggered reload; normally changes are noticed by themselves.</summary>
    internal bool ReloadIfChanged() => _material.CheckNow();

    /// <summary>A fresh options object per handshake (SslStream may keep a reference to it), sharing the current material.</summary>
    public SslServerAuthenticationOptions CreateServerOptions()
    {
        _material.CheckIfDue();
        var material = _material.Current;
        var policy = Volatile.Read(ref _clientChainPolicy);
        return new SslServerAuthenticationOptions
        {
            ServerCertificateContext = material.Context,
            EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
            // Asked for whenever authorities are configured, so that an optional certificate can still authenticate.
            ClientCertificateRequired = material.ClientAuthorities is not null,
            CertificateChainPolicy = policy?.Clone(),
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            RemoteCertificateValidationCallback = _validateClient,
            AllowRenegotiation = false,
        };
    }

    /// <summary>
    /// The user name a validated client certificate stands for: its subject CN; null without a certificate or
    /// without a CN (the client must then authenticate with user name and password).
    /// </summary>
    public static string? GetClientUserName(X509Certificate? remoteCertificate) => remoteCertificate switch
    {
        null => null,
        X509Certificate2 certificate => TlsMaterial.GetCommonName(certificate),
        _ => TlsMaterial.GetCommonName(X509CertificateLoader.LoadCertificate(remoteCertificate.GetRawCertData())),
    };

    private void OnLoaded(TlsMaterial material)
    {
        X509ChainPolicy? policy = null;
        if (material.ClientAuthorities is { } authorities)
        {
            policy = new X509ChainPolicy
            {
                // Only the configured authorities, never the machine's trust store: a certificate from a public CA
                // must not become an MQTT identity.
                TrustMode = X509ChainTrustMode.CustomRootTrust,
                RevocationMode = X509RevocationMode.NoCheck,
                DisableCertificateDownloads = true,
            };
            policy.CustomTrustStore.AddRange(authorities);
            // A certificate restricted to other purposes (e.g. server only) is not a client identity.
            policy.ApplicationPolicy.Add(ClientAuthentication);
        }
        Volatile.Write(ref _clientChainPolicy, policy);

        var remaining = material.Certificate.NotAfter.ToUniversalTime() - _time.GetUtcNow().UtcDateTime;
        if (remaining < ExpiryWarning)
        {
            SecurityLog.CertificateExpiring(_logger, material.Certificate.Subject, material.Certificate.NotAfter.ToUniversalTime(), remaining.TotalDays);
        }
    }

    private bool ValidateClientCertificate(object sender, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors)
    {
        if (errors == SslPolicyErrors.None)
        {
            return certificate is not null || !_options.RequireClientCertificate;
        }
        if (errors == SslPolicyErrors.RemoteCertificateNotAvailable && !_options.RequireClientCertificate)
        {
            return true;
        }
        string problem = errors == SslPolicyErrors.RemoteCertificateNotAvailable
            ? "no client certificate (Broker:Tls:RequireClientCertificate)"
            : $"{errors}: {DescribeChain(chain)}";
        SecurityLog.ClientCertificateRefused(_logger, problem, certificate?.Subject);
        return false;
    }

    private static string DescribeChain(X509Chain? chain)
    {
        if (chain is null || chain.ChainStatus.Length == 0)
        {
            return "not issued by Broker:Tls:ClientCaPath";
        }
        return string.Join("; ", chain.ChainStatus.Select(s => s.StatusInformation.Trim()).Distinct());
    }

    public void Dispose() => _material.Dispose();
}
