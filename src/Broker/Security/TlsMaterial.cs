using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Broker.Security;

/// <summary>
/// The server certificate (with its chain, ready for SslStream) and the client certificate authorities, loaded
/// together from <see cref="TlsOptions"/>. Immutable: a reload builds a new instance and swaps it in whole, so a
/// handshake never sees a new certificate with an old key.
/// </summary>
internal sealed class TlsMaterial
{
    private TlsMaterial(X509Certificate2 certificate, SslStreamCertificateContext context, X509Certificate2Collection? clientAuthorities)
    {
        Certificate = certificate;
        Context = context;
        ClientAuthorities = clientAuthorities;
    }

    public X509Certificate2 Certificate { get; }

    public SslStreamCertificateContext Context { get; }

    /// <summary>Null when no Broker:Tls:ClientCaPath is set (clients are not asked for certificates).</summary>
    public X509Certificate2Collection? ClientAuthorities { get; }

    /// <exception cref="SecurityFileException">A file is missing or unreadable, the key does not match, the password is wrong.</exception>
    public static TlsMaterial Load(TlsOptions options)
    {
        var (certificate, chain) = options.UsesPfx ? LoadPfx(options) : LoadPem(options);
        X509Certificate2Collection? authorities = options.HasClientCa ? LoadAuthorities(options.ClientCaPath!) : null;
        // offline: never fetch missing intermediates from the network while serving.
        var context = SslStreamCertificateContext.Create(certificate, chain, offline: true);
        return new TlsMaterial(certificate, context, authorities);
    }

    /// <summary>
    /// The subject CN (OID 2.5.4.3) of a certificate, the first one in encoded order as Mosquitto takes it; null
    /// when there is none. Used as the MQTT user name of a client that authenticated with a certificate.
    /// </summary>
    public static string? GetCommonName(X509Certificate2 certificate)
    {
        foreach (var name in certificate.SubjectName.EnumerateRelativeDistinguishedNames(reversed: false))
        {
            if (!name.HasMultipleElements && name.GetSingleElementType().Value == "2.5.4.3")
            {
                string? value = name.GetSingleElementValue();
                return string.IsNullOrEmpty(value) ? null : value;
            }
        }
        return null;
    }

    private static (X509Certificate2, X509Certificate2Collection) LoadPem(TlsOptions options)
    {
        const string Setting = TlsOptions.SectionName + ":" + nameof(TlsOptions.CertificatePath) + "/" + nameof(TlsOptions.KeyPath);
        try
        {
            var certificate = X509Certificate2.CreateFromPemFile(options.CertificatePath!, options.KeyPath);
            var all = new X509Certificate2Collection();
            all.ImportFromPemFile(options.CertificatePath!);
            var chain = new X509Certificate2Collection();
            foreach (var other in all)
            {
                if (!other.RawDataMemory.Span.SequenceEqual(certificate.RawDataMemory.Span))
                {
                    chain.Add(other);
                }
            }
            if (OperatingSystem.IsWindows())
            {
                // SChannel cannot use a key that only lives in memory: round-trip through PKCS#12.
                certificate = X509CertificateLoader.LoadPkcs12(certificate.Export(X509ContentType.Pkcs12), null);
            }
            return (certificate, chain);
        }
        catch (Exception ex) when (ex is CryptographicException or IOException or UnauthorizedAccessException or ArgumentException)
        {
            throw new SecurityFileException($"{Setting}: cannot load the certificate and its key ({options.CertificatePath}, {options.KeyPath}): {ex.Message}", ex);
        }
    }

    private static (X509Certificate2, X509Certificate2Collection) LoadPfx(TlsOptions options)
    {
        const string Setting = TlsOptions.SectionName + ":" + nameof(TlsOptions.PfxPath);
        try
        {
            // Ephemeral keys are never written to disk (not supported by Windows SChannel or macOS).
            var flags = OperatingSystem.IsLinux() ? X509KeyStorageFlags.EphemeralKeySet : X509KeyStorageFlags.DefaultKeySet;
            var all = X509CertificateLoader.LoadPkcs12CollectionFromFile(options.PfxPath!, options.PfxPassword, flags);
            X509Certificate2? certificate = null;
            var chain = new X509Certificate2Collection();
            foreach (var item in all)
            {
                if (certificate is null && item.HasPrivateKey)
                {
                    certificate = item;
                }
                else
                {
                    chain.Add(item);
                }
            }
            if (certificate is null)
            {
                throw new SecurityFileException($"{Setting}: {options.PfxPath} holds no certificate with a private key");
            }
            return (certificate, chain);
        }
        catch (Exception ex) when (ex is CryptographicException or IOException or UnauthorizedAccessException)
        {
            throw new SecurityFileException($"{Setting}: cannot load {options.PfxPath} (wrong {nameof(TlsOptions.PfxPassword)}?): {ex.Message}", ex);
        }
    }

    private static X509Certificate2Collection LoadAuthorities(string path)
    {
        const string Setting = TlsOptions.SectionName + ":" + nameof(TlsOptions.ClientCaPath);
        try
        {
            var authorities = new X509Certificate2Collection();
            authorities.ImportFromPemFile(path);
            if (authorities.Count == 0)
            {
                throw new SecurityFileException($"{Setting}: {path} holds no PEM certificate");
            }
            return authorities;
        }
        catch (Exception ex) when (ex is CryptographicException or IOException or UnauthorizedAccessException)
        {
            throw new SecurityFileException($"{Setting}: cannot load {path}: {ex.Message}", ex);
        }
    }
}
