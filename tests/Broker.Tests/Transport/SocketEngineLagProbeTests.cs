using Broker.Transport;
using Conformance.Infrastructure;
using Xunit;

namespace Broker.Tests.Transport;

/// <summary>
/// The probe over a real loopback pair: it measures on traffic, and by itself only while its observer holds clients,
/// and tells its observer when it stops. (Whether the measured lag reaches the gate's thresholds is
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
    public async Task Without_traffic_nothing_is_probed_unless_the_observer_holds_clients()
    {
        var observer = new RecordingObserver();
        using var probe = new SocketEngineLagProbe(TimeSpan.FromMilliseconds(5), observer);
        Assert.True(probe.Start());
        probe.NoteTraffic();
        await WaitUntilAsync(() => observer.Measured.Count > 0, "no probe was answered after traffic");

        // Probes ride on traffic: none comes without it.
        await Task.Delay(200, TestContext.Current.CancellationToken);
        Assert.Single(observer.Measured);

        // Clients held: the observer must learn when the engine caught up even if nobody publishes.
        observer.NeedsProbes = true;
        probe.NoteTraffic();
        await WaitUntilAsync(() => observer.Measured.Count > 5, "the probe did not go on by itself while its observer held clients");

        observer.NeedsProbes = false;
        await Task.Delay(100, TestContext.Current.CancellationToken);
        int stopped = observer.Measured.Count;
        await Task.Delay(200, TestContext.Current.CancellationToken);
        Assert.Equal(stopped, observer.Measured.Count);
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
