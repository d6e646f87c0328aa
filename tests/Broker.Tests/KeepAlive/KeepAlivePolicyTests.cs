using Broker.Connections.KeepAlive;
using Broker.Hosting;
using Xunit;

namespace Broker.Tests.KeepAlive;

public sealed class KeepAlivePolicyTests
{
    public static TheoryData<int, bool, int?, int, ushort, bool, ushort, ushort?> Table => new()
    {
        // max, allowZero, server, level, requested -> accepted, effective, serverKeepAlive
        // 5.0: within policy, unchanged and no property sent.
        { 65535, true, null, 5, 60, true, 60, null },
        { 65535, true, null, 5, 0, true, 0, null },
        { 65535, true, null, 5, 65535, true, 65535, null },
        { 300, true, null, 5, 300, true, 300, null },
        // 5.0: above MaxSeconds, or 0 when not allowed: told MaxSeconds and held to it.
        { 300, true, null, 5, 301, true, 300, (ushort)300 },
        { 300, true, null, 5, 65535, true, 300, (ushort)300 },
        { 300, false, null, 5, 0, true, 300, (ushort)300 },
        { 300, false, null, 5, 1, true, 1, null },
        // 5.0: ServerKeepAliveSeconds set: every client gets it, whatever it asked.
        { 300, true, 30, 5, 0, true, 30, (ushort)30 },
        { 300, true, 30, 5, 10, true, 30, (ushort)30 },
        { 300, true, 30, 5, 30, true, 30, (ushort)30 },
        { 300, true, 30, 5, 1000, true, 30, (ushort)30 },
        // 3.1.1: within policy, unchanged (ServerKeepAliveSeconds does not apply).
        { 65535, true, null, 4, 60, true, 60, null },
        { 65535, true, null, 4, 0, true, 0, null },
        { 300, true, null, 4, 300, true, 300, null },
        { 300, true, 30, 4, 120, true, 120, null },
        { 300, true, 30, 4, 0, true, 0, null },
        // 3.1 (level 3) follows the 3.1.1 rules.
        { 300, true, null, 3, 60, true, 60, null },
        // 3.1.1: outside policy: refused.
        { 300, true, null, 4, 301, false, 0, null },
        { 300, false, null, 4, 0, false, 0, null },
        { 300, false, 30, 4, 0, false, 0, null },
        { 300, true, null, 3, 65535, false, 0, null },
    };

    [Theory]
    [MemberData(nameof(Table))]
    public void Negotiation_table(int max, bool allowZero, int? server, int level, ushort requested, bool accepted, ushort effective, ushort? serverKeepAlive)
    {
        var policy = new KeepAlivePolicy(new KeepAliveOptions { MaxSeconds = max, AllowZero = allowZero, ServerKeepAliveSeconds = server });

        var result = policy.Negotiate(level, requested);

        Assert.Equal(accepted, result.Accepted);
        Assert.Equal(effective, result.EffectiveSeconds);
        Assert.Equal(serverKeepAlive, result.ServerKeepAlive);
        Assert.Equal(accepted, result.RefusalReason is null);
    }

    [Fact]
    public void Refusal_reasons_say_why()
    {
        var policy = new KeepAlivePolicy(new KeepAliveOptions { MaxSeconds = 300, AllowZero = false });

        var tooLong = policy.Negotiate(4, 600).RefusalReason;
        var zero = policy.Negotiate(4, 0).RefusalReason;

        Assert.Contains("600", tooLong);
        Assert.Contains("Broker:KeepAlive:MaxSeconds (300 s)", tooLong);
        Assert.Contains("Broker:KeepAlive:AllowZero=false", zero);
    }

    [Theory]
    [InlineData(2)]
    [InlineData(6)]
    [InlineData(0)]
    public void Unknown_protocol_levels_are_a_programming_error(int level)
    {
        var policy = new KeepAlivePolicy(new KeepAliveOptions());

        Assert.Throws<ArgumentOutOfRangeException>(() => policy.Negotiate(level, 60));
    }

    [Theory]
    [InlineData(0, 0)]
    [InlineData(1, 15_000_000)]
    [InlineData(3, 45_000_000)]             // 4.5 s, not 4 s
    [InlineData(7, 105_000_000)]
    [InlineData(60, 900_000_000)]
    [InlineData(65535, 983_025_000_000)]    // 98302.5 s
    public void Keep_alive_timeout_is_one_and_a_half_times_k(ushort seconds, long expectedTicks)
    {
        var policy = new KeepAlivePolicy(new KeepAliveOptions());

        Assert.Equal(TimeSpan.FromTicks(expectedTicks), policy.KeepAliveTimeout(seconds));
    }

    [Fact]
    public void Grace_multiplier_is_applied_and_rounded_up()
    {
        Assert.Equal(TimeSpan.FromSeconds(3), KeepAlivePolicy.KeepAliveTimeout(3, 1.0));
        Assert.Equal(TimeSpan.FromSeconds(6), KeepAlivePolicy.KeepAliveTimeout(3, 2.0));
        Assert.Equal(TimeSpan.FromTicks(33_333_334), KeepAlivePolicy.KeepAliveTimeout(1, 3.3333333333333335));
    }

    [Fact]
    public void Connect_timeout_comes_from_options()
    {
        Assert.Equal(TimeSpan.FromSeconds(10), new KeepAlivePolicy(new KeepAliveOptions()).ConnectTimeout);
        Assert.Equal(TimeSpan.FromSeconds(3), new KeepAlivePolicy(new KeepAliveOptions { ConnectTimeoutSeconds = 3 }).ConnectTimeout);
    }
}
