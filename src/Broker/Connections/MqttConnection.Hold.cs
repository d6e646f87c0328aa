namespace Broker.Connections;

/// <summary>Why the broker stopped reading a client's socket; more than one may hold at once.</summary>
[Flags]
internal enum HoldReason
{
    None = 0,
    /// <summary>Messages this client publishes pile up at a subscriber that is reading: TCP slows the publisher.</summary>
    BackPressure = 1,
    /// <summary>A credential check runs off the socket thread; the client's next packets wait for its verdict.</summary>
    Authentication = 2,
    /// <summary>The persistent store is behind: what the client publishes could not be made durable in time.</summary>
    Store = 4,
    /// <summary>The socket engine is behind (see <see cref="EngineOverloadGate"/>): publishers wait for it to catch up.</summary>
    EngineBehind = 8,
}

/// <summary>
/// Holding a client back: the receive path stops after the packet it is handling, leaves the rest of the input
/// buffered, and parks (nothing is posted on the socket, so TCP flow control slows the client). Releasing the
/// last hold continues it on the thread pool. A held client is throttled, not silent: the keep-alive wheel
/// does not expire it, and the release counts as activity.
/// </summary>
internal sealed partial class MqttConnection
{
    private int _holdReasons;
    // 1 while the receive path is parked by a hold (nothing posted, nobody reading).
    private int _parked;
    private long _heldSince;
    // Stream transports only: completed when a parked stream read loop may go on.
    private TaskCompletionSource? _streamResume;

    private bool IsReceivePaused => Volatile.Read(ref _holdReasons) != 0;

    // A hold, or a packet that stopped the loop (a CONNECT awaiting its verdict): the rest of the input waits.
    private bool MustStopReading => IsReceivePaused || _stoppedForHold;

    /// <inheritdoc cref="KeepAlive.IKeepAliveTarget.IsHeldBack"/>
    public bool IsHeldBack => IsReceivePaused;

    /// <summary>Stops reading this client after the packet being handled (callable from any thread).</summary>
    internal void Hold(HoldReason reason)
    {
        int before = Interlocked.Or(ref _holdReasons, (int)reason);
        if (before == 0)
        {
            Volatile.Write(ref _heldSince, _services.Time.GetTimestamp());
            _services.Metrics.ClientThrottled(+1);
            // A held client cannot acknowledge what it is sent, so its own queue may not drain: nobody may wait for
            // it, or two clients publishing to each other could wait for each other for ever.
            _session?.ReleaseWaiters();
        }
    }

    /// <summary>Lifts one hold; when none is left, reading goes on (callable from any thread).</summary>
    internal void Release(HoldReason reason)
    {
        int before = Interlocked.And(ref _holdReasons, ~(int)reason);
        if ((before & (int)reason) == 0)
        {
            return;
        }
        if (before != (int)reason)
        {
            return;
        }
        _services.Metrics.ClientThrottled(-1);
        _services.Metrics.ThrottledFor(_services.Time.GetElapsedTime(Volatile.Read(ref _heldSince)));
        // The client kept sending while we did not read: that is activity, not silence.
        _deadline.Touch();
        if (Interlocked.CompareExchange(ref _parked, 0, 1) != 1)
        {
            // Not parked yet (the receive path is still inside its batch): it sees the hold lifted and goes on.
            return;
        }
        if (_stream is not null)
        {
            Volatile.Read(ref _streamResume)?.TrySetResult();
        }
        else
        {
            ThreadPool.UnsafeQueueUserWorkItem(static c => c.ContinueReceiving(), this, preferLocal: false);
        }
    }

    /// <summary>
    /// The receive path stops while held. False when the last hold was lifted meanwhile: then the caller goes on
    /// itself (the releaser saw nothing parked and left it to us).
    /// </summary>
    private bool TryPark()
    {
        Volatile.Write(ref _parked, 1);
        if (!IsReceivePaused && Interlocked.CompareExchange(ref _parked, 0, 1) == 1)
        {
            return false;
        }
        return true;
    }

    /// <summary>A parked socket receive path goes on (thread pool): buffered packets first, then the socket.</summary>
    private void ContinueReceiving()
    {
        if (IsClosed)
        {
            ReleaseInput();
            return;
        }
        bool wasConnected = _connected;
        var outcome = ReadOutcome.Stopped;
        Volatile.Write(ref _receiving, true);
        try
        {
            outcome = ContinueAfterPause();
        }
        finally
        {
            Volatile.Write(ref _receiving, false);
            EndReadBatch(connectedInBatch: !wasConnected && _connected && outcome == ReadOutcome.WaitForData);
            if (outcome == ReadOutcome.Stopped || _inputStart == _inputEnd)
            {
                ReleaseInput();
            }
        }
        if (outcome == ReadOutcome.WaitForData)
        {
            ReceiveLoop();
        }
    }

    /// <summary>Stream transports: waits while held, then handles what was buffered. False when the connection ended.</summary>
    private async ValueTask<bool> WaitWhileHeldAsync()
    {
        while (MustStopReading)
        {
            var resume = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            Volatile.Write(ref _streamResume, resume);
            if (TryPark())
            {
                await resume.Task.ConfigureAwait(false);
            }
            Volatile.Write(ref _streamResume, null);
            if (IsClosed)
            {
                return false;
            }
            bool handled;
            Volatile.Write(ref _receiving, true);
            try
            {
                handled = HandleBuffered();
            }
            finally
            {
                Volatile.Write(ref _receiving, false);
                EndReadBatch();
            }
            if (!handled && !_closeGracefully)
            {
                return false;
            }
        }
        return true;
    }
}
