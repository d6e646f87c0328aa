using Broker.Diagnostics;
using Broker.Transport;
using Microsoft.Extensions.Logging;

namespace Broker.Connections;

/// <summary>
/// Back-pressure for the broker as a whole. While the socket engine is behind (a readable socket waited longer than
/// <c>Broker:Limits:EngineLagMilliseconds</c> for its turn), a client whose PUBLISH was just handled stops being read
/// until the engine has caught up (a probe answered within a quarter of that): publishers feed the engine, and each
/// one left unread shortens every other client's wait, so an idle client's PINGREQ is answered in time and
/// subscribers keep receiving. Clients that only ping, subscribe or acknowledge are never held for it. Once caught
/// up, the held are let go a share at a time (a quarter, at least <see cref="MinimumReleaseShare"/>, per quick
/// answer): all at once, they would flood the engine with what they sent meanwhile. See docs/overload.md.
/// </summary>
internal sealed class EngineOverloadGate : ISocketEngineLagObserver, IDisposable
{
    private const int MinimumReleaseShare = 8;
    private static readonly TimeSpan LogInterval = TimeSpan.FromSeconds(10);

    private readonly TimeSpan _behindAfter;
    private readonly TimeSpan _caughtUpBelow;
    private readonly BrokerMetrics _metrics;
    private readonly ILogger _logger;
    private readonly SocketEngineLagProbe? _probe;
    // Guards the transitions of _behind and the held list together: a release cannot pass a connection being held.
    private readonly Lock _lock = new();
    private readonly List<MqttConnection> _held = [];
    private volatile bool _behind;
    private int _heldCount;
    private long _episodes;
    private long _lastLog;

    /// <param name="behindAfter">The lag past which publishers are held; zero turns the gate off.</param>
    /// <param name="measure">False for a gate driven by hand (tests): no probe of its own.</param>
    public EngineOverloadGate(TimeSpan behindAfter, BrokerMetrics metrics, ILogger logger, bool measure = true)
    {
        _behindAfter = behindAfter;
        _caughtUpBelow = behindAfter / 4;
        _metrics = metrics;
        _logger = logger;
        if (measure && behindAfter > TimeSpan.Zero)
        {
            _probe = new SocketEngineLagProbe(TimeSpan.FromTicks(Math.Max(TimeSpan.TicksPerMillisecond, behindAfter.Ticks / 2)), this);
        }
    }

    /// <summary>True while publishers are being held for the engine.</summary>
    public bool IsBehind => _behind;

    /// <summary>Clients held for the engine right now.</summary>
    public int HeldCount => Volatile.Read(ref _heldCount);

    /// <summary>Starts measuring; a broker that cannot open the loopback pair runs without this protection (logged).</summary>
    public void Start()
    {
        if (_probe is not null && !_probe.Start())
        {
            BrokerLog.EngineLagProbeUnavailable(_logger);
        }
    }

    /// <summary>A PUBLISH was handled: probes ride on it (a clock read when there is nothing to do).</summary>
    public void NotePublish() => _probe?.NoteTraffic();

    /// <summary>Holds <paramref name="connection"/> until the engine catches up; false (nothing held) when it is not behind.</summary>
    public bool TryHold(MqttConnection connection)
    {
        lock (_lock)
        {
            if (!_behind)
            {
                return false;
            }
            _held.Add(connection);
            Volatile.Write(ref _heldCount, _held.Count);
            connection.Hold(HoldReason.EngineBehind);
        }
        return true;
    }

    public void OnLagMeasured(TimeSpan lag)
    {
        _metrics.SocketEngineLag(lag);
        if (_behindAfter <= TimeSpan.Zero)
        {
            return;
        }
        if (lag >= _behindAfter)
        {
            EnterBehind(lag);
        }
        else if (lag < _caughtUpBelow)
        {
            ReleaseShare();
        }
    }

    public void OnProbeUnanswered(TimeSpan age)
    {
        if (_behindAfter > TimeSpan.Zero && age >= _behindAfter)
        {
            EnterBehind(age);
        }
    }

    public void OnStopped() => Release(int.MaxValue);

    public bool NeedsProbes => _behind || Volatile.Read(ref _heldCount) != 0;


    private void EnterBehind(TimeSpan lag)
    {
        lock (_lock)
        {
            if (_behind)
            {
                return;
            }
            _behind = true;
        }
        _metrics.SocketEngineBehind();
        long episodes = Interlocked.Increment(ref _episodes);
        long now = Environment.TickCount64;
        if (_lastLog == 0 || now - _lastLog >= LogInterval.TotalMilliseconds)
        {
            _lastLog = now;
            BrokerLog.EngineBehind(_logger, lag.TotalMilliseconds, episodes);
        }
    }

    private void ReleaseShare()
    {
        int count = Volatile.Read(ref _heldCount);
        if (_behind || count != 0)
        {
            Release(Math.Max(MinimumReleaseShare, count / 4));
        }
    }

    /// <summary>No longer behind: lets go of the first <paramref name="count"/> held clients, oldest first.</summary>
    private void Release(int count)
    {
        MqttConnection[] released;
        lock (_lock)
        {
            _behind = false;
            count = Math.Min(count, _held.Count);
            if (count == 0)
            {
                return;
            }
            released = _held.GetRange(0, count).ToArray();
            _held.RemoveRange(0, count);
            Volatile.Write(ref _heldCount, _held.Count);
        }
        foreach (var connection in released)
        {
            connection.Release(HoldReason.EngineBehind);
        }
    }

    public void Dispose()
    {
        _probe?.Dispose();
        OnStopped();
    }
}
