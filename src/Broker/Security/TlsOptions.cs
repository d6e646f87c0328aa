namespace Broker.Security;

/// <summary>The TLS listener's settings, bound from <c>Broker:Tls</c> (docs/security.md, "TLS").</summary>
internal sealed record TlsOptions
{
    public const string SectionName = "Broker:Tls";

    /// <summary>Off by default: TLS needs a certificate, which only the operator can provide.</summary>
    public bool Enabled { get; init; }

    public string Address { get; init; } = "0.0.0.0";

    /// <summary>8883 is IANA's port for MQTT over TLS; 0 binds an ephemeral port (tests).</summary>
    public int Port { get; init; } = 8883;

    /// <summary>PEM server certificate, optionally followed by its intermediate certificates (leaf first).</summary>
    public string? CertificatePath { get; init; }

    /// <summary>PEM private key of <see cref="CertificatePath"/> (PKCS#8, PKCS#1 or SEC1; unencrypted).</summary>
    public string? KeyPath { get; init; }

    /// <summary>Instead of PEM files: a PKCS#12 file holding the certificate with its key (and chain).</summary>
    public string? PfxPath { get; init; }

    public string? PfxPassword { get; init; }

    /// <summary>True: the handshake fails without a client certificate issued by <see cref="ClientCaPath"/>.</summary>
    public bool RequireClientCertificate { get; init; }

    /// <summary>
    /// PEM certificate(s) of the authorities that issue client certificates. When set, clients are asked for a
    /// certificate; a valid one authenticates its subject CN as the user name.
    /// </summary>
    public string? ClientCaPath { get; init; }

    public bool UsesPem => !string.IsNullOrWhiteSpace(CertificatePath) || !string.IsNullOrWhiteSpace(KeyPath);

    public bool UsesPfx => !string.IsNullOrWhiteSpace(PfxPath);

    public bool HasClientCa => !string.IsNullOrWhiteSpace(ClientCaPath);

    /// <summary>Every file the TLS material comes from: a change to any of them reloads it.</summary>
    public IReadOnlyList<string> MaterialPaths
    {
        get
        {
            var paths = new List<string>();
            if (UsesPfx)
            {
                paths.Add(PfxPath!);
            }
            else
            {
                paths.Add(CertificatePath!);
                paths.Add(KeyPath!);
            }
            if (HasClientCa)
            {
                paths.Add(ClientCaPath!);
            }
            return paths;
        }
    }
}
