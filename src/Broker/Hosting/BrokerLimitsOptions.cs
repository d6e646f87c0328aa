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

    /// <summary>
    /// The same window in bytes (as counted for MaxQueuedBytes; 0 = messages only): with large messages, 100 in flight
    /// to a client that does not acknowledge would hold 100 MiB for it. One message is always allowed, however large.
    /// </summary>
    public long MaxInflightBytes { get; init; } = 4L * 1024 * 1024;

    /// <summary>
    /// Messages waiting for one session beyond the in-flight window. Publishers are slowed (not read) while a reading
    /// subscriber's queue is past half of it; for a client that stopped reading, or an offline session, QoS 0 is dropped
    /// and a full queue drops its oldest messages for the newest (docs/overload.md).
    /// </summary>
    public int MaxQueuedMessages { get; init; } = 1000;

    /// <summary>The same limit in bytes (topic, payload, properties and 64 bytes of the broker's own per message).</summary>
    public long MaxQueuedBytes { get; init; } = 4L * 1024 * 1024;

    /// <summary>
    /// A connected client whose socket has taken nothing for this long while the broker had data for it is disconnected
    /// (slow consumer; 5.0 cannot even be told). A client that reads, however slowly, is never disconnected for its queue.
    /// </summary>
    public int SlowConsumerSeconds { get; init; } = 60;

    /// <summary>
    /// After this long without taking any byte while data waits, a client counts as stalled: publishers stop waiting for
    /// it, its QoS 0 is dropped and its queue keeps the newest messages. Milliseconds.
    /// </summary>
    public int StalledAfterMilliseconds { get; init; } = 1000;

    /// <summary>Subscriptions one session may hold; a filter past it gets SUBACK 0x97 (5.0) or 0x80 (3.1.1).</summary>
    public int MaxSubscriptionsPerClient { get; init; } = 1000;

    /// <summary>Topic aliases a 5.0 client may use towards the broker.</summary>
    public int TopicAliasMaximum { get; init; } = 64;

    /// <summary>
    /// Whether the broker uses topic aliases on messages to 5.0 clients that allow them (Topic Alias Maximum &gt; 0).
    /// Off for fleets of clients that advertise alias support they lack (seen with mosquitto_sub 2.0.11 given a
    /// topic alias maximum, and paho-mqtt 2.1): they then get the full topic name on every message.
    /// </summary>
    public bool OutboundTopicAliases { get; init; } = true;

    /// <summary>Upper bound on a 5.0 Session Expiry Interval (and on <see cref="V311SessionExpirySeconds"/>).</summary>
    public uint MaxSessionExpirySeconds { get; init; } = uint.MaxValue;

    /// <summary>
    /// How long a 3.1.1 persistent session (Clean Session 0), which has no expiry of its own in the protocol, is kept
    /// after its client disconnects. 2 hours as in EMQX: devices that never come back do not accumulate for ever.
    /// </summary>
    public uint V311SessionExpirySeconds { get; init; } = 7200;

    /// <summary>Connections at most (0 = no limit but the open-files limit); past it CONNECT is refused (5.0 0x97, 3.1.1 0x03).</summary>
    public int MaxConnections { get; init; }

    /// <summary>Sessions at most, online and offline (0 = no limit); a CONNECT that would create one more is refused (5.0 0x97, 3.1.1 0x03).</summary>
    public int MaxSessions { get; init; } = 1_000_000;

    /// <summary>A packet whose first bytes arrived must be complete within this time, whatever the keep-alive (0 = off).</summary>
    public int PartialPacketTimeoutSeconds { get; init; } = 30;

    /// <summary>New connections accepted per second at most (0 = no limit); above it accepting pauses and the listen backlog holds the rest.</summary>
    public int ConnectRate { get; init; }

    /// <summary>Connections accepted in a burst above <see cref="ConnectRate"/> (0 = one second's worth).</summary>
    public int ConnectBurst { get; init; }

    /// <summary>
    /// How long a readable socket may wait for the socket engine's thread before the broker counts as behind and reads
    /// publishers one PUBLISH at a time until the wait is below a quarter of this (0 = off). See docs/overload.md.
    /// </summary>
    public int EngineLagMilliseconds { get; init; } = 20;

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
        if (o.MaxInflightBytes < 0)
        {
            errors.Add($"{BrokerLimitsOptions.Section}:MaxInflightBytes must not be negative (0 = no limit in bytes) (was {o.MaxInflightBytes})");
        }
        if (o.MaxQueuedMessages < 0)
        {
            errors.Add($"{BrokerLimitsOptions.Section}:MaxQueuedMessages must not be negative (was {o.MaxQueuedMessages})");
        }
        if (o.MaxConnections < 0)
        {
            errors.Add($"{BrokerLimitsOptions.Section}:MaxConnections must not be negative (0 = no limit) (was {o.MaxConnections})");
        }
        if (o.MaxSessions < 0)
        {
            errors.Add($"{BrokerLimitsOptions.Section}:MaxSessions must not be negative (0 = no limit) (was {o.MaxSessions})");
        }
        if (o.EngineLagMilliseconds is < 0 or > 10_000)
        {
            errors.Add($"{BrokerLimitsOptions.Section}:EngineLagMilliseconds must be between 0 (off) and 10000 (was {o.EngineLagMilliseconds})");
        }
        if (o.PartialPacketTimeoutSeconds < 0)
        {
            errors.Add($"{BrokerLimitsOptions.Section}:PartialPacketTimeoutSeconds must not be negative (0 = off) (was {o.PartialPacketTimeoutSeconds})");
        }
        if (o.ConnectRate < 0 || o.ConnectBurst < 0)
        {
            errors.Add($"{BrokerLimitsOptions.Section}:ConnectRate and ConnectBurst must not be negative (0 = no limit) (was {o.ConnectRate}, {o.ConnectBurst})");
        }
        if (o.MaxSubscriptionsPerClient < 1)
        {
            errors.Add($"{BrokerLimitsOptions.Section}:MaxSubscriptionsPerClient must be at least 1 (was {o.MaxSubscriptionsPerClient})");
        }
        if (o.MaxQueuedBytes < 0)
        {
            errors.Add($"{BrokerLimitsOptions.Section}:MaxQueuedBytes must not be negative (was {o.MaxQueuedBytes})");
        }
        if (o.StalledAfterMilliseconds is < 100 or > 600_000)
        {
            errors.Add($"{BrokerLimitsOptions.Section}:StalledAfterMilliseconds must be between 100 and 600000 (was {o.StalledAfterMilliseconds})");
        }
        if (o.SlowConsumerSeconds < 1 || o.SlowConsumerSeconds * 1000L <= o.StalledAfterMilliseconds)
        {
            errors.Add($"{BrokerLimitsOptions.Section}:SlowConsumerSeconds must be at least 1 and longer than StalledAfterMilliseconds (was {o.SlowConsumerSeconds})");
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
