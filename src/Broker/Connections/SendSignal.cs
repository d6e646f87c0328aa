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

    public void Set()
    {
        lock (_gate)
        {
            if (_completed && !_waiting)
            {
                return;
            }
            if (_waiting)
            {
                _waiting = false;
                _core.SetResult(true);
            }
            else
            {
                _signaled = true;
            }
        }
    }

    /// <summary>No more signals: a waiting loop wakes with false (or true if a signal was pending).</summary>
    public void Complete()
    {
        lock (_gate)
        {
            _completed = true;
            if (_waiting)
            {
                _waiting = false;
                _core.SetResult(false);
            }
        }
    }

    bool IValueTaskSource<bool>.GetResult(short token) => _core.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource<bool>.GetStatus(short token) => _core.GetStatus(token);

    void IValueTaskSource<bool>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
        => _core.OnCompleted(continuation, state, token, flags);
}
