using Broker.Transport;
using Conformance.Infrastructure;
using Xunit;

namespace Broker.Tests.Transport;

/// <summary>
/// The probe over a real loopback pair: it measures while there is traffic or its observer asks, stops by itself
/// when neither, and tells its observer when it stops. (Whether the measured lag reaches the gate's thresholds is
/// the gate's business: EngineOverloadGateTests.)
/// </summary>
public sealed class SocketEngineLagProbeTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task Traffic_starts_measuring_and_a_quiet_engine_answers_quickly()
    {
        var observer = new RecordingObserver();
        using var probe = new SocketEngineLagProbe(TimeSpan.FromMilliseconds(5), observer);
        Assert.True(probe.Start());

        probe.NoteTraffic();

        await WaitUntilAsync(() => observer.Measured.Count > 0, "no probe was answered after traffic");
        // Nothing else runs on this engine: the answer comes within a scheduling delay, not a timer period.
        Assert.True(observer.Measured[0] < TimeSpan.FromSeconds(1), $"lag {observer.Measured[0]}");
    }

    [Fact]
    public async Task Without_traffic_the_timer_stops_and_an_observer_that_still_holds_clients_keeps_it_going()
    {
        var observer = new RecordingObserver();
        using var probe = new SocketEngineLagProbe(TimeSpan.FromMilliseconds(5), observer);
        Assert.True(probe.Start());
        probe.NoteTraffic();
        await WaitUntilAsync(() => observer.Measured.Count > 0, "no probe was answered after traffic");

        // No more traffic: after at most a couple of periods the probe stops writing.
        await Task.Delay(100, TestContext.Current.CancellationToken);
        int stopped = observer.Measured.Count;
        await Task.Delay(200, TestContext.Current.CancellationToken);
        Assert.Equal(stopped, observer.Measured.Count);

        // Clients held: the observer needs to learn when the engine caught up even if nobody publishes.
        observer.NeedsProbes = true;
        probe.NoteTraffic();
        await Task.Delay(200, TestContext.Current.CancellationToken);
        int whileNeeded = observer.Measured.Count;
        await WaitUntilAsync(() => observer.Measured.Count > whileNeeded + 3, "the probe stopped although its observer still needed it");
    }

    [Fact]
    public void Disposing_tells_the_observer_to_let_everyone_go()
    {
        var observer = new RecordingObserver();
        var probe = new SocketEngineLagProbe(TimeSpan.FromMilliseconds(5), observer);
        Assert.True(probe.Start());
        probe.Dispose();
        Assert.Equal(1, observer.Stopped);
        probe.NoteTraffic();
        Assert.Equal(1, observer.Stopped);
    }

    private static Task WaitUntilAsync(Func<bool> condition, string message) => Eventually.TrueAsync(condition, Timeout, message);

    private sealed class RecordingObserver : ISocketEngineLagObserver
    {
        private readonly List<TimeSpan> _measured = [];

        public List<TimeSpan> Measured
        {
            get
            {
                lock (_measured)
                {
                    return [.. _measured];
                }
            }
        }

        public int Stopped { get; private set; }

        public bool NeedsProbes { get; set; }

        public void OnLagMeasured(TimeSpan lag)
        {
            lock (_measured)
            {
                _measured.Add(lag);
            }
        }

        public void OnProbeUnanswered(TimeSpan age)
        {
        }

        public void OnStopped() => Stopped++;
    }
}
