namespace Broker.Diagnostics.Insight;

/// <summary>What the broker knows about one client network, for the HTTP view and the log.</summary>
/// <param name="Network">CIDR notation.</param>
/// <param name="Connections">Connections opened over the evidence period (normal closes included).</param>
/// <param name="HalfOpenDeaths">Connections proven dead while the broker thought them alive, all causes.</param>
/// <param name="KeepAlives">The most used negotiated K values and their connections.</param>
/// <param name="OtherKeepAliveConnections">Connections with a K not among <paramref name="KeepAlives"/>.</param>
/// <param name="Cluster">Where the dated deaths pile up, when they do.</param>
/// <param name="SuggestedKeepAliveSeconds">The K that keeps clear of the cluster (0.8 x its shortest idle age).</param>
/// <param name="LearnedTimeoutSeconds">The last confident idle timeout (kept until evidence replaces it); adaptive mode uses it.</param>
/// <param name="Advice">The log line's sentence, when there is a cluster.</param>
internal sealed record NetworkInsight(
    string Network,
    long Connections,
    long HalfOpenDeaths,
    HalfOpenDeathCounts DeathsByCause,
    IReadOnlyList<KeepAliveUse> KeepAlives,
    long OtherKeepAliveConnections,
    DeathCluster? Cluster,
    ushort? SuggestedKeepAliveSeconds,
    double? LearnedTimeoutSeconds,
    string? Advice);

internal readonly record struct KeepAliveUse(ushort Seconds, long Connections);

internal readonly record struct HalfOpenDeathCounts(long Takeover, long Reset, long TimedOut, long HostUnreachable, long KeepAliveExpired)
{
    public long Total => Takeover + Reset + TimedOut + HostUnreachable + KeepAliveExpired;
}
