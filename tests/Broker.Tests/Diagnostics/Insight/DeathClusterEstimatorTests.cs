using Broker.Diagnostics.Insight;
using Xunit;

namespace Broker.Tests.Diagnostics.Insight;

public sealed class DeathClusterEstimatorTests
{
    private static readonly ClusterCriteria Default = new(MinSamples: 10, MinDeathFraction: 0.02);

    private static DeathSample Death(double idle, ushort keepAlive = 600) => new(0, (float)idle, keepAlive, HalfOpenCause.Takeover);

    /// <summary>n deaths spread evenly over [from, to].</summary>
    private static IEnumerable<DeathSample> Spread(int n, double from, double to, ushort keepAlive = 600)
        => Enumerable.Range(0, n).Select(i => Death(n == 1 ? from : from + (to - from) * i / (n - 1), keepAlive));

    private static DeathCluster? Find(IEnumerable<DeathSample> deaths, long connections, ClusterCriteria? criteria = null)
        => DeathClusterEstimator.Find(deaths.ToArray(), connections, criteria ?? Default);

    [Fact]
    public void Deaths_piled_up_just_after_a_timeout_are_a_cluster_with_its_range_and_keep_alive()
    {
        var cluster = Find(Spread(41, 340, 352), connections: 230);

        Assert.Equal(new DeathCluster(340, 352, 346, Deaths: 41, DatedDeaths: 41, Connections: 230, KeepAlive: 600), cluster);
    }

    [Fact]
    public void Deaths_scattered_over_the_keep_alive_period_are_not_a_cluster()
    {
        // Devices rebooting or losing power die at any idle age: 40 deaths, one every 15 s up to K.
        Assert.Null(Find(Spread(40, 15, 600), connections: 200));
    }

    [Fact]
    public void A_cluster_is_found_through_noise_and_counts_only_its_band()
    {
        var deaths = Spread(20, 350, 360).Concat(Spread(12, 20, 200));

        var cluster = Assert.NotNull(Find(deaths, connections: 300));

        Assert.Equal((350, 360, 20, 32), (cluster.FromSeconds, cluster.ToSeconds, cluster.Deaths, cluster.DatedDeaths));
    }

    [Fact]
    public void Fewer_deaths_than_the_minimum_give_no_cluster_however_tight()
    {
        Assert.Null(Find(Spread(9, 350, 350), connections: 9));
        Assert.NotNull(Find(Spread(10, 350, 350), connections: 10));
    }

    [Fact]
    public void A_band_holding_less_than_half_of_the_deaths_is_not_a_cluster()
    {
        // 12 at 350 s, 13 spread far from it: the middlebox would explain less than half of what is seen.
        var deaths = Spread(12, 350, 352).Concat(Spread(13, 10, 250));

        Assert.Null(Find(deaths, connections: 100));
        Assert.NotNull(Find(Spread(12, 350, 352).Concat(Spread(12, 10, 250)), connections: 100));
    }

    [Fact]
    public void A_cluster_must_reach_the_minimum_share_of_the_networks_connections()
    {
        var deaths = Spread(12, 350, 352).ToArray();

        Assert.Null(Find(deaths, connections: 1000));                                      // 1.2 % < 2 %
        Assert.NotNull(Find(deaths, connections: 1000, new ClusterCriteria(10, 0.01)));   // 1.2 % >= 1 %
    }

    [Fact]
    public void Of_two_equal_bands_the_shorter_idle_age_wins()
    {
        var cluster = Find(Spread(10, 100, 101, keepAlive: 120).Concat(Spread(10, 300, 301)), connections: 20);

        Assert.Equal((100, (ushort)120), (cluster!.Value.FromSeconds, cluster.Value.KeepAlive));
    }

    [Fact]
    public void Short_idle_ages_get_a_band_of_at_least_one_second()
    {
        // 10 % of 3 s is 0.3 s, less than timer and scheduling jitter.
        var deaths = new[] { 3.0, 3.2, 3.5, 3.9, 4.0 }.Select(idle => Death(idle, 60));

        var cluster = Find(deaths, connections: 10, new ClusterCriteria(5, 0));

        Assert.Equal(new DeathCluster(3, 4, 3.5, 5, 5, 10, 60), cluster);
    }

    [Fact]
    public void The_keep_alive_of_the_cluster_is_the_one_most_of_its_deaths_had()
    {
        var deaths = Spread(7, 350, 355, keepAlive: 600).Concat(Spread(4, 350, 355, keepAlive: 900));

        Assert.Equal((ushort)600, Find(deaths, connections: 50)!.Value.KeepAlive);
    }
}
