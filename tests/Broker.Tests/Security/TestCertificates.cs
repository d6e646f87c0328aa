using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Broker.Tests.Security;

/// <summary>Certificates made at run time with CertificateRequest: no key is ever committed.</summary>
internal static class TestCertificates
{
    private const string ServerAuthentication = "1.3.6.1.5.5.7.3.1";
    private const string ClientAuthentication = "1.3.6.1.5.5.7.3.2";

    public static X509Certificate2 CreateAuthority(string name, X509Certificate2? issuer = null)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name}, O=Broker Tests", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        var now = DateTimeOffset.UtcNow;
        if (issuer is null)
        {
            return request.CreateSelfSigned(now.AddDays(-1), now.AddDays(30));
        }
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(issuer, true, false));
        using var certificate = request.Create(issuer, now.AddDays(-1), now.AddDays(29), Serial());
        return certificate.CopyWithPrivateKey(key);
    }

    /// <param name="purpose">"server", "client", or "server-only-for-a-client" (a client certificate without the client EKU).</param>
    public static X509Certificate2 CreateLeaf(X509Certificate2 issuer, string subject, string purpose, TimeSpan? lifetime = null) =>
        CreateLeaf(issuer, new X500DistinguishedName(subject), purpose, lifetime);

    public static X509Certificate2 CreateLeaf(X509Certificate2 issuer, X500DistinguishedName subject, string purpose, TimeSpan? lifetime = null)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        string eku = purpose == "client" ? ClientAuthentication : ServerAuthentication;
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(eku)], false));
        if (purpose == "server")
        {
            var names = new SubjectAlternativeNameBuilder();
            names.AddDnsName("localhost");
            names.AddIpAddress(System.Net.IPAddress.Loopback);
            request.CertificateExtensions.Add(names.Build());
        }
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(issuer, true, false));
        var now = DateTimeOffset.UtcNow;
        using var certificate = request.Create(issuer, now.AddDays(-1), now + (lifetime ?? TimeSpan.FromDays(20)), Serial());
        return certificate.CopyWithPrivateKey(key);
    }

    /// <summary>Writes the certificate (then its chain) and its PKCS#8 key as PEM; returns both paths.</summary>
    public static (string Certificate, string Key) WritePem(TempDirectory dir, string name, X509Certificate2 certificate, params X509Certificate2[] chain)
    {
        string pem = certificate.ExportCertificatePem() + "\n" + string.Concat(chain.Select(c => c.ExportCertificatePem() + "\n"));
        string key = certificate.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem();
        return (dir.Write(name + ".crt", pem), dir.Write(name + ".key", key));
    }

    public static string WriteCertificatePem(TempDirectory dir, string name, X509Certificate2 certificate) =>
        dir.Write(name + ".pem", certificate.ExportCertificatePem());

    public static string WritePfx(TempDirectory dir, string name, X509Certificate2 certificate, string password)
    {
        string path = dir.File(name + ".pfx");
        File.WriteAllBytes(path, certificate.Export(X509ContentType.Pkcs12, password));
        return path;
    }

    private static byte[] Serial() => RandomNumberGenerator.GetBytes(16);
}
