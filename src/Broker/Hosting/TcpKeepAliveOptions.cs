namespace Broker.Hosting;

/// <summary>
/// Kernel TCP keep-alive, bound from <c>Broker:TcpKeepAlive</c>. It detects half-open connections
/// (peer vanished without FIN/RST) of clients whose MQTT keep-alive is 0 or very long, and frees
/// their sockets without any per-connection timer in the broker.
/// </summary>
internal sealed record TcpKeepAliveOptions
{
    public const string SectionName = "Broker:TcpKeepAlive";

    // Linux upper bounds (MAX_TCP_KEEPIDLE, MAX_TCP_KEEPINTVL, MAX_TCP_KEEPCNT in include/net/tcp.h);
    // setsockopt rejects larger values with EINVAL.
    internal const int MaxSeconds = 32767;
    internal const int MaxProbeCount = 127;

    public bool Enabled { get; init; } = true;

    /// <summary>Idle time before the first probe (TCP_KEEPIDLE).</summary>
    public int IdleSeconds { get; init; } = 60;

    /// <summary>Time between unanswered probes (TCP_KEEPINTVL).</summary>
    public int IntervalSeconds { get; init; } = 10;

    /// <summary>Unanswered probes before the kernel reports ETIMEDOUT (TCP_KEEPCNT).</summary>
    public int ProbeCount { get; init; } = 6;
}
