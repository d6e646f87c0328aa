using System.Collections.Concurrent;
using Broker.Routing;

namespace Broker.Sessions;

/// <summary>
/// Publishes will messages, at once or after the 5.0 Will Delay Interval [MQTT-3.1.3-9]. A delayed will is
/// cancelled when the client connects again before it fires. Delayed wills are rare (only disconnected
/// clients that asked for a delay), so each gets a timer from the TimeProvider.
/// </summary>
internal sealed class WillPublisher : IDisposable
{
    private readonly ConcurrentDictionary<string, ITimer> _delayed = new(StringComparer.Ordinal);
    private readonly Router _router;
    private readonly TimeProvider _time;

    public WillPublisher(Router router, TimeProvider time)
    {
        _router = router;
        _time = time;
    }

    public void Publish(string clientId, ApplicationMessage will, uint delaySeconds)
    {
        if (delaySeconds == 0)
        {
            _router.Publish(will);
            return;
        }
        ITimer? timer = null;
        timer = _time.CreateTimer(_ =>
        {
            if (_delayed.TryRemove(new KeyValuePair<string, ITimer>(clientId, timer!)))
            {
                timer!.Dispose();
                _router.Publish(will);
            }
        }, null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        if (_delayed.TryRemove(clientId, out var previous))
        {
            previous.Dispose();
        }
        _delayed[clientId] = timer;
        timer.Change(TimeSpan.FromSeconds(delaySeconds), Timeout.InfiniteTimeSpan);
    }

    /// <summary>The client is back before its will fired: it is not sent.</summary>
    public void Cancel(string clientId)
    {
        if (_delayed.TryRemove(clientId, out var timer))
        {
            timer.Dispose();
        }
    }

    public void Dispose()
    {
        foreach (var timer in _delayed.Values)
        {
            timer.Dispose();
        }
        _delayed.Clear();
    }
}
