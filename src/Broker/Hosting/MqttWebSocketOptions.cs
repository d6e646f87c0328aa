using Microsoft.Extensions.Options;

namespace Broker.Hosting;

/// <summary>MQTT over WebSocket (browsers, MQTT.js), bound from <c>Broker:WebSocket</c> (docs/security.md, "Listeners").</summary>
internal sealed record MqttWebSocketOptions
{
    public const string SectionName = "Broker:WebSocket";

    /// <summary>Off by default: only deployments with browser or WebSocket clients need it.</summary>
    public bool Enabled { get; init; }

    public string Address { get; init; } = "0.0.0.0";

    /// <summary>ws:// port (8083, as EMQX and HiveMQ use); 0 binds an ephemeral port (tests).</summary>
    public int Port { get; init; } = 8083;

    /// <summary>False: no plain ws:// listener, only wss:// on <see cref="TlsPort"/>.</summary>
    public bool PlainEnabled { get; init; } = true;

    /// <summary>
    /// wss:// port, with the certificate of <c>Broker:Tls</c> (which must be enabled): the same TLS versions, client
    /// certificates and reload as the TLS listener. Unset: no wss://. 8084 is the usual choice.
    /// </summary>
    public int? TlsPort { get; init; }

    /// <summary>The request path clients connect to (MQTT.js and most browser clients use /mqtt).</summary>
    public string Path { get; init; } = "/mqtt";
}

internal sealed class MqttWebSocketOptionsValidator(IOptions<Broker.Security.TlsOptions> tls) : IValidateOptions<MqttWebSocketOptions>
{
    private const string Prefix = MqttWebSocketOptions.SectionName + ":";

    public ValidateOptionsResult Validate(string? name, MqttWebSocketOptions options)
    {
        if (!options.Enabled)
        {
            return ValidateOptionsResult.Success;
        }
        var failures = new List<string>();
        ListenerSettingChecks.Address(failures, Prefix + nameof(options.Address), options.Address);
        ListenerSettingChecks.Port(failures, Prefix + nameof(options.Port), options.Port);
        ListenerSettingChecks.Port(failures, Prefix + nameof(options.TlsPort), options.TlsPort);
        if (options.TlsPort is not null && !tls.Value.Enabled)
        {
            failures.Add($"{Prefix}{nameof(options.TlsPort)} serves wss:// with the certificate of Broker:Tls, which needs Broker:Tls:Enabled=true");
        }
        if (!options.PlainEnabled && options.TlsPort is null)
        {
            failures.Add($"{Prefix}{nameof(options.PlainEnabled)}=false leaves no WebSocket listener: set {Prefix}{nameof(options.TlsPort)} for wss://");
        }
        if (options.PlainEnabled && options.TlsPort is { } tlsPort && tlsPort == options.Port && tlsPort != 0)
        {
            failures.Add($"{Prefix}{nameof(options.Port)} and {Prefix}{nameof(options.TlsPort)} cannot be the same port ({tlsPort})");
        }
        if (string.IsNullOrEmpty(options.Path) || options.Path[0] != '/' || options.Path.Length > 1 && options.Path[^1] == '/')
        {
            failures.Add($"{Prefix}{nameof(options.Path)} must start with '/' and not end with one (was '{options.Path}')");
        }
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
