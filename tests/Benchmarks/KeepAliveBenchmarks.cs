using BenchmarkDotNet.Attributes;
using Broker.Connections.KeepAlive;

namespace Broker.Benchmarks;

/// <summary>The keep-alive hot path: what the read loop pays per packet (one timestamp write).</summary>
[MemoryDiagnoser]
public class KeepAliveBenchmarks
{
    private TimerWheel _wheel = null!;
    private KeepAliveDeadline _deadline = null!;

    [GlobalSetup]
    public void Setup()
    {
        _wheel = new TimerWheel(TimeProvider.System, TimeSpan.FromMilliseconds(100));
        _deadline = _wheel.Register(new IdleTarget(), DeadlineKind.KeepAlive, TimeSpan.FromSeconds(90));
    }

    [GlobalCleanup]
    public void Cleanup() => _wheel.Dispose();

    [Benchmark]
    public void TouchDeadline() => _deadline.Touch();

    private sealed class IdleTarget : IKeepAliveTarget
    {
        public bool HasUnreadInput => false;

        public void OnDeadlineExpired(in DeadlineExpiry expiry)
        {
        }
    }
}
