using System.Net;
using Broker.Security;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace Broker.Tests.Security;

public sealed class FailedAttemptThrottleTests
{
    private readonly FakeTimeProvider _time = new();

    private FailedAttemptThrottle Create(int capacity = FailedAttemptThrottle.DefaultCapacity) =>
        new(_time, TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(1), capacity);

    [Fact]
    public void The_delay_doubles_per_failure_up_to_the_cap()
    {
        var throttle = Create();
        var address = IPAddress.Parse("198.51.100.7");
        var delays = new List<double>();
        for (int i = 0; i < 7; i++)
        {
            delays.Add(throttle.DelayFor(address).TotalMilliseconds);
            throttle.RecordFailure(address);
        }
        Assert.Equal([0, 100, 200, 400, 800, 1000, 1000], delays);
    }

    [Fact]
    public void An_address_is_forgotten_after_a_quiet_period()
    {
        var throttle = Create();
        var address = IPAddress.Parse("198.51.100.7");
        throttle.RecordFailure(address);
        throttle.RecordFailure(address);

        _time.Advance(FailedAttemptThrottle.ForgetAfter - TimeSpan.FromSeconds(1));
        Assert.Equal(TimeSpan.FromMilliseconds(200), throttle.DelayFor(address));
        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(TimeSpan.Zero, throttle.DelayFor(address));
        throttle.RecordFailure(address);
        Assert.Equal(TimeSpan.FromMilliseconds(100), throttle.DelayFor(address));
    }

    [Theory]
    [InlineData("2001:db8:1:2::1", "2001:db8:1:2:ffff::9", true)]
    [InlineData("2001:db8:1:2::1", "2001:db8:1:3::1", false)]
    [InlineData("::ffff:198.51.100.7", "198.51.100.7", true)]
    [InlineData("198.51.100.7", "198.51.100.8", false)]
    public void IPv6_clients_are_grouped_by_64_bit_prefix_and_mapped_IPv4_is_IPv4(string failing, string other, bool shared)
    {
        var throttle = Create();
        throttle.RecordFailure(IPAddress.Parse(failing));
        Assert.Equal(shared, throttle.DelayFor(IPAddress.Parse(other)) > TimeSpan.Zero);
    }

    [Fact]
    public void The_address_table_stays_bounded_and_keeps_the_recent_offenders()
    {
        var throttle = Create(capacity: 100);
        for (int i = 0; i < 1000; i++)
        {
            throttle.RecordFailure(new IPAddress(new byte[] { 10, 0, (byte)(i >> 8), (byte)i }));
            _time.Advance(TimeSpan.FromMilliseconds(1));
        }
        Assert.InRange(throttle.TrackedAddresses, 1, 100);
        Assert.True(throttle.DelayFor(new IPAddress(new byte[] { 10, 0, 999 >> 8, 999 & 0xFF })) > TimeSpan.Zero);
    }

    [Fact]
    public void A_zero_base_delay_disables_the_slow_down()
    {
        var throttle = new FailedAttemptThrottle(_time, TimeSpan.Zero, TimeSpan.FromSeconds(1));
        var address = IPAddress.Parse("198.51.100.7");
        throttle.RecordFailure(address);
        Assert.Equal(TimeSpan.Zero, throttle.DelayFor(address));
        Assert.Equal(0, throttle.TrackedAddresses);
    }
}
