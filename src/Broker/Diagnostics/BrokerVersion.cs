using System.Reflection;

namespace Broker.Diagnostics;

/// <summary>The build's version, from the assembly's informational version ("1.2.3+commit").</summary>
internal static class BrokerVersion
{
    public const string Product = "mqtt-broker";

    private static readonly string Informational =
        typeof(BrokerVersion).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0.0.0";

    /// <summary>"1.2.3": the label operators compare.</summary>
    public static string Version { get; } = Informational.Split('+')[0];

    /// <summary>The source revision the build came from (a commit id), or empty when the build did not record it.</summary>
    public static string Revision { get; } = Informational.Contains('+') ? Informational[(Informational.IndexOf('+') + 1)..] : string.Empty;

    /// <summary>"1.2.3 (abc1234)".</summary>
    public static string Display { get; } = Revision.Length == 0 ? Version : $"{Version} ({Revision[..Math.Min(12, Revision.Length)]})";
}
