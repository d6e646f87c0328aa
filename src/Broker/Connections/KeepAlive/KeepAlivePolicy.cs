using Broker.Hosting;

namespace Broker.Connections.KeepAlive;

/// <summary>The outcome of <see cref="KeepAlivePolicy.Negotiate"/>.</summary>
/// <param name="Accepted">False: refuse the connection (3.1.1: CONNACK 0x02) and log <paramref name="RefusalReason"/>.</param>
/// <param name="EffectiveSeconds">The Keep Alive the deadline uses; 0 = no keep-alive deadline.</param>
/// <param name="ServerKeepAlive">5.0 only: the Server Keep Alive to send in CONNACK (property 0x13), or null to send none.</param>
/// <param name="RefusalReason">Why the connection is refused, for the log line; null when accepted.</param>
internal readonly record struct KeepAliveNegotiation(bool Accepted, ushort EffectiveSeconds, ushort? ServerKeepAlive, string? RefusalReason);

/// <summary>Decides each client's Keep Alive from its CONNECT and <see cref="KeepAliveOptions"/>; pure, no codec.</summary>
internal sealed class KeepAlivePolicy
{
    private readonly ushort _max;
    private readonly bool _allowZero;
    private readonly ushort? _serverKeepAlive;
    private readonly double _grace;

    /// <param name="options">Validated options (see <see cref="KeepAliveOptionsValidator"/>).</param>
    public KeepAlivePolicy(KeepAliveOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _max = checked((ushort)options.MaxSeconds);
        _allowZero = options.AllowZero;
        _serverKeepAlive = options.ServerKeepAliveSeconds is { } s ? checked((ushort)s) : null;
        _grace = options.GraceMultiplier;
        ConnectTimeout = TimeSpan.FromSeconds(options.ConnectTimeoutSeconds);
    }

    /// <summary>The deadline from accept to an accepted CONNECT.</summary>
    public TimeSpan ConnectTimeout { get; }

    /// <param name="protocolLevel">3 (3.1) or 4 (3.1.1): the broker cannot tell the client another value. 5: it can.</param>
    /// <param name="requested">The Keep Alive field of CONNECT, in seconds.</param>
    public KeepAliveNegotiation Negotiate(int protocolLevel, ushort requested)
    {
        if (protocolLevel == 5)
        {
            // 5.0: the server may impose a Keep Alive with the Server Keep Alive property and the client
            // MUST use it [MQTT-3.2.2-21], so nobody needs to be refused.
            if (_serverKeepAlive is { } imposed)
            {
                return new(true, imposed, imposed, null);
            }

            if (requested > _max || (requested == 0 && !_allowZero))
            {
                return new(true, _max, _max, null);
            }

            return new(true, requested, null, null);
        }

        if (protocolLevel is 3 or 4)
        {
            // 3.1.1 has no way to tell the client another value: a client outside the policy is refused.
            // ServerKeepAliveSeconds deliberately does not apply here: holding a compliant client that pings
            // every K seconds to a shorter period would disconnect it, and a longer one only delays noticing a
            // dead client, so a 3.1.1 client within MaxSeconds keeps its own K.
            if (requested > _max)
            {
                return Refuse($"Keep Alive {requested} s exceeds Broker:KeepAlive:MaxSeconds ({_max} s) and MQTT 3.1.1 cannot tell the client a lower value");
            }

            if (requested == 0 && !_allowZero)
            {
                return Refuse("Keep Alive 0 (no keep-alive) is not allowed by Broker:KeepAlive:AllowZero=false and MQTT 3.1.1 cannot tell the client a value");
            }

            return new(true, requested, null, null);
        }

        throw new ArgumentOutOfRangeException(nameof(protocolLevel), protocolLevel, "Protocol level must be 3, 4 or 5.");
    }

    /// <summary>
    /// The silence allowed for an effective Keep Alive: GraceMultiplier x K, computed in TimeSpan ticks and
    /// rounded up (K = 3 gives 4.5 s, never 4 s). Zero for K = 0: no deadline.
    /// </summary>
    public TimeSpan KeepAliveTimeout(ushort effectiveSeconds) => KeepAliveTimeout(effectiveSeconds, _grace);

    /// <inheritdoc cref="KeepAliveTimeout(ushort)"/>
    public static TimeSpan KeepAliveTimeout(ushort effectiveSeconds, double graceMultiplier)
    {
        // [MQTT-3.1.2-24] (3.1.1) / [MQTT-3.1.2-22] (5.0): one and a half times the Keep Alive.
        // At most 65535 s x 10^7 x 10 = 6.6e15 ticks: exact in a double, far from long overflow.
        double ticks = effectiveSeconds * (double)TimeSpan.TicksPerSecond * graceMultiplier;
        return TimeSpan.FromTicks((long)Math.Ceiling(ticks));
    }

    private static KeepAliveNegotiation Refuse(string reason) => new(false, 0, null, reason);
}
