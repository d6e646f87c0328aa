using Broker.Diagnostics.Insight;
using Xunit;

namespace Broker.Tests.Diagnostics.Insight;

public sealed class AdaptiveServerKeepAliveTests
{
    [Theory]
    // requested, negotiated, learned, floor, expected (0 = leave the negotiation alone)
    [InlineData(600, 600, 350.0, 30, 280)]   // 0.8 x 350
    [InlineData(600, 600, 340.9, 30, 272)]   // rounded down: never above 0.8 x the timeout
    [InlineData(120, 120, 350.0, 30, 0)]     // already pinging often enough
    [InlineData(280, 280, 350.0, 30, 0)]     // exactly the target: nothing to change
    [InlineData(600, 600, 20.0, 30, 30)]     // never below the floor
    [InlineData(20, 20, 100.0, 30, 0)]       // the client itself asked for less than the floor: its own value stays
    [InlineData(600, 1000, 900.0, 30, 600)]  // the policy imposed more than asked: never above the request
    [InlineData(0, 0, 350.0, 30, 280)]       // no keep-alive at all: it dies at the middlebox too, so it gets one
    [InlineData(0, 65535, 350.0, 30, 280)]   // 0 told MaxSeconds by the policy
    [InlineData(600, 600, 0.0, 30, 0)]       // nothing learned
    [InlineData(600, 600, 1.0, 1, 1)]        // at least 1 s
    public void Decides_min_of_request_and_four_fifths_of_the_timeout_bounded_by_the_floor(
        int requested, int negotiated, double learned, int floor, int expected)
    {
        ushort? decided = AdaptiveServerKeepAlive.Decide((ushort)requested, (ushort)negotiated, learned, (ushort)floor);

        Assert.Equal(expected == 0 ? null : (ushort)expected, decided);
    }
}
