using System.Net;
using Broker.Diagnostics.Insight;
using Xunit;

namespace Broker.Tests.Diagnostics.Insight;

public sealed class NetworkPrefixTests
{
    private static string Prefix(string address, int v4 = 24, int v6 = 48) => NetworkPrefix.From(IPAddress.Parse(address), v4, v6).ToString();

    [Theory]
    [InlineData("203.0.113.77", "203.0.113.0/24")]
    [InlineData("203.0.113.255", "203.0.113.0/24")]
    [InlineData("::ffff:203.0.113.9", "203.0.113.0/24")]      // dual-stack listener: the IPv4 rules apply
    [InlineData("2001:db8:12:34::1", "2001:db8:12::/48")]
    [InlineData("2001:db8:12:ffff:1:2:3:4", "2001:db8:12::/48")]
    [InlineData("fe80::1%3", "fe80::/48")]                     // the scope is not part of the network
    public void Default_lengths_group_a_site(string address, string expected) => Assert.Equal(expected, Prefix(address));

    [Theory]
    [InlineData("203.0.113.77", 32, 48, "203.0.113.77/32")]
    [InlineData("203.0.113.77", 0, 48, "0.0.0.0/0")]
    [InlineData("203.0.113.77", 20, 48, "203.0.112.0/20")]
    [InlineData("2001:db8:12:34:5:6:7:8", 24, 128, "2001:db8:12:34:5:6:7:8/128")]
    [InlineData("2001:db8:12:34:5:6:7:8", 24, 64, "2001:db8:12:34::/64")]
    [InlineData("2001:db8:12:34:ffff:6:7:8", 24, 65, "2001:db8:12:34:8000::/65")]
    [InlineData("2001:db8:12:34:5:6:7:8", 24, 0, "::/0")]
    public void Other_lengths_clear_exactly_the_host_bits(string address, int v4, int v6, string expected)
        => Assert.Equal(expected, Prefix(address, v4, v6));

    [Fact]
    public void Addresses_of_one_network_are_one_key_and_the_mapped_form_is_the_ipv4_one()
    {
        var a = NetworkPrefix.From(IPAddress.Parse("198.51.100.7"), 24, 48);

        Assert.Equal(a, NetworkPrefix.From(IPAddress.Parse("198.51.100.200"), 24, 48));
        Assert.Equal(a, NetworkPrefix.From(IPAddress.Parse("::ffff:198.51.100.9"), 24, 48));
        Assert.NotEqual(a, NetworkPrefix.From(IPAddress.Parse("198.51.101.7"), 24, 48));
        Assert.True(a.IsV4);
        // IPv6 ::c633:6407 is not an IPv4-mapped address: the same low bits, another family.
        Assert.NotEqual(a, NetworkPrefix.From(IPAddress.Parse("::198.51.100.7"), 24, 128));
    }
}
