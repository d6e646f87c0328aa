namespace Broker.Diagnostics.Insight;

/// <summary>Keep-alive insight: per-network evidence of half-open deaths, bound from <c>Broker:KeepAlive:Insight</c>.</summary>
internal sealed record KeepAliveInsightOptions
{
    public const string SectionName = "Broker:KeepAlive:Insight";

    /// <summary>Half-open deaths kept per network, newest first; bounds the memory of a network with evidence.</summary>
    public const int SamplesPerNetwork = 128;

    /// <summary>False: no per-network table, view or advice (the histogram is still recorded).</summary>
    public bool Enabled { get; init; } = true;

    /// <summary>IPv4 addresses in the same /N are one network (a home router's or a carrier NAT's pool).</summary>
    public int PrefixLengthV4 { get; init; } = 24;

    /// <summary>IPv6 addresses in the same /N are one network (/48: one site).</summary>
    public int PrefixLengthV6 { get; init; } = 48;

    /// <summary>Networks tracked; past it the least busy ones are forgotten first.</summary>
    public int MaxNetworks { get; init; } = 1000;

    /// <summary>Deaths a cluster must hold before it is believed (at most <see cref="SamplesPerNetwork"/>).</summary>
    public int MinSamples { get; init; } = 10;

    /// <summary>Share of the network's connections that the cluster's deaths must reach (0..1).</summary>
    public double MinDeathFraction { get; init; } = 0.02;

    /// <summary>Evidence older than one to two windows is forgotten (counters rotate every window).</summary>
    public int WindowMinutes { get; init; } = 1440;

    /// <summary>How often the advice is logged (only networks with advice); 0 = never.</summary>
    public int LogIntervalSeconds { get; init; } = 600;
}
