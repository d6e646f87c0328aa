using System.Threading.Tasks.Sources;

namespace Broker.Connections;

/// <summary>
/// Wakes a connection's send loop: set by whoever wrote into the output or queued a message, awaited by the
/// send loop alone. Signals coalesce (ten writes before the loop runs wake it once). One reusable value-task
/// source per connection: an idle connection waiting here holds no extra objects, unlike a Channel.
/// </summary>
internal sealed class SendSignal : IValueTaskSource<bool>
{
    private readonly object _gate = new();
    private ManualResetValueTaskSourceCore<bool> _core = new() { RunContinuationsAsynchronously = true };
    private bool _signaled;
    private bool _waiting;
    private bool _completed;

    /// <summary>True when signaled (also after completion, once, so a last drain happens); false when completed and drained.</summary>
    public ValueTask<bool> WaitAsync()
    {
        lock (_gate)
        {
            if (_signaled)
            {
                _signaled = false;
                return new ValueTask<bool>(true);
            }
            if (_completed)
            {
                return new ValueTask<bool>(false);
            }
            _core.Reset();
            _waiting = true;
            return new ValueTask<bool>(this, _core.Version);
        }
    }

    /// <summary>
    /// Wakes the send loop. <paramref name="runInline"/>: the caller is the connection's own read loop, so the send
    /// loop may run on this thread right away (PINGRESP and acks go out without a thread-pool hop); anyone else
    /// (a publisher fanning out to many subscribers) wakes it on the thread pool, never doing its sends.
    /// </summary>
    public void Set(bool runInline = false)
    {
        lock (_gate)
        {
            if (!_waiting)
            {
                if (!_completed)
                {
                    _signaled = true;
                }
                return;
            }
            _waiting = false;
            _core.RunContinuationsAsynchronously = !runInline;
        }
        // Outside the lock: an inline continuation runs the send loop, which takes the lock again to wait.
        // Only the caller that cleared _waiting completes this round, so SetResult is never called twice.
        _core.SetResult(true);
    }

    /// <summary>No more signals: a waiting loop wakes with false (or true if a signal was pending).</summary>
    public void Complete()
    {
        lock (_gate)
        {
            _completed = true;
            if (!_waiting)
            {
                return;
            }
            _waiting = false;
            _core.RunContinuationsAsynchronously = true;
        }
        _core.SetResult(false);
    }

    bool IValueTaskSource<bool>.GetResult(short token) => _core.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource<bool>.GetStatus(short token) => _core.GetStatus(token);

    void IValueTaskSource<bool>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
        => _core.OnCompleted(continuation, state, token, flags);
}
