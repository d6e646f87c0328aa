using Broker.Transport;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace Broker.Tests.Transport;

public sealed class ConnectRateLimiterTests
{
    [Fact]
    public void A_burst_passes_then_one_token_per_interval_with_the_wait_until_the_next()
    {
        var time = new FakeTimeProvider();
        var limiter = new ConnectRateLimiter(ratePerSecond: 10, burst: 3, time);

        Assert.True(limiter.TryTake(out _));
        Assert.True(limiter.TryTake(out _));
        Assert.True(limiter.TryTake(out _));
        Assert.False(limiter.TryTake(out var wait));
        Assert.Equal(TimeSpan.FromMilliseconds(100), wait);

        time.Advance(TimeSpan.FromMilliseconds(99));
        Assert.False(limiter.TryTake(out wait));
        Assert.InRange(wait, TimeSpan.Zero, TimeSpan.FromMilliseconds(1.01));
        time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.True(limiter.TryTake(out _));
    }

    [Fact]
    public void Idle_time_refills_no_more_than_the_burst_and_burst_0_means_one_seconds_worth()
    {
        var time = new FakeTimeProvider();
        var limiter = new ConnectRateLimiter(ratePerSecond: 5, burst: 0, time);
        time.Advance(TimeSpan.FromHours(1));

        int passed = 0;
        while (limiter.TryTake(out _))
        {
            passed++;
        }
        Assert.Equal(5, passed);
    }
}
