using Broker.Transport;
using Xunit;

namespace Broker.Tests.Transport;

public sealed class DescriptorHeadroomTests
{
    [Fact]
    public void A_descriptor_among_the_last_Reserve_of_the_limit_is_low_and_one_below_is_not()
    {
        var headroom = new DescriptorHeadroom(limit: 1024);
        Assert.True(headroom.IsActive);
        // Descriptors are numbered 0 .. limit-1; at limit - Reserve, fewer than Reserve remain above it.
        Assert.False(headroom.IsLow(1024 - DescriptorHeadroom.Reserve - 1));
        Assert.True(headroom.IsLow(1024 - DescriptorHeadroom.Reserve));
        Assert.True(headroom.IsLow(1023));
    }

    [Fact]
    public void An_unknown_or_tiny_limit_turns_the_check_off()
    {
        foreach (long? limit in new long?[] { null, 2 * DescriptorHeadroom.Reserve })
        {
            var headroom = new DescriptorHeadroom(limit);
            Assert.False(headroom.IsActive);
            Assert.False(headroom.IsLow(long.MaxValue - 1));
            Assert.False(headroom.IsLowNow());
        }
    }

    [Fact]
    public void The_probe_sees_how_many_descriptors_this_process_has_free()
    {
        if (!OperatingSystem.IsLinux())
        {
            Assert.Skip("Reads descriptor numbers, which Linux hands out lowest first.");
        }
        // The test process holds far more than a few dozen descriptors (runtime, test host pipes), and far fewer than 2^30.
        Assert.True(new DescriptorHeadroom(limit: 2 * DescriptorHeadroom.Reserve + 1).IsLowNow());
        Assert.False(new DescriptorHeadroom(limit: 1L << 30).IsLowNow());
    }
}
