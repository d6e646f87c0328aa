using Microsoft.Extensions.Options;

namespace Broker.Hosting;

/// <summary>Section "Broker:Limits": protocol limits the broker enforces and advertises.</summary>
internal sealed record BrokerLimitsOptions
{
    public const string Section = "Broker:Limits";

    /// <summary>Largest packet accepted from a client (advertised as Maximum Packet Size in 5.0 CONNACK).</summary>
    public int MaxPacketSize { get; init; } = 1024 * 1024;

    /// <summary>How many unacknowledged QoS 2 publishes a 5.0 client may have in flight to the broker (Receive Maximum).</summary>
    public int ReceiveMaximum { get; init; } = 1024;

    /// <summary>How many QoS 1/2 messages the broker has in flight to one client (capped by the client's Receive Maximum).</summary>
    public int MaxInflightMessages { get; init; } = 100;

    /// <summary>QoS 1/2 messages waiting for one session beyond the in-flight window; past it an online client is disconnected, an offline session drops.</summary>
    public int MaxQueuedMessages { get; init; } = 1000;

    /// <summary>Topic aliases a 5.0 client may use towards the broker.</summary>
    public int TopicAliasMaximum { get; init; } = 64;

    /// <summary>
    /// Whether the broker uses topic aliases on messages to 5.0 clients that allow them (Topic Alias Maximum &gt; 0).
    /// Off for fleets of clients that advertise alias support they lack (seen with mosquitto_sub 2.0.11 given a
    /// topic alias maximum, and paho-mqtt 2.1): they then get the full topic name on every message.
    /// </summary>
    public bool OutboundTopicAliases { get; init; } = true;

    /// <summary>Upper bound on a 5.0 Session Expiry Interval; 3.1.1 persistent sessions use it too.</summary>
    public uint MaxSessionExpirySeconds { get; init; } = uint.MaxValue;

    /// <summary>Longest client identifier accepted.</summary>
    public int MaxClientIdLength { get; init; } = 256;

    /// <summary>Most levels in a topic name or topic filter (a filter's levels after any $share/{name}/ prefix).</summary>
    public int MaxTopicLevels { get; init; } = 128;

    /// <summary>Longest topic name or topic filter accepted, in UTF-8 bytes (65535 is the encoding's own limit).</summary>
    public int MaxTopicLength { get; init; } = 65535;

    /// <summary>Retained messages stored at most; past it a retained PUBLISH to a new topic is delivered but not retained.</summary>
    public int MaxRetainedMessages { get; init; } = 100_000;

    /// <summary>Bytes of retained messages (topic + payload + properties as received) stored at most.</summary>
    public long MaxRetainedBytes { get; init; } = 64L * 1024 * 1024;

    /// <summary>The topic limits as the codec's pure check takes them.</summary>
    public Broker.Protocol.TopicLimits TopicLimits => new(MaxTopicLength, MaxTopicLevels);
}

internal sealed class BrokerLimitsOptionsValidator : IValidateOptions<BrokerLimitsOptions>
{
    public ValidateOptionsResult Validate(string? name, BrokerLimitsOptions o)
    {
        var errors = new List<string>();
        if (o.MaxPacketSize is < 64 or > 268_435_460)
        {
            errors.Add($"{BrokerLimitsOptions.Section}:MaxPacketSize must be between 64 and 268435460 bytes (was {o.MaxPacketSize})");
        }
        if (o.ReceiveMaximum is < 1 or > 65535)
        {
            errors.Add($"{BrokerLimitsOptions.Section}:ReceiveMaximum must be between 1 and 65535 (was {o.ReceiveMaximum})");
        }
        if (o.MaxInflightMessages is < 1 or > 65535)
        {
            errors.Add($"{BrokerLimitsOptions.Section}:MaxInflightMessages must be between 1 and 65535 (was {o.MaxInflightMessages})");
        }
        if (o.MaxQueuedMessages < 0)
        {
            errors.Add($"{BrokerLimitsOptions.Section}:MaxQueuedMessages must not be negative (was {o.MaxQueuedMessages})");
        }
        if (o.TopicAliasMaximum is < 0 or > 65535)
        {
            errors.Add($"{BrokerLimitsOptions.Section}:TopicAliasMaximum must be between 0 and 65535 (was {o.TopicAliasMaximum})");
        }
        if (o.MaxClientIdLength is < 23 or > 65535)
        {
            errors.Add($"{BrokerLimitsOptions.Section}:MaxClientIdLength must be between 23 and 65535 (was {o.MaxClientIdLength})");
        }
        if (o.MaxTopicLevels is < 1 or > 65535)
        {
            errors.Add($"{BrokerLimitsOptions.Section}:MaxTopicLevels must be between 1 and 65535 (was {o.MaxTopicLevels})");
        }
        if (o.MaxTopicLength is < 1 or > 65535)
        {
            errors.Add($"{BrokerLimitsOptions.Section}:MaxTopicLength must be between 1 and 65535 bytes (was {o.MaxTopicLength})");
        }
        if (o.MaxRetainedMessages < 0)
        {
            errors.Add($"{BrokerLimitsOptions.Section}:MaxRetainedMessages must not be negative (was {o.MaxRetainedMessages})");
        }
        if (o.MaxRetainedBytes < 0)
        {
            errors.Add($"{BrokerLimitsOptions.Section}:MaxRetainedBytes must not be negative (was {o.MaxRetainedBytes})");
        }
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
