using Broker.Diagnostics;
using Broker.Transport;
using Microsoft.Extensions.Logging;

namespace Broker.Connections;

/// <summary>
/// Back-pressure for the broker as a whole. While the socket engine is behind (a readable socket waits longer than
/// <c>Broker:Limits:EngineLagMilliseconds</c> for its turn), a client whose PUBLISH was just handled stops being read
/// until the engine has caught up: publishers feed the engine, and each one left unread shortens every other
/// client's wait for its turn, so an idle client's PINGREQ is answered in time and subscribers keep receiving.
/// Clients that only ping, subscribe or acknowledge are never held for it. See docs/overload.md.
/// </summary>
internal sealed class EngineOverloadGate : ISocketEngineLagObserver, IDisposable
{
    private static readonly TimeSpan LogInterval = TimeSpan.FromSeconds(10);
    private const int MinimumReleaseShare = 8;

    private readonly Lock _lock = new();
    private readonly BrokerMetrics _metrics;
    private readonly ILogger _logger;
    private readonly SocketEngineLagProbe? _probe;
    private readonly List<MqttConnection> _held = [];
    private int _heldCount;
    private long _episodes;
    private long _lastLog;

    public EngineOverloadGate(int lagMilliseconds, BrokerMetrics metrics, ILogger logger)
    {
        _metrics = metrics;
        _logger = logger;
        if (lagMilliseconds > 0)
        {
            _probe = new SocketEngineLagProbe(TimeSpan.FromMilliseconds(lagMilliseconds), this);
        }
    }

    /// <summary>True while publishers are being held for the engine.</summary>
    public bool IsBehind => _probe is { IsBehind: true };

    /// <summary>Starts measuring; a broker that cannot open the loopback pair runs without this protection (logged).</summary>
    public void Start()
    {
        if (_probe is not null && !_probe.Start())
        {
            BrokerLog.EngineLagProbeUnavailable(_logger);
        }
    }

    /// <summary>A PUBLISH was handled: the engine has work, so keep measuring it.</summary>
    public void NotePublish() => _probe?.NoteTraffic();

    /// <summary>Holds <paramref name="connection"/> until the engine catches up; false (nothing held) when it is not behind.</summary>
    public bool TryHold(MqttConnection connection)
    {
        lock (_lock)
        {
            // Checked and held under the lock: the release that follows catching up cannot pass a connection by.
            if (!IsBehind)
            {
                return false;
            }
            _held.Add(connection);
            Volatile.Write(ref _heldCount, _held.Count);
            connection.Hold(HoldReason.EngineBehind);
        }
        return true;
    }

    void ISocketEngineLagObserver.OnBehind(TimeSpan lag)
    {
        _metrics.SocketEngineBehind();
        long episodes = Interlocked.Increment(ref _episodes);
        long now = Environment.TickCount64;
        long last = Volatile.Read(ref _lastLog);
        if ((last == 0 || now - last >= LogInterval.TotalMilliseconds) && Interlocked.CompareExchange(ref _lastLog, now, last) == last)
        {
            BrokerLog.EngineBehind(_logger, lag.TotalMilliseconds, episodes);
        }
    }

    void ISocketEngineLagObserver.OnStopped() => Release(all: true);

    // Caught up: the held are released a share at a time, one share per quick answer, not all at once: a whole
    // fleet of publishers let go together floods the engine again with what they sent meanwhile.
    void ISocketEngineLagObserver.OnLagMeasured(TimeSpan lag, bool caughtUp)
    {
        _metrics.SocketEngineLag(lag);
        if (caughtUp)
        {
            Release(all: false);
        }
    }

    bool ISocketEngineLagObserver.NeedsProbes => Volatile.Read(ref _heldCount) != 0;

    private void Release(bool all)
    {
        MqttConnection[] released;
        lock (_lock)
        {
            if (_held.Count == 0 || (!all && IsBehind))
            {
                return;
            }
            int count = all ? _held.Count : Math.Min(_held.Count, Math.Max(MinimumReleaseShare, _held.Count / 4));
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
    }
}
