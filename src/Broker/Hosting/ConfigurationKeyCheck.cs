using System.Reflection;
using Microsoft.Extensions.Configuration;

namespace Broker.Hosting;

/// <summary>
/// Refuses unknown keys under "Broker" at start-up, naming the full key: a typo such as
/// Broker:KeepAlive:MaxSecond would otherwise be ignored silently and the default would apply.
/// </summary>
internal static class ConfigurationKeyCheck
{
    private static readonly (string Section, Type Options)[] Sections =
    [
        ("Tcp", typeof(TcpOptions)),
        ("TcpKeepAlive", typeof(TcpKeepAliveOptions)),
        ("KeepAlive", typeof(KeepAliveOptions)),
        ("Limits", typeof(BrokerLimitsOptions)),
        ("Metrics", typeof(MetricsOptions)),
        ("Auth", typeof(Broker.Security.AuthOptions)),
        ("Tls", typeof(Broker.Security.TlsOptions)),
        ("WebSocket", typeof(MqttWebSocketOptions)),
        ("Persistence", typeof(Persistence.PersistenceOptions)),
        ("Sys", typeof(SysOptions)),
        ("Admin", typeof(AdminOptions)),
        ("Logging", typeof(Broker.Diagnostics.BrokerLoggingOptions)),
    ];

    /// <summary>Every known Broker section and its options type (start-up checks bind each).</summary>
    public static IReadOnlyList<(string Section, Type Options)> KnownSections => Sections;

    /// <summary>Every unknown key, as one message each; empty when all keys are known.</summary>
    public static List<string> FindUnknownKeys(IConfiguration configuration)
    {
        var problems = new List<string>();
        foreach (var child in configuration.GetSection("Broker").GetChildren())
        {
            var known = Array.Find(Sections, s => string.Equals(s.Section, child.Key, StringComparison.OrdinalIgnoreCase));
            if (known.Options is null)
            {
                problems.Add($"{child.Path} is not a known section (known: {string.Join(", ", Sections.Select(s => "Broker:" + s.Section))})");
                continue;
            }
            CheckSection(child, known.Options, problems);
        }
        return problems;
    }

    /// <summary>Each key must name a settable property; a property of an options type is a nested section, checked the same way.</summary>
    private static void CheckSection(IConfigurationSection section, Type options, List<string> problems)
    {
        var properties = options.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanWrite).ToArray();
        foreach (var setting in section.GetChildren())
        {
            var property = Array.Find(properties, p => string.Equals(p.Name, setting.Key, StringComparison.OrdinalIgnoreCase));
            if (property is null)
            {
                problems.Add($"{setting.Path} is not a known setting (known in {section.Path}: {string.Join(", ", properties.Select(p => p.Name))})");
            }
            else if (property.PropertyType.IsClass && property.PropertyType != typeof(string))
            {
                CheckSection(setting, property.PropertyType, problems);
            }
        }
    }
}

/// <summary>Marker options whose start-up validation is the unknown-key check.</summary>
internal sealed class BrokerConfigurationKeys
{
}

internal sealed class BrokerConfigurationKeysValidator(IConfiguration configuration) : Microsoft.Extensions.Options.IValidateOptions<BrokerConfigurationKeys>
{
    public Microsoft.Extensions.Options.ValidateOptionsResult Validate(string? name, BrokerConfigurationKeys options)
    {
        var unknown = ConfigurationKeyCheck.FindUnknownKeys(configuration);
        return unknown.Count == 0
            ? Microsoft.Extensions.Options.ValidateOptionsResult.Success
            : Microsoft.Extensions.Options.ValidateOptionsResult.Fail(unknown);
    }
}
