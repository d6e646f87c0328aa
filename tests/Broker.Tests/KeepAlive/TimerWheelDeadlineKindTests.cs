using Broker.Connections.KeepAlive;
using Xunit;

namespace Broker.Tests.KeepAlive;

/// <summary>The wheel's other deadlines and the throttled client: each kind on both sides of its boundary.</summary>
public sealed class TimerWheelDeadlineKindTests
{
    private static readonly TimeSpan Sec = TimeSpan.FromSeconds(1);

    [Fact]
    public void A_held_back_client_is_not_expired_for_silence_however_long_the_hold()
    {
        using var h = new WheelHarness();
        var target = new RecordingTarget { IsHeldBack = true };
        var deadline = h.Wheel.Register(target, DeadlineKind.KeepAlive, 3 * Sec);

        h.RunUntil(60 * Sec);
        Assert.False(target.Expired);

        // Released: the release counts as activity, and from then on silence counts again.
        target.IsHeldBack = false;
        deadline.Touch();
        h.RunUntil((63 * Sec) - h.Tick);
        Assert.False(target.Expired);
        h.RunUntil(64 * Sec);
        Assert.True(target.Expired);
    }

    [Fact]
    public void Holding_back_does_not_stretch_the_connect_timeout()
    {
        using var h = new WheelHarness();
        var target = new RecordingTarget { IsHeldBack = true };
        h.Wheel.Register(target, DeadlineKind.Connect, 5 * Sec);

        h.RunUntil((5 * Sec) - h.Tick);
        Assert.False(target.Expired);
        h.RunUntil((5 * Sec) + h.Tick);
        Assert.Equal(DeadlineKind.Connect, Assert.Single(target.Expiries).Kind);
    }

    [Fact]
    public void A_send_stall_watch_is_pushed_back_by_progress_like_a_keep_alive()
    {
        using var h = new WheelHarness();
        var target = new RecordingTarget();
        var watch = h.Wheel.Register(target, DeadlineKind.SendStall, 1 * Sec);

        h.RunUntil(TimeSpan.FromMilliseconds(900));
        watch.Touch();
        h.RunUntil(TimeSpan.FromMilliseconds(1850));
        Assert.False(target.Expired);
        h.RunUntil(TimeSpan.FromMilliseconds(2000));
        Assert.Equal(DeadlineKind.SendStall, Assert.Single(target.Expiries).Kind);
    }

    [Theory]
    [InlineData(nameof(DeadlineKind.SessionExpiry))]
    [InlineData(nameof(DeadlineKind.WillDelay))]
    [InlineData(nameof(DeadlineKind.PartialPacket))]
    [InlineData(nameof(DeadlineKind.Linger))]
    public void Other_deadlines_count_from_arming_and_are_not_extended_by_activity_nor_by_unread_input(string kindName)
    {
        var kind = Enum.Parse<DeadlineKind>(kindName);
        using var h = new WheelHarness();
        var target = new RecordingTarget { HasUnreadInput = true };
        var deadline = h.Wheel.Register(target, kind, 10 * Sec);

        h.RunUntil(9 * Sec);
        deadline.Touch();
        h.RunUntil((10 * Sec) - h.Tick);
        Assert.False(target.Expired);
        h.RunUntil((10 * Sec) + h.Tick);
        var expiry = Assert.Single(target.Expiries);
        Assert.Equal(kind, expiry.Kind);
        Assert.Equal(10 * Sec, expiry.Timeout);
    }

    [Fact]
    public void A_session_expiry_of_days_waits_its_whole_interval_over_many_revolutions()
    {
        using var h = new WheelHarness(tickMilliseconds: 1000);
        var target = new RecordingTarget();
        h.Wheel.Register(target, DeadlineKind.SessionExpiry, TimeSpan.FromDays(2));

        h.JumpTo(TimeSpan.FromDays(2) - Sec);
        h.RunUntil(TimeSpan.FromDays(2) - Sec);
        Assert.False(target.Expired);
        h.RunUntil(TimeSpan.FromDays(2) + (2 * Sec));
        Assert.True(target.Expired);
    }
}
