using Broker.Hosting;
using Microsoft.Extensions.Options;

namespace Broker.Security;

/// <summary>Checks the settings and loads the certificate material once, so a wrong path, password or key stops start-up.</summary>
internal sealed class TlsOptionsValidator : IValidateOptions<TlsOptions>
{
    private const string Prefix = TlsOptions.SectionName + ":";

    public ValidateOptionsResult Validate(string? name, TlsOptions options)
    {
        if (!options.Enabled)
        {
            return ValidateOptionsResult.Success;
        }
        var failures = new List<string>();
        ListenerSettingChecks.Address(failures, Prefix + nameof(options.Address), options.Address);
        ListenerSettingChecks.Port(failures, Prefix + nameof(options.Port), options.Port);
        if (options.UsesPem && options.UsesPfx)
        {
            failures.Add($"{Prefix}{nameof(options.PfxPath)} and {Prefix}{nameof(options.CertificatePath)}/{nameof(options.KeyPath)} cannot both be set");
        }
        else if (!options.UsesPem && !options.UsesPfx)
        {
            failures.Add($"{Prefix}{nameof(options.Enabled)} needs {Prefix}{nameof(options.CertificatePath)} and {Prefix}{nameof(options.KeyPath)} (PEM) or {Prefix}{nameof(options.PfxPath)}");
        }
        else if (options.UsesPem && (string.IsNullOrWhiteSpace(options.CertificatePath) || string.IsNullOrWhiteSpace(options.KeyPath)))
        {
            failures.Add($"{Prefix}{nameof(options.CertificatePath)} and {Prefix}{nameof(options.KeyPath)} must be set together");
        }
        if (options.RequireClientCertificate && !options.HasClientCa)
        {
            failures.Add($"{Prefix}{nameof(options.RequireClientCertificate)} needs {Prefix}{nameof(options.ClientCaPath)} (the authorities that issue client certificates)");
        }
        if (failures.Count == 0)
        {
            try
            {
                TlsMaterial.Load(options);
            }
            catch (SecurityFileException ex)
            {
                failures.Add(ex.Message);
            }
        }
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
