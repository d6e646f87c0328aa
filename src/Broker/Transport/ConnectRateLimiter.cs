namespace Broker.Transport;

/// <summary>
/// A token bucket for accepts (Broker:Limits:ConnectRate / ConnectBurst): past the rate the listener stops accepting
/// until the next token, and the listen backlog holds the clients meanwhile, so a reconnect storm is spread over time
/// instead of failing clients. Used by the accept loop only (one thread at a time).
/// </summary>
internal sealed class ConnectRateLimiter
{
    private readonly TimeProvider _time;
    private readonly double _ratePerSecond;
    private readonly double _burst;
    private double _tokens;
    private long _refilledAt;

    public ConnectRateLimiter(int ratePerSecond, int burst, TimeProvider time)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(ratePerSecond);
        _time = time;
        _ratePerSecond = ratePerSecond;
        _burst = burst > 0 ? burst : ratePerSecond;
        _tokens = _burst;
        _refilledAt = time.GetTimestamp();
    }

    /// <summary>Takes one token; false (and how long until the next one) when there is none.</summary>
    public bool TryTake(out TimeSpan wait)
    {
        long now = _time.GetTimestamp();
        _tokens = Math.Min(_burst, _tokens + _time.GetElapsedTime(_refilledAt, now).TotalSeconds * _ratePerSecond);
        _refilledAt = now;
        if (_tokens >= 1)
        {
            _tokens -= 1;
            wait = TimeSpan.Zero;
            return true;
        }
        wait = TimeSpan.FromSeconds((1 - _tokens) / _ratePerSecond);
        return false;
    }
}
