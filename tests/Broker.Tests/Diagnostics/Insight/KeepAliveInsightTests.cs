using System.Net;
using Broker.Diagnostics.Insight;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace Broker.Tests.Diagnostics.Insight;

public sealed class KeepAliveInsightTests
{
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero));

    private KeepAliveInsight Create(KeepAliveInsightOptions? options = null, bool adaptive = false, ushort floor = 30)
        => new(options ?? new KeepAliveInsightOptions(), _time, metrics: null, adaptive, floor);

    private static IPAddress Ip(string address) => IPAddress.Parse(address);

    /// <summary>The example: 230 connections from one /24, 41 of them taken over after 340-352 s idle with K = 600.</summary>
    private static void NatEvictingAt350(KeepAliveInsight insight)
    {
        for (int i = 0; i < 230; i++)
        {
            insight.ConnectionOpened(Ip($"203.0.113.{i % 250}"), 600);
        }
        for (int i = 0; i < 41; i++)
        {
            insight.ConnectionDied(Ip($"203.0.113.{i}"), HalfOpenCause.Takeover, TimeSpan.FromSeconds(340 + 12.0 * i / 40), 600);
        }
    }

    [Fact]
    public void A_network_whose_connections_die_at_one_idle_age_gets_advice_naming_it()
    {
        var insight = Create();
        NatEvictingAt350(insight);

        var network = Assert.Single(insight.Snapshot());

        Assert.Equal("203.0.113.0/24", network.Network);
        Assert.Equal(230, network.Connections);
        Assert.Equal(new HalfOpenDeathCounts(41, 0, 0, 0, 0), network.DeathsByCause);
        Assert.Equal([new KeepAliveUse(600, 230)], network.KeepAlives);
        Assert.Equal((ushort)272, network.SuggestedKeepAliveSeconds);
        Assert.Equal(340, network.LearnedTimeoutSeconds);
        Assert.Equal(
            "clients from 203.0.113.0/24: 41 of 230 connections died half-open after 340-352 s idle with K = 600: " +
            "a middlebox evicts idle flows at ~346 s; set Broker:KeepAlive:ServerKeepAliveSeconds <= 272 or lower the devices' K",
            network.Advice);
    }

    [Fact]
    public void Deaths_at_the_clients_own_keep_alive_are_read_as_an_upper_bound()
    {
        var insight = Create();
        for (int i = 0; i < 100; i++)
        {
            insight.ConnectionOpened(Ip("198.51.100.1"), 120);
        }
        for (int i = 0; i < 20; i++)
        {
            // Noticed when the device's next PINGREQ hits the evicted flow: just after K.
            insight.ConnectionDied(Ip("198.51.100.1"), HalfOpenCause.Reset, TimeSpan.FromSeconds(120.2 + i * 0.1), 120);
        }

        string advice = Assert.Single(insight.Snapshot()).Advice!;

        Assert.Contains("they die at their next keep-alive: something on the path evicts idle flows in less than ~120 s", advice);
        Assert.Contains("ServerKeepAliveSeconds <= 96", advice);
    }

    [Fact]
    public void Deaths_timed_by_the_brokers_own_timers_count_but_do_not_make_a_cluster()
    {
        var insight = Create();
        for (int i = 0; i < 50; i++)
        {
            insight.ConnectionOpened(Ip("198.51.100.1"), 600);
        }
        for (int i = 0; i < 20; i++)
        {
            // 1.5 x K and the kernel's keep-alive schedule: a pile-up that says nothing about the path.
            insight.ConnectionDied(Ip("198.51.100.1"), HalfOpenCause.KeepAliveExpired, TimeSpan.FromSeconds(900), 600);
            insight.ConnectionDied(Ip("198.51.100.1"), HalfOpenCause.TimedOut, TimeSpan.FromSeconds(120), 600);
        }

        var network = Assert.Single(insight.Snapshot());

        Assert.Equal(40, network.HalfOpenDeaths);
        Assert.Equal(new HalfOpenDeathCounts(0, 0, 20, 0, 20), network.DeathsByCause);
        Assert.Null(network.Cluster);
        Assert.Null(network.Advice);
    }

    [Fact]
    public void A_burst_of_keep_alive_expiries_does_not_crowd_out_the_takeovers_that_date_the_timeout()
    {
        var insight = Create();
        NatEvictingAt350(insight);
        for (int i = 0; i < 500; i++)
        {
            insight.ConnectionDied(Ip("203.0.113.7"), HalfOpenCause.KeepAliveExpired, TimeSpan.FromSeconds(900), 600);
        }

        var network = Assert.Single(insight.Snapshot());

        Assert.Equal(541, network.HalfOpenDeaths);
        Assert.Equal(41, network.Cluster?.Deaths);
    }

    [Fact]
    public void Too_few_deaths_give_no_advice()
    {
        var insight = Create();
        insight.ConnectionOpened(Ip("198.51.100.1"), 600);
        for (int i = 0; i < 9; i++)
        {
            insight.ConnectionDied(Ip("198.51.100.1"), HalfOpenCause.Takeover, TimeSpan.FromSeconds(350), 600);
        }

        var network = Assert.Single(insight.Snapshot());

        Assert.Equal(9, network.HalfOpenDeaths);
        Assert.Null(network.Advice);
        Assert.Null(network.LearnedTimeoutSeconds);
    }

    [Fact]
    public void Networks_group_by_prefix_for_ipv4_ipv6_and_mapped_addresses()
    {
        var insight = Create();
        insight.ConnectionOpened(Ip("198.51.100.7"), 60);
        insight.ConnectionOpened(Ip("198.51.100.200"), 60);
        insight.ConnectionOpened(Ip("::ffff:198.51.100.9"), 60);
        insight.ConnectionOpened(Ip("198.51.101.7"), 60);
        insight.ConnectionOpened(Ip("2001:db8:1:2::1"), 300);
        insight.ConnectionOpened(Ip("2001:db8:1:ffff::9"), 30);
        insight.ConnectionOpened(Ip("2001:db8:2::1"), 300);

        var counts = insight.Snapshot().ToDictionary(n => n.Network, n => n.Connections);

        Assert.Equal(new Dictionary<string, long>
        {
            ["198.51.100.0/24"] = 3,
            ["198.51.101.0/24"] = 1,
            ["2001:db8:1::/48"] = 2,
            ["2001:db8:2::/48"] = 1,
        }, counts);
        Assert.Equal(4, insight.NetworkCount);
    }

    [Fact]
    public void Configured_prefix_lengths_apply()
    {
        var insight = Create(new KeepAliveInsightOptions { PrefixLengthV4 = 16, PrefixLengthV6 = 64 });
        insight.ConnectionOpened(Ip("198.51.100.7"), 60);
        insight.ConnectionOpened(Ip("198.51.7.7"), 60);
        insight.ConnectionOpened(Ip("2001:db8:1:2::1"), 60);
        insight.ConnectionOpened(Ip("2001:db8:1:3::1"), 60);

        Assert.Equal(["198.51.0.0/16", "2001:db8:1:2::/64", "2001:db8:1:3::/64"], insight.Snapshot().Select(n => n.Network).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void The_ks_in_use_are_counted_per_value_with_the_rest_as_other()
    {
        var insight = Create();
        ushort[] keepAlives = [60, 60, 60, 300, 0, 120, 120, 45, 45, 45, 45];
        foreach (ushort k in keepAlives)
        {
            insight.ConnectionOpened(Ip("198.51.100.1"), k);
        }

        var network = Assert.Single(insight.Snapshot());

        // Four slots, claimed by the first four values seen; 45 came fifth.
        Assert.Equal([new(60, 3), new(120, 2), new(0, 1), new(300, 1)], network.KeepAlives);
        Assert.Equal(4, network.OtherKeepAliveConnections);
    }

    [Fact]
    public void The_table_holds_at_most_max_networks_and_forgets_the_least_busy()
    {
        var insight = Create(new KeepAliveInsightOptions { MaxNetworks = 3 });
        Open(insight, "10.0.1.1", 5);
        Open(insight, "10.0.2.1", 3);
        Open(insight, "10.0.3.1", 1);

        Open(insight, "10.0.4.1", 1);

        Assert.Equal(3, insight.NetworkCount);
        Assert.Equal(["10.0.1.0/24", "10.0.2.0/24", "10.0.4.0/24"], Networks(insight));

        // The newcomer started from the evicted network's score (1) plus its own connection: the next
        // newcomer replaces it, not the busier incumbents.
        Open(insight, "10.0.5.1", 1);
        Assert.Equal(["10.0.1.0/24", "10.0.2.0/24", "10.0.5.0/24"], Networks(insight));

        // A newcomer that keeps connecting outgrows an incumbent and stays.
        Open(insight, "10.0.5.1", 5);
        Open(insight, "10.0.6.1", 1);
        Assert.Equal(3, insight.NetworkCount);
        Assert.Contains("10.0.5.0/24", Networks(insight));
        Assert.Contains("10.0.1.0/24", Networks(insight));
    }

    [Fact]
    public void Evidence_ages_out_after_the_window_but_the_learned_timeout_stays()
    {
        var insight = Create(new KeepAliveInsightOptions { WindowMinutes = 60 }, adaptive: true);
        NatEvictingAt350(insight);
        Assert.NotNull(Assert.Single(insight.Snapshot()).Advice);

        // Into the next window the evidence is still the previous generation's.
        _time.Advance(TimeSpan.FromMinutes(61));
        Assert.NotNull(Assert.Single(insight.Snapshot()).Advice);

        _time.Advance(TimeSpan.FromMinutes(61));
        var network = Assert.Single(insight.Snapshot());

        Assert.Equal(0, network.Connections);
        Assert.Null(network.Advice);
        // Adaptive mode stopped the deaths that taught it; forgetting would bring them back.
        Assert.Equal(340, network.LearnedTimeoutSeconds);
        Assert.Equal((ushort)272, insight.SuggestServerKeepAlive(Ip("203.0.113.99"), 600, 600));
    }

    [Fact]
    public void A_later_cluster_replaces_the_learned_timeout()
    {
        var insight = Create(new KeepAliveInsightOptions { WindowMinutes = 60 }, adaptive: true);
        NatEvictingAt350(insight);
        _time.Advance(TimeSpan.FromMinutes(150));

        for (int i = 0; i < 20; i++)
        {
            insight.ConnectionOpened(Ip("203.0.113.5"), 272);
            insight.ConnectionDied(Ip("203.0.113.5"), HalfOpenCause.Takeover, TimeSpan.FromSeconds(240 + i * 0.5), 272);
        }

        Assert.Equal(240, Assert.Single(insight.Snapshot()).LearnedTimeoutSeconds);
        Assert.Equal((ushort)192, insight.SuggestServerKeepAlive(Ip("203.0.113.5"), 272, 272));
    }

    [Fact]
    public void Adaptive_suggestions_need_the_mode_and_a_learned_network()
    {
        var off = Create();
        NatEvictingAt350(off);
        Assert.Null(off.SuggestServerKeepAlive(Ip("203.0.113.1"), 600, 600));

        var on = Create(adaptive: true, floor: 30);
        NatEvictingAt350(on);
        Assert.Equal((ushort)272, on.SuggestServerKeepAlive(Ip("203.0.113.1"), 600, 600));
        Assert.Equal((ushort)272, on.SuggestServerKeepAlive(Ip("::ffff:203.0.113.1"), 600, 600));
        Assert.Null(on.SuggestServerKeepAlive(Ip("203.0.113.1"), 120, 120));
        Assert.Null(on.SuggestServerKeepAlive(Ip("198.51.100.1"), 600, 600));
    }

    [Fact]
    public void Disabled_insight_tracks_nothing()
    {
        var insight = Create(new KeepAliveInsightOptions { Enabled = false }, adaptive: true);
        NatEvictingAt350(insight);

        Assert.Equal(0, insight.NetworkCount);
        Assert.Empty(insight.Snapshot());
        Assert.False(insight.Adaptive);
        Assert.Null(insight.SuggestServerKeepAlive(Ip("203.0.113.1"), 600, 600));
    }

    [Fact]
    public void Counting_a_connection_and_asking_for_a_suggestion_do_not_allocate()
    {
        var insight = Create(adaptive: true);
        NatEvictingAt350(insight);
        var v4 = Ip("203.0.113.10");
        var v6 = Ip("2001:db8:1:2::1");
        insight.ConnectionOpened(v6, 60);

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 1000; i++)
        {
            insight.ConnectionOpened(v4, 600);
            insight.ConnectionOpened(v6, 60);
            _ = insight.SuggestServerKeepAlive(v4, 600, 600);
        }
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(0, allocated);
    }

    private static void Open(KeepAliveInsight insight, string address, int times)
    {
        for (int i = 0; i < times; i++)
        {
            insight.ConnectionOpened(Ip(address), 60);
        }
    }

    private static string[] Networks(KeepAliveInsight insight)
        => insight.Snapshot().Select(n => n.Network).Order(StringComparer.Ordinal).ToArray();
}
