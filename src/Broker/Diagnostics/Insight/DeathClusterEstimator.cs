namespace Broker.Diagnostics.Insight;

/// <summary>
/// Where a network's half-open deaths pile up: the narrow band of idle ages holding the most of them.
/// </summary>
/// <param name="FromSeconds">The shortest idle age in the band: the best upper bound on the path's idle timeout.</param>
/// <param name="ToSeconds">The longest idle age in the band.</param>
/// <param name="TypicalSeconds">The median idle age in the band.</param>
/// <param name="Deaths">Deaths in the band.</param>
/// <param name="DatedDeaths">All deaths whose idle age dates the path's death (the band's population).</param>
/// <param name="Connections">Connections the network opened over the same period.</param>
/// <param name="KeepAlive">The K most of the band's connections had.</param>
internal readonly record struct DeathCluster(double FromSeconds, double ToSeconds, double TypicalSeconds, int Deaths, int DatedDeaths, long Connections, ushort KeepAlive);

/// <summary>What it takes for a band of deaths to count as a cluster.</summary>
/// <param name="MinSamples">Deaths the band must hold; fewer is not evidence.</param>
/// <param name="MinDeathFraction">Share of the network's connections the band's deaths must reach (0..1).</param>
internal readonly record struct ClusterCriteria(int MinSamples, double MinDeathFraction);

/// <summary>
/// Finds the idle age at which a network's connections die half-open. Pure: the samples and counts come in,
/// a cluster or nothing comes out.
/// </summary>
/// <remarks>
/// Deaths are noticed at or after the moment the path dropped the flow, so a middlebox that evicts idle flows
/// at T leaves idle ages just above T, within the client's reaction time. Devices that reboot, lose power or
/// change network die at any idle age and scatter. The band is therefore narrow and relative (10 %, at least
/// 1 s: timer and scheduling jitter), and must hold at least half of the dated deaths: a middlebox that kills
/// every idle flow explains most of them, noise explains none in particular.
/// </remarks>
internal static class DeathClusterEstimator
{
    public const double RelativeWidth = 0.10;
    public const double MinWidthSeconds = 1.0;

    /// <param name="dated">Deaths whose idle age dates the path's death; reordered in place.</param>
    /// <param name="connections">Connections the network opened over the same period.</param>
    public static DeathCluster? Find(Span<DeathSample> dated, long connections, ClusterCriteria criteria)
    {
        int n = dated.Length;
        if (n < criteria.MinSamples || n == 0)
        {
            return null;
        }
        dated.Sort(static (a, b) => a.IdleSeconds.CompareTo(b.IdleSeconds));

        // One pass with two indexes: the band starting at sample i ends before sample j. The band's upper
        // limit grows with i, so j never moves back.
        int bestStart = 0, bestCount = 0, j = 0;
        for (int i = 0; i < n; i++)
        {
            double from = dated[i].IdleSeconds;
            double limit = from + Math.Max(from * RelativeWidth, MinWidthSeconds);
            while (j < n && dated[j].IdleSeconds <= limit)
            {
                j++;
            }
            // Strictly more: on a tie the shorter idle age wins, the tighter bound on the timeout.
            if (j - i > bestCount)
            {
                bestCount = j - i;
                bestStart = i;
            }
        }

        if (bestCount < criteria.MinSamples || bestCount * 2 < n || bestCount < criteria.MinDeathFraction * connections)
        {
            return null;
        }
        var band = dated.Slice(bestStart, bestCount);
        double typical = bestCount % 2 == 1
            ? band[bestCount / 2].IdleSeconds
            : (band[bestCount / 2 - 1].IdleSeconds + (double)band[bestCount / 2].IdleSeconds) / 2;
        // Milliseconds are all the clock resolves; the float samples would otherwise print as 3.0499999523.
        return new DeathCluster(Math.Round(band[0].IdleSeconds, 3), Math.Round(band[^1].IdleSeconds, 3), Math.Round(typical, 3),
            bestCount, n, connections, MostCommonKeepAlive(band));
    }

    private static ushort MostCommonKeepAlive(Span<DeathSample> band)
    {
        // The band is at most a ring's worth of samples (128): quadratic is cheaper than a dictionary.
        ushort best = band[0].KeepAlive;
        int bestCount = 0;
        for (int i = 0; i < band.Length; i++)
        {
            int count = 0;
            for (int k = 0; k < band.Length; k++)
            {
                if (band[k].KeepAlive == band[i].KeepAlive)
                {
                    count++;
                }
            }
            if (count > bestCount || (count == bestCount && band[i].KeepAlive < best))
            {
                best = band[i].KeepAlive;
                bestCount = count;
            }
        }
        return best;
    }
}
