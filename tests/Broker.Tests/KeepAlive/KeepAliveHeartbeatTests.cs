using System.Threading.Channels;
using Broker.Connections.KeepAlive;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace Broker.Tests.KeepAlive;

public sealed class KeepAliveHeartbeatTests
{
    // A safety net for a broken heartbeat, not a wait for time to pass: every await below is released
    // by the fake clock.
    private static readonly TimeSpan Safety = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task Advances_the_wheel_once_per_tick_and_expires_through_it()
    {
        var time = new FakeTimeProvider();
        var tick = TimeSpan.FromMilliseconds(100);
        using var wheel = new TimerWheel(time, tick, InlineExpiryDispatcher.Instance);
        var lags = Channel.CreateUnbounded<TimeSpan>();
        wheel.TickLagMeasured += lag => lags.Writer.TryWrite(lag);
        var target = new RecordingTarget();
        wheel.Register(target, DeadlineKind.KeepAlive, TimeSpan.FromMilliseconds(450));
        using var heartbeat = new KeepAliveHeartbeat(wheel, time);
        var ct = TestContext.Current.CancellationToken;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var running = heartbeat.RunAsync(stop.Token);

        for (int beat = 1; beat <= 5; beat++)
        {
            time.Advance(tick);
            // The PeriodicTimer continuation runs asynchronously: wait for this beat's Advance before the next.
            var lag = await lags.Reader.ReadAsync(ct).AsTask().WaitAsync(Safety, ct);
            Assert.Equal(TimeSpan.Zero, lag);
            Assert.Equal(beat == 5, target.Expired);
        }

        await stop.CancelAsync();
        await running.WaitAsync(Safety, ct);
        time.Advance(tick);
        Assert.False(lags.Reader.TryRead(out _));
    }

    [Fact]
    public async Task Beats_fall_on_the_wheel_grid_so_a_punctual_beat_reports_no_lag()
    {
        var time = new FakeTimeProvider();
        var tick = TimeSpan.FromMilliseconds(100);
        using var wheel = new TimerWheel(time, tick, InlineExpiryDispatcher.Instance);
        var lags = Channel.CreateUnbounded<TimeSpan>();
        wheel.TickLagMeasured += lag => lags.Writer.TryWrite(lag);
        // The host starts the heartbeat some time after it built the wheel: 37 ms out of phase with its grid.
        time.Advance(TimeSpan.FromMilliseconds(37));
        using var heartbeat = new KeepAliveHeartbeat(wheel, time);
        var ct = TestContext.Current.CancellationToken;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var running = heartbeat.RunAsync(stop.Token);

        for (int beat = 1; beat <= 3; beat++)
        {
            time.Advance(tick);
            var lag = await lags.Reader.ReadAsync(ct).AsTask().WaitAsync(Safety, ct);
            Assert.Equal(TimeSpan.Zero, lag);
        }

        await stop.CancelAsync();
        await running.WaitAsync(Safety, ct);
    }

    [Fact]
    public void The_grid_is_not_moved_under_registered_deadlines()
    {
        var time = new FakeTimeProvider();
        using var wheel = new TimerWheel(time, TimeSpan.FromMilliseconds(100), InlineExpiryDispatcher.Instance);
        var deadline = wheel.Register(new RecordingTarget(), DeadlineKind.KeepAlive, TimeSpan.FromSeconds(1));
        Assert.False(wheel.TryAlignToNow());
        wheel.Remove(deadline);
        Assert.True(wheel.TryAlignToNow());
    }

    [Fact]
    public async Task A_late_beat_catches_up_and_reports_the_lag()
    {
        var time = new FakeTimeProvider();
        var tick = TimeSpan.FromMilliseconds(100);
        using var wheel = new TimerWheel(time, tick, InlineExpiryDispatcher.Instance);
        var lags = Channel.CreateUnbounded<TimeSpan>();
        wheel.TickLagMeasured += lag => lags.Writer.TryWrite(lag);
        var target = new RecordingTarget();
        wheel.Register(target, DeadlineKind.KeepAlive, TimeSpan.FromMilliseconds(450));
        using var heartbeat = new KeepAliveHeartbeat(wheel, time);
        var ct = TestContext.Current.CancellationToken;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var running = heartbeat.RunAsync(stop.Token);

        time.Advance(TimeSpan.FromSeconds(2)); // the timer fires once for the whole jump

        Assert.Equal(TimeSpan.FromMilliseconds(1900), await lags.Reader.ReadAsync(ct).AsTask().WaitAsync(Safety, ct));
        Assert.True(target.Expired);
        await stop.CancelAsync();
        await running.WaitAsync(Safety, ct);
    }
}
