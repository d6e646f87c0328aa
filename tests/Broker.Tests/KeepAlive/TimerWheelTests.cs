using Broker.Connections.KeepAlive;
using Xunit;

namespace Broker.Tests.KeepAlive;

public sealed class TimerWheelTests
{
    private static readonly TimeSpan Sec = TimeSpan.FromSeconds(1);

    [Fact]
    public void Armed_deadline_expires_once_after_its_timeout()
    {
        using var h = new WheelHarness();
        var target = new RecordingTarget();
        h.Wheel.Register(target, DeadlineKind.KeepAlive, 15 * Sec);

        h.RunUntil(14 * Sec);
        Assert.False(target.Expired);
        Assert.Equal(1, h.RunUntil(16 * Sec));

        var expiry = Assert.Single(target.Expiries);
        Assert.Equal(DeadlineKind.KeepAlive, expiry.Kind);
        Assert.Equal(15 * Sec, expiry.Timeout);
        Assert.InRange(expiry.Elapsed, 15 * Sec, (15 * Sec) + h.Tick);
        Assert.Equal(0, h.Wheel.Count);

        h.RunUntil(100 * Sec);
        Assert.Single(target.Expiries);
    }

    // The wheel's origin and the registration are at different phases of the tick: the bound must hold
    // whatever the phase, on both sides of the deadline.
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(37)]
    [InlineData(50)]
    [InlineData(99)]
    public void Never_expires_before_the_deadline_and_at_most_one_tick_after(int phaseMilliseconds)
    {
        using var h = new WheelHarness();
        h.RunUntil(TimeSpan.FromMilliseconds(1000 + phaseMilliseconds));
        var registeredAt = h.Elapsed;
        var target = new RecordingTarget();
        h.Wheel.Register(target, DeadlineKind.KeepAlive, 15 * Sec);
        var deadline = registeredAt + (15 * Sec);

        h.RunUntil(deadline - h.Unit);
        Assert.False(target.Expired);

        h.RunUntil(deadline + h.Tick);
        var expiry = Assert.Single(target.Expiries);
        Assert.InRange(expiry.Elapsed, 15 * Sec, (15 * Sec) + h.Tick);
    }

    // The heartbeat's timer is not aligned with the wheel's origin: Advance runs at boundary + phase.
    [Theory]
    [InlineData(1, 0)]
    [InlineData(37, 0)]
    [InlineData(99, 0)]
    [InlineData(37, 63)]
    [InlineData(99, 1)]
    public void Lateness_stays_under_one_tick_whatever_the_heartbeat_phase(int heartbeatPhaseMs, int registrationPhaseMs)
    {
        using var h = new WheelHarness();
        var phase = TimeSpan.FromMilliseconds(heartbeatPhaseMs);
        h.Time.Advance(TimeSpan.FromMilliseconds(2000 + registrationPhaseMs));
        var target = new RecordingTarget();
        h.Wheel.Register(target, DeadlineKind.KeepAlive, 4.5 * Sec);
        var deadline = h.Elapsed + (4.5 * Sec);

        for (var beat = (2 * Sec) + h.Tick + phase; !target.Expired; beat += h.Tick)
        {
            h.Time.Advance(beat - h.Elapsed);
            h.Wheel.Advance();
            Assert.False(target.Expired && h.Elapsed < deadline, "expired early");
        }

        Assert.InRange(h.Elapsed - deadline, TimeSpan.Zero, h.Tick - h.Unit);
    }

    [Fact]
    public void Expires_at_the_deadline_itself_when_a_tick_falls_on_it()
    {
        using var h = new WheelHarness();
        var target = new RecordingTarget();
        h.Wheel.Register(target, DeadlineKind.KeepAlive, 15 * Sec);

        h.RunUntil(15 * Sec);

        Assert.Equal(15 * Sec, Assert.Single(target.Expiries).Elapsed);
    }

    [Fact]
    public void Touch_moves_the_deadline_to_last_activity_plus_timeout()
    {
        using var h = new WheelHarness();
        var target = new RecordingTarget();
        var deadline = h.Wheel.Register(target, DeadlineKind.KeepAlive, 15 * Sec);

        h.RunUntil(10 * Sec);
        deadline.Touch();
        Assert.Equal(h.Time.GetTimestamp(), deadline.LastActivityTimestamp);

        h.RunUntil((25 * Sec) - h.Unit);
        Assert.False(target.Expired);
        h.RunUntil((25 * Sec) + h.Tick);
        Assert.Equal(15 * Sec, Assert.Single(target.Expiries).Elapsed); // the new deadline falls on a tick: no lateness at all
    }

    [Fact]
    public void A_client_active_every_period_is_never_expired()
    {
        using var h = new WheelHarness();
        var target = new RecordingTarget();
        var deadline = h.Wheel.Register(target, DeadlineKind.KeepAlive, 4.5 * Sec); // K = 3

        for (int period = 1; period <= 200; period++)
        {
            h.RunUntil(period * 3 * Sec);
            deadline.Touch();
        }

        Assert.False(target.Expired);
        h.RunUntil((600 * Sec) + (4.5 * Sec) + h.Tick);
        Assert.True(target.Expired);
    }

    [Fact]
    public void Odd_keep_alive_uses_one_and_a_half_times_exactly()
    {
        using var h = new WheelHarness();
        var timeout = KeepAlivePolicy.KeepAliveTimeout(3, 1.5);
        Assert.Equal(TimeSpan.FromMilliseconds(4500), timeout);
        var target = new RecordingTarget();
        h.Wheel.Register(target, DeadlineKind.KeepAlive, timeout);

        h.RunUntil((4.5 * Sec) - h.Unit);
        Assert.False(target.Expired); // K*3/2 in integer seconds would have expired at 4 s

        h.RunUntil((4.5 * Sec) + h.Tick);
        Assert.True(target.Expired);
    }

    [Fact]
    public void Longest_keep_alive_survives_many_revolutions_and_expires_on_time()
    {
        // K = 65535: 98302.5 s, 983025 ticks, 240 revolutions of the default 4096-slot wheel.
        using var h = new WheelHarness();
        var timeout = KeepAlivePolicy.KeepAliveTimeout(65535, 1.5);
        Assert.Equal(TimeSpan.FromSeconds(98302.5), timeout);
        var target = new RecordingTarget();
        h.Wheel.Register(target, DeadlineKind.KeepAlive, timeout);

        for (var t = 60 * Sec; t < timeout - (10 * Sec); t += 60 * Sec)
        {
            h.JumpTo(t); // within one revolution: every slot on the way is visited
        }

        Assert.False(target.Expired);
        h.RunUntil(timeout - h.Unit);
        Assert.False(target.Expired);
        h.RunUntil(timeout + h.Tick);
        Assert.InRange(Assert.Single(target.Expiries).Elapsed, timeout, timeout + h.Tick);
    }

    [Fact]
    public void Deadlines_spanning_many_revolutions_of_a_small_wheel_keep_their_order()
    {
        using var h = new WheelHarness(slotCount: 8); // one revolution = 0.8 s
        var targets = new[] { 1.5, 4.5, 7.3, 30 }.Select(s => (Seconds: s, Target: new RecordingTarget())).ToArray();
        foreach (var (seconds, target) in targets)
        {
            h.Wheel.Register(target, DeadlineKind.KeepAlive, seconds * Sec);
        }

        foreach (var (seconds, target) in targets)
        {
            h.RunUntil((seconds * Sec) - h.Unit);
            Assert.False(target.Expired);
            h.RunUntil((seconds * Sec) + h.Tick);
            Assert.True(target.Expired);
        }
    }

    [Fact]
    public void Catching_up_more_than_a_revolution_expires_what_is_due_and_keeps_the_rest()
    {
        using var h = new WheelHarness(slotCount: 16); // one revolution = 1.6 s
        var shortOne = new RecordingTarget();
        var longOne = new RecordingTarget();
        h.Wheel.Register(shortOne, DeadlineKind.KeepAlive, 2 * Sec);
        h.Wheel.Register(longOne, DeadlineKind.KeepAlive, 20 * Sec);

        h.JumpTo(10 * Sec);

        Assert.True(shortOne.Expired);
        Assert.False(longOne.Expired);
        h.RunUntil((20 * Sec) - h.Unit);
        Assert.False(longOne.Expired);
        h.RunUntil((20 * Sec) + h.Tick);
        Assert.True(longOne.Expired);
    }

    [Fact]
    public void Many_entries_in_one_slot_expire_together_except_the_active_ones()
    {
        using var h = new WheelHarness();
        var entries = Enumerable.Range(0, 1000)
            .Select(_ => new RecordingTarget())
            .Select(t => (Target: t, Deadline: h.Wheel.Register(t, DeadlineKind.KeepAlive, 15 * Sec)))
            .ToArray();
        h.RunUntil(5 * Sec);
        for (int i = 0; i < entries.Length; i += 2)
        {
            entries[i].Deadline.Touch();
        }

        Assert.Equal(500, h.RunUntil((15 * Sec) + h.Tick));
        Assert.All(entries, e => Assert.Equal(e.Deadline.LastActivityTimestamp == h.Start, e.Target.Expired));
        Assert.Equal(500, h.Wheel.Count);

        Assert.Equal(500, h.RunUntil((20 * Sec) + h.Tick));
        Assert.Equal(0, h.Wheel.Count);
    }

    [Fact]
    public void Keep_alive_zero_never_expires()
    {
        using var h = new WheelHarness();
        var target = new RecordingTarget();
        var deadline = h.Wheel.Register(target, DeadlineKind.Connect, 10 * Sec);
        Assert.True(h.Wheel.Rearm(deadline, DeadlineKind.KeepAlive, TimeSpan.Zero));
        var registeredZero = h.Wheel.Register(new RecordingTarget(), DeadlineKind.KeepAlive, TimeSpan.Zero);

        h.RunUntil(30 * Sec);
        h.JumpTo(TimeSpan.FromDays(30));

        Assert.False(target.Expired);
        Assert.Equal(2, h.Wheel.Count);
        Assert.Equal(TimeSpan.Zero, registeredZero.Timeout);
    }

    [Fact]
    public void Touch_does_not_extend_the_connect_timeout()
    {
        using var h = new WheelHarness();
        var target = new RecordingTarget();
        var deadline = h.Wheel.Register(target, DeadlineKind.Connect, 10 * Sec);

        for (int s = 1; s < 10; s++)
        {
            h.RunUntil(s * Sec);
            deadline.Touch();
        }

        h.RunUntil((10 * Sec) - h.Unit);
        Assert.False(target.Expired);
        h.RunUntil((10 * Sec) + h.Tick);
        var expiry = Assert.Single(target.Expiries);
        Assert.Equal(DeadlineKind.Connect, expiry.Kind);
        Assert.Equal(10 * Sec, expiry.Timeout);
        Assert.InRange(expiry.Elapsed, 10 * Sec, (10 * Sec) + h.Tick);
    }

    [Fact]
    public void Rearm_from_connect_to_keep_alive_counts_from_the_rearm()
    {
        using var h = new WheelHarness();
        var target = new RecordingTarget();
        var deadline = h.Wheel.Register(target, DeadlineKind.Connect, 10 * Sec);

        h.RunUntil(8 * Sec);
        deadline.Touch(); // the CONNECT packet
        Assert.True(h.Wheel.Rearm(deadline, DeadlineKind.KeepAlive, 15 * Sec));
        Assert.Equal(DeadlineKind.KeepAlive, deadline.Kind);

        h.RunUntil((23 * Sec) - h.Unit);
        Assert.False(target.Expired);
        h.RunUntil((23 * Sec) + h.Tick);
        var expiry = Assert.Single(target.Expiries);
        Assert.Equal(DeadlineKind.KeepAlive, expiry.Kind);
        Assert.Equal(15 * Sec, expiry.Timeout);
    }

    [Fact]
    public void Rearm_to_a_shorter_timeout_takes_effect_immediately()
    {
        using var h = new WheelHarness();
        var target = new RecordingTarget();
        var deadline = h.Wheel.Register(target, DeadlineKind.KeepAlive, 1000 * Sec);

        h.RunUntil(1 * Sec);
        h.Wheel.Rearm(deadline, DeadlineKind.KeepAlive, 2 * Sec);

        h.RunUntil((3 * Sec) - h.Unit);
        Assert.False(target.Expired);
        h.RunUntil((3 * Sec) + h.Tick);
        Assert.True(target.Expired);
    }

    [Fact]
    public void Removed_deadline_never_expires()
    {
        using var h = new WheelHarness();
        var target = new RecordingTarget();
        var deadline = h.Wheel.Register(target, DeadlineKind.KeepAlive, 15 * Sec);

        h.RunUntil(5 * Sec);
        Assert.True(h.Wheel.Remove(deadline));
        Assert.False(h.Wheel.Remove(deadline));
        h.RunUntil(100 * Sec);

        Assert.False(target.Expired);
        Assert.Equal(0, h.Wheel.Count);
        Assert.False(h.Wheel.Rearm(deadline, DeadlineKind.KeepAlive, 15 * Sec));
    }

    [Fact]
    public void Remove_cancels_an_expiry_collected_but_not_yet_delivered()
    {
        var dispatcher = new HeldDispatcher();
        using var h = new WheelHarness(dispatcher: dispatcher);
        var removed = new RecordingTarget();
        var kept = new RecordingTarget();
        var removedDeadline = h.Wheel.Register(removed, DeadlineKind.KeepAlive, 15 * Sec);
        h.Wheel.Register(kept, DeadlineKind.KeepAlive, 15 * Sec);

        Assert.Equal(2, h.RunUntil((15 * Sec) + h.Tick));
        Assert.True(h.Wheel.Remove(removedDeadline));
        dispatcher.RunAll();

        Assert.False(removed.Expired);
        Assert.True(kept.Expired);
        Assert.Equal(0, h.Wheel.Count);
    }

    [Fact]
    public void Remove_after_delivery_reports_that_it_was_too_late()
    {
        using var h = new WheelHarness();
        var target = new RecordingTarget();
        var deadline = h.Wheel.Register(target, DeadlineKind.KeepAlive, 15 * Sec);
        h.RunUntil((15 * Sec) + h.Tick);

        Assert.True(target.Expired);
        Assert.False(h.Wheel.Remove(deadline));
        Assert.False(h.Wheel.Rearm(deadline, DeadlineKind.KeepAlive, 15 * Sec));
    }

    [Fact]
    public void Rearm_cancels_a_pending_expiry_and_the_new_deadline_holds()
    {
        var dispatcher = new HeldDispatcher();
        using var h = new WheelHarness(dispatcher: dispatcher);
        var target = new RecordingTarget();
        var deadline = h.Wheel.Register(target, DeadlineKind.Connect, 10 * Sec);

        h.RunUntil((10 * Sec) + h.Tick);
        Assert.True(h.Wheel.Rearm(deadline, DeadlineKind.KeepAlive, 15 * Sec)); // CONNECT accepted just in time
        dispatcher.RunAll();
        Assert.False(target.Expired);

        h.RunUntil((10.1 + 15) * Sec - h.Unit);
        dispatcher.RunAll();
        Assert.False(target.Expired);
        h.RunUntil(((10.1 + 15) * Sec) + h.Tick);
        dispatcher.RunAll();
        Assert.Equal(DeadlineKind.KeepAlive, Assert.Single(target.Expiries).Kind);
    }

    [Fact]
    public void Unread_input_defers_expiry_one_tick_at_a_time()
    {
        using var h = new WheelHarness();
        var target = new RecordingTarget { HasUnreadInput = true };
        var deadline = h.Wheel.Register(target, DeadlineKind.KeepAlive, 15 * Sec);

        h.RunUntil((15 * Sec) + (5 * h.Tick));
        Assert.False(target.Expired);
        Assert.InRange(target.HasUnreadInputQueries, 5, 6); // once per tick past the deadline, not more

        // The read loop catches up: the packet it reads refreshes the deadline.
        target.HasUnreadInput = false;
        deadline.Touch();
        h.RunUntil(20 * Sec);
        Assert.False(target.Expired);

        // Nothing unread any more and silent again: expires at the new deadline.
        h.RunUntil(((15.5 + 15) * Sec) - h.Unit);
        Assert.False(target.Expired);
        h.RunUntil(((15.5 + 15) * Sec) + h.Tick);
        Assert.True(target.Expired);
    }

    [Fact]
    public void Input_that_stays_unread_for_another_whole_timeout_no_longer_defers()
    {
        using var h = new WheelHarness();
        var target = new RecordingTarget { HasUnreadInput = true };
        h.Wheel.Register(target, DeadlineKind.KeepAlive, 15 * Sec);

        h.RunUntil((30 * Sec) - h.Unit);
        Assert.False(target.Expired);
        h.RunUntil((30 * Sec) + h.Tick);
        Assert.True(target.Expired);
    }

    [Fact]
    public void After_a_stall_clients_with_unread_input_survive_and_silent_ones_expire()
    {
        using var h = new WheelHarness();
        var lags = new List<TimeSpan>();
        h.Wheel.TickLagMeasured += lags.Add;
        var talking = new RecordingTarget();
        var silent = new RecordingTarget();
        var talkingDeadline = h.Wheel.Register(talking, DeadlineKind.KeepAlive, 15 * Sec);
        h.Wheel.Register(silent, DeadlineKind.KeepAlive, 15 * Sec);
        h.RunUntil(10 * Sec);

        // The broker freezes for 20 s; the talking client's PINGREQs sit in its socket buffer meanwhile.
        talking.HasUnreadInput = true;
        h.JumpTo(30 * Sec);

        Assert.Equal(20 * Sec, lags[^1] + h.Tick); // the oldest tick processed was due at 10.1 s
        Assert.True(lags[^1] > h.Tick);
        Assert.True(silent.Expired);
        Assert.False(talking.Expired);

        talking.HasUnreadInput = false;
        talkingDeadline.Touch(); // the read loop runs again
        h.RunUntil(40 * Sec);
        Assert.False(talking.Expired);
    }

    [Fact]
    public void A_packet_read_while_the_wheel_looks_for_unread_input_saves_the_client()
    {
        using var h = new WheelHarness();
        var talking = new RecordingTarget();
        var deadline = h.Wheel.Register(talking, DeadlineKind.KeepAlive, 3 * Sec);
        h.RunUntil(1 * Sec);

        // After a stall the read loop and the wheel resume together: between the wheel's first look at the deadline
        // and its unread-input check, the read loop takes the waiting PINGREQ (the kernel is empty again) and touches.
        talking.WhenAskedForUnreadInput = () =>
        {
            deadline.Touch();
            talking.WhenAskedForUnreadInput = null;
        };
        h.JumpTo(5 * Sec);

        Assert.Equal(1, talking.HasUnreadInputQueries);
        Assert.False(talking.Expired);
        h.RunUntil((8 * Sec) - h.Tick);
        Assert.False(talking.Expired);
        h.RunUntil((8 * Sec) + h.Tick);
        Assert.True(talking.Expired);
    }

    [Fact]
    public void Tick_lag_is_measured_on_every_advance_that_processes_a_tick()
    {
        using var h = new WheelHarness();
        var lags = new List<TimeSpan>();
        h.Wheel.TickLagMeasured += lags.Add;

        h.RunUntil(1 * Sec); // on time: every tick processed exactly at its boundary
        Assert.Equal(10, lags.Count);
        Assert.All(lags, lag => Assert.Equal(TimeSpan.Zero, lag));

        h.Time.Advance(TimeSpan.FromMilliseconds(30));
        Assert.Equal(0, h.Wheel.Advance()); // no tick due yet: nothing measured
        Assert.Equal(10, lags.Count);

        h.JumpTo(TimeSpan.FromMilliseconds(1350)); // tick 11 (1.1 s) processed 250 ms late
        Assert.Equal(TimeSpan.FromMilliseconds(250), lags[^1]);
        Assert.Equal(TimeSpan.FromMilliseconds(250), h.Wheel.LastTickLag);
    }

    [Fact]
    public void Expiries_are_delivered_in_bounded_batches()
    {
        var dispatcher = new HeldDispatcher();
        using var h = new WheelHarness(dispatcher: dispatcher, batchSize: 256);
        var targets = Enumerable.Range(0, 1000).Select(_ => new RecordingTarget()).ToArray();
        foreach (var target in targets)
        {
            h.Wheel.Register(target, DeadlineKind.KeepAlive, 15 * Sec);
        }

        Assert.Equal(1000, h.RunUntil((15 * Sec) + h.Tick));
        Assert.Equal([256, 256, 256, 232], dispatcher.BatchSizes);
        Assert.DoesNotContain(targets, t => t.Expired); // nothing ran on the wheel's thread

        dispatcher.RunAll();
        Assert.All(targets, t => Assert.Single(t.Expiries));
        Assert.Equal(0, h.Wheel.Count);
    }

    [Fact]
    public void A_throwing_target_is_reported_and_the_rest_of_the_batch_is_delivered()
    {
        using var h = new WheelHarness();
        var failures = new List<Exception>();
        h.Wheel.ExpiryCallbackFailed += failures.Add;
        var throwing = new RecordingTarget { ThrowOnExpiry = true };
        var others = Enumerable.Range(0, 3).Select(_ => new RecordingTarget()).ToArray();
        h.Wheel.Register(throwing, DeadlineKind.KeepAlive, 15 * Sec);
        foreach (var target in others)
        {
            h.Wheel.Register(target, DeadlineKind.KeepAlive, 15 * Sec);
        }

        h.RunUntil((15 * Sec) + h.Tick);

        Assert.IsType<InvalidOperationException>(Assert.Single(failures));
        Assert.All(others, t => Assert.True(t.Expired));
    }

    [Fact]
    public void Count_follows_register_remove_and_expiry()
    {
        using var h = new WheelHarness();
        var a = h.Wheel.Register(new RecordingTarget(), DeadlineKind.KeepAlive, 15 * Sec);
        h.Wheel.Register(new RecordingTarget(), DeadlineKind.KeepAlive, 5 * Sec);
        h.Wheel.Register(new RecordingTarget(), DeadlineKind.KeepAlive, TimeSpan.Zero);
        Assert.Equal(3, h.Wheel.Count);

        h.Wheel.Remove(a);
        Assert.Equal(2, h.Wheel.Count);
        h.RunUntil((5 * Sec) + h.Tick);
        Assert.Equal(1, h.Wheel.Count);
    }

    [Fact]
    public void Arguments_are_checked()
    {
        using var h = new WheelHarness();
        using var other = new WheelHarness();
        var foreign = other.Wheel.Register(new RecordingTarget(), DeadlineKind.KeepAlive, Sec);

        Assert.Throws<ArgumentOutOfRangeException>(() => h.Wheel.Register(new RecordingTarget(), DeadlineKind.KeepAlive, -Sec));
        Assert.Throws<ArgumentOutOfRangeException>(() => h.Wheel.Register(new RecordingTarget(), DeadlineKind.KeepAlive, TimeSpan.MaxValue));
        Assert.Throws<ArgumentException>(() => h.Wheel.Remove(foreign));
        Assert.Throws<ArgumentOutOfRangeException>(() => new TimerWheel(h.Time, TimeSpan.Zero));
        Assert.Throws<ArgumentOutOfRangeException>(() => new TimerWheel(h.Time, h.Tick, slotCount: 1000));
    }

    [Fact]
    public void Nothing_expires_after_dispose()
    {
        var dispatcher = new HeldDispatcher();
        var h = new WheelHarness(dispatcher: dispatcher);
        var target = new RecordingTarget();
        h.Wheel.Register(target, DeadlineKind.KeepAlive, 15 * Sec);
        h.RunUntil((15 * Sec) + h.Tick);

        h.Dispose();
        dispatcher.RunAll();

        Assert.False(target.Expired);
        Assert.Equal(0, h.Wheel.Advance());
        Assert.Throws<ObjectDisposedException>(() => h.Wheel.Register(target, DeadlineKind.KeepAlive, Sec));
    }

    [Fact]
    public async Task Concurrent_register_and_remove_never_deliver_a_removed_deadline()
    {
        using var h = new WheelHarness(tickMilliseconds: 10);
        using var stop = new CancellationTokenSource();
        var wronglyExpired = 0;

        // Each worker registers short deadlines and removes half of them; the wheel keeps ticking meanwhile.
        var workers = Enumerable.Range(0, 2).Select(_ => Task.Run(() =>
        {
            var removed = new List<RecordingTarget>();
            for (int i = 0; i < 5000; i++)
            {
                var target = new RecordingTarget();
                var deadline = h.Wheel.Register(target, DeadlineKind.KeepAlive, TimeSpan.FromMilliseconds(10 + (i % 50)));
                deadline.Touch();
                if (i % 2 == 0 && h.Wheel.Remove(deadline))
                {
                    removed.Add(target);
                }
            }

            return removed;
        }, TestContext.Current.CancellationToken)).ToArray();

        var ticker = Task.Run(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                h.Time.Advance(TimeSpan.FromMilliseconds(5));
                h.Wheel.Advance();
            }
        }, TestContext.Current.CancellationToken);

        var removedTargets = (await Task.WhenAll(workers).WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken)).SelectMany(r => r);
        h.Time.Advance(TimeSpan.FromSeconds(10));
        await stop.CancelAsync();
        await ticker.WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);
        h.Wheel.Advance();

        foreach (var target in removedTargets)
        {
            if (target.Expired)
            {
                wronglyExpired++;
            }
        }

        Assert.Equal(0, wronglyExpired);
        Assert.Equal(0, h.Wheel.Count);
    }
}
