using Broker.Diagnostics.Insight;

namespace Broker.Hosting;

/// <summary>Keep-alive and connect-timeout settings, bound from <c>Broker:KeepAlive</c>.</summary>
internal sealed record KeepAliveOptions
{
    public const string SectionName = "Broker:KeepAlive";

    /// <summary>
    /// 100 ms: a deadline expires at most one tick late, which for the shortest one allowed (Keep Alive 1,
    /// 1.5 s) is under 7 %, and a 1 s connect timeout fires by 1.1 s. Ten wakeups a second cost microseconds
    /// because the wheel's work is proportional to the entries due, not to the ticks or the connections.
    /// 250 ms would allow 17 % on K = 1 for no measurable saving.
    /// </summary>
    public const int DefaultTickMilliseconds = 100;

    /// <summary>The largest Keep Alive accepted, in seconds (1..65535).</summary>
    public int MaxSeconds { get; init; } = 65535;

    /// <summary>Whether a client may turn keep-alive off with Keep Alive 0.</summary>
    public bool AllowZero { get; init; } = true;

    /// <summary>When set (1..65535, at most MaxSeconds), every 5.0 client is told to use it (CONNACK property 0x13).</summary>
    public int? ServerKeepAliveSeconds { get; init; }

    /// <summary>Time from accept to an accepted CONNECT before the connection is closed.</summary>
    public int ConnectTimeoutSeconds { get; init; } = 10;

    /// <summary>The timer wheel's tick (10..1000); the lateness bound of every deadline.</summary>
    public int TickMilliseconds { get; init; } = DefaultTickMilliseconds;

    /// <summary>The allowed silence is GraceMultiplier x Keep Alive; the specification says 1.5.</summary>
    public double GraceMultiplier { get; init; } = 1.5;

    /// <summary>
    /// Opt-in: a 5.0 client from a network whose idle timeout the insight has learned is told a Server Keep
    /// Alive of at most 0.8 x that timeout (never above its request, never below <see cref="AdaptiveFloorSeconds"/>).
    /// </summary>
    public bool Adaptive { get; init; }

    /// <summary>The lowest Keep Alive adaptive mode imposes (1..MaxSeconds): pings cost battery and radio time.</summary>
    public int AdaptiveFloorSeconds { get; init; } = 30;

    /// <summary>Per-network evidence of half-open deaths: <c>Broker:KeepAlive:Insight</c>.</summary>
    public KeepAliveInsightOptions Insight { get; init; } = new();
}
