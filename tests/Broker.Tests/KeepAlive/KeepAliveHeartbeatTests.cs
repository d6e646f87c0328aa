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
    private static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(100);

    [Fact]
    public async Task Advances_the_wheel_once_per_tick_and_expires_through_it()
    {
        await using var rig = new HeartbeatRig();
        var target = new RecordingTarget();
        rig.Wheel.Register(target, DeadlineKind.KeepAlive, TimeSpan.FromMilliseconds(450));
        rig.Start();

        for (int beat = 1; beat <= 5; beat++)
        {
            rig.Time.Advance(Tick);
            // The PeriodicTimer continuation runs asynchronously: wait for this beat's Advance before the next.
            Assert.Equal(TimeSpan.Zero, await rig.NextLagAsync());
            Assert.Equal(beat == 5, target.Expired);
        }

        await rig.StopAsync();
        rig.Time.Advance(Tick);
        Assert.False(rig.Lags.Reader.TryRead(out _));
    }

    [Fact]
    public async Task Beats_fall_on_the_wheel_grid_so_a_punctual_beat_reports_no_lag()
    {
        await using var rig = new HeartbeatRig();
        // The host starts the heartbeat some time after it built the wheel: 37 ms out of phase with its grid.
        rig.Time.Advance(TimeSpan.FromMilliseconds(37));
        rig.Start();

        for (int beat = 1; beat <= 3; beat++)
        {
            rig.Time.Advance(Tick);
            Assert.Equal(TimeSpan.Zero, await rig.NextLagAsync());
        }
    }

    [Fact]
    public void The_grid_is_not_moved_under_registered_deadlines()
    {
        var time = new FakeTimeProvider();
        using var wheel = new TimerWheel(time, Tick, InlineExpiryDispatcher.Instance);
        var deadline = wheel.Register(new RecordingTarget(), DeadlineKind.KeepAlive, TimeSpan.FromSeconds(1));
        Assert.False(wheel.TryAlignToNow());
        wheel.Remove(deadline);
        Assert.True(wheel.TryAlignToNow());
    }

    [Fact]
    public async Task A_late_beat_catches_up_and_reports_the_lag()
    {
        await using var rig = new HeartbeatRig();
        var target = new RecordingTarget();
        rig.Wheel.Register(target, DeadlineKind.KeepAlive, TimeSpan.FromMilliseconds(450));
        rig.Start();

        rig.Time.Advance(TimeSpan.FromSeconds(2)); // the timer fires once for the whole jump

        Assert.Equal(TimeSpan.FromMilliseconds(1900), await rig.NextLagAsync());
        Assert.True(target.Expired);
    }

    /// <summary>A wheel on a fake clock, its heartbeat, and every tick lag the wheel reports.</summary>
    private sealed class HeartbeatRig : IAsyncDisposable
    {
        private readonly CancellationToken _testCancelled = TestContext.Current.CancellationToken;
        private readonly CancellationTokenSource _stop;
        private KeepAliveHeartbeat? _heartbeat;
        private Task _running = Task.CompletedTask;

        public HeartbeatRig()
        {
            Wheel = new TimerWheel(Time, Tick, InlineExpiryDispatcher.Instance);
            Wheel.TickLagMeasured += lag => Lags.Writer.TryWrite(lag);
            _stop = CancellationTokenSource.CreateLinkedTokenSource(_testCancelled);
        }

        public FakeTimeProvider Time { get; } = new();
        public TimerWheel Wheel { get; }
        public Channel<TimeSpan> Lags { get; } = Channel.CreateUnbounded<TimeSpan>();

        public void Start()
        {
            _heartbeat = new KeepAliveHeartbeat(Wheel, Time);
            _running = _heartbeat.RunAsync(_stop.Token);
        }

        public Task<TimeSpan> NextLagAsync() => Lags.Reader.ReadAsync(_testCancelled).AsTask().WaitAsync(Safety, _testCancelled);

        public async Task StopAsync()
        {
            await _stop.CancelAsync();
            await _running.WaitAsync(Safety, _testCancelled);
        }

        public async ValueTask DisposeAsync()
        {
            await StopAsync();
            _heartbeat?.Dispose();
            Wheel.Dispose();
            _stop.Dispose();
        }
    }
}
