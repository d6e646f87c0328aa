namespace Broker.Connections.KeepAlive;

/// <summary>
/// One hashed timer wheel for every connection's deadline (connect timeout, then keep-alive).
/// </summary>
/// <remarks>
/// <para>
/// Time is divided into ticks counted from the wheel's creation; tick n is due at
/// <c>origin + n * tick</c>. An entry sits in slot <c>DueTick &amp; mask</c> and stores its absolute
/// <see cref="KeepAliveDeadline.DueTick"/>, so a deadline longer than one revolution (Keep Alive 65535 s
/// is 98302.5 s) simply stays in its slot and is passed over, with one comparison, until its round comes.
/// </para>
/// <para>
/// The read path never touches the wheel: it only writes a timestamp (<see cref="KeepAliveDeadline.Touch"/>).
/// When an entry comes due the wheel recomputes its real deadline (last activity + timeout); if that is
/// still in the future the entry is moved there, otherwise it expires. An active client is therefore
/// examined about once per period, and the work per tick is proportional to the entries due in it, not to
/// the number of connections.
/// </para>
/// <para>
/// Precision: an entry is linked at the tick containing its deadline (floor) and, when examined, compared
/// with the exact current timestamp; if the deadline has not been reached it moves to the next tick. So an
/// entry never expires before its deadline and, when <see cref="Advance"/> runs every tick, at most one
/// tick after it, whatever the phase between the heartbeat and the wheel's origin.
/// </para>
/// </remarks>
internal sealed class TimerWheel : IDisposable
{
    /// <summary>4096 slots: one revolution is 409.6 s at 100 ms, so every Keep Alive up to ~270 s fits in one turn.</summary>
    public const int DefaultSlotCount = 4096;

    /// <summary>Expiries per thread-pool work item: big enough to amortise the queueing, small enough to spread.</summary>
    public const int DefaultBatchSize = 256;

    /// <summary>The longest timeout accepted: the largest interval MQTT 5.0 can express (2^32-1 s), for later session expiry.</summary>
    public static readonly TimeSpan MaxTimeout = TimeSpan.FromSeconds(uint.MaxValue);

    // A read loop gets at least this many ticks to drain input that arrived during a stall.
    private const int MinDeferralTicks = 10;

    private readonly TimeProvider _time;
    // Null when the wheel runs on TimeProvider.System (see KeepAliveDeadline.Touch).
    internal readonly TimeProvider? TouchClock;
    private readonly IExpiryDispatcher _dispatcher;
    private long _origin;
    private readonly long _tickUnits;
    private readonly KeepAliveDeadline?[] _slots;
    private readonly int _slotMask;

    // _gate guards every entry's wheel-owned fields, the slots, _processedTick and _count. Structural changes
    // (connect, CONNECT accepted, disconnect) are rare and short; Touch never takes it.
    private readonly Lock _gate = new();

    // Serialises Advance with itself (the heartbeat is the only caller in production) and owns _due.
    private readonly Lock _advanceGate = new();
    private readonly List<PendingExpiry> _due = [];

    private long _processedTick;
    private int _count;
    private long _lastTickLagTicks;
    private bool _disposed;

    public TimerWheel(
        TimeProvider time,
        TimeSpan tick,
        IExpiryDispatcher? dispatcher = null,
        int slotCount = DefaultSlotCount,
        int batchSize = DefaultBatchSize)
    {
        ArgumentNullException.ThrowIfNull(time);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(tick, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(tick, TimeSpan.FromMinutes(1));
        ArgumentOutOfRangeException.ThrowIfLessThan(slotCount, 2);
        if (!int.IsPow2(slotCount))
        {
            throw new ArgumentOutOfRangeException(nameof(slotCount), slotCount, "The slot count must be a power of two.");
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);

        _time = time;
        TouchClock = ReferenceEquals(time, TimeProvider.System) ? null : time;
        _dispatcher = dispatcher ?? ThreadPoolExpiryDispatcher.Instance;
        _tickUnits = Math.Max(1, ToTimestampUnits(tick));
        _slots = new KeepAliveDeadline?[slotCount];
        _slotMask = slotCount - 1;
        BatchSize = batchSize;
        Tick = tick;
        _origin = time.GetTimestamp();
    }

    /// <summary>
    /// Moves the tick grid to start now, if the wheel holds no deadline yet. The heartbeat calls it just before it
    /// creates its timer, so that its beats fall on the grid: otherwise the constant phase between the two (up to
    /// one tick) would be reported as lag on every beat and hide the real lateness the lag metric is for.
    /// </summary>
    public bool TryAlignToNow()
    {
        lock (_advanceGate)
        {
            lock (_gate)
            {
                if (_count != 0 || _disposed)
                {
                    return false;
                }
                _origin = _time.GetTimestamp();
                _processedTick = 0;
                return true;
            }
        }
    }

    public TimeSpan Tick { get; }

    public int BatchSize { get; }

    /// <summary>Deadlines registered and neither removed nor expired (including disarmed ones, Keep Alive 0).</summary>
    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _count;
            }
        }
    }

    /// <summary>The lag measured by the last <see cref="Advance"/> that had a tick to process.</summary>
    public TimeSpan LastTickLag => TimeSpan.FromTicks(Volatile.Read(ref _lastTickLagTicks));

    /// <summary>
    /// Raised by every <see cref="Advance"/> that processes at least one tick, with the time between the
    /// scheduled moment of the oldest tick it processed and the moment it ran. A value above <see cref="Tick"/>
    /// means the broker stalled (GC pause, SIGSTOP, starved thread pool). Attach a histogram here.
    /// </summary>
    public event Action<TimeSpan>? TickLagMeasured;

    /// <summary>Raised when <see cref="IKeepAliveTarget.OnDeadlineExpired"/> throws; the batch carries on.</summary>
    public event Action<Exception>? ExpiryCallbackFailed;

    /// <summary>Arms a new deadline. <see cref="TimeSpan.Zero"/> registers it disarmed (Keep Alive 0).</summary>
    public KeepAliveDeadline Register(IKeepAliveTarget target, DeadlineKind kind, TimeSpan timeout)
    {
        ArgumentNullException.ThrowIfNull(target);
        long units = ValidateTimeout(timeout);
        long now = _time.GetTimestamp();
        var deadline = new KeepAliveDeadline(this, target, now);
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            ArmLocked(deadline, kind, timeout, units, now);
            _count++;
        }

        return deadline;
    }

    /// <summary>
    /// Re-arms with a new kind and timeout, counted from now (e.g. connect timeout -> keep-alive when CONNECT
    /// is accepted). <see cref="TimeSpan.Zero"/> disarms (Keep Alive 0). Cancels an expiry collected but not yet
    /// delivered. Returns false, doing nothing, when the deadline was removed or its expiry already delivered.
    /// </summary>
    public bool Rearm(KeepAliveDeadline deadline, DeadlineKind kind, TimeSpan timeout)
    {
        ThrowIfForeign(deadline);
        long units = ValidateTimeout(timeout);
        long now = _time.GetTimestamp();
        lock (_gate)
        {
            if (_disposed || deadline.State is DeadlineState.Expired or DeadlineState.Removed)
            {
                return false;
            }

            UnlinkLocked(deadline);
            ArmLocked(deadline, kind, timeout, units, now);
            return true;
        }
    }

    /// <summary>
    /// Removes the deadline. Returns true when it was live: from then on its target is never told it expired,
    /// even if an expiry batch holding it has not run yet. False when already removed or already delivered.
    /// </summary>
    public bool Remove(KeepAliveDeadline deadline)
    {
        ThrowIfForeign(deadline);
        lock (_gate)
        {
            if (_disposed || deadline.State is DeadlineState.Expired or DeadlineState.Removed)
            {
                return false;
            }

            UnlinkLocked(deadline);
            deadline.State = DeadlineState.Removed;
            deadline.Version++;
            _count--;
            return true;
        }
    }

    /// <summary>
    /// Processes every tick due up to now (catching up after a stall) and dispatches the expiries in batches
    /// of at most <see cref="BatchSize"/>. Returns how many expiries were handed to the dispatcher (a Remove
    /// racing with a batch can still cancel one of them).
    /// </summary>
    public int Advance()
    {
        ExpiryBatch[] batches;
        TimeSpan lag;
        lock (_advanceGate)
        {
            long now = _time.GetTimestamp();
            long nowTick = TickAtOrBefore(now);
            long firstTick;
            lock (_gate)
            {
                if (_disposed)
                {
                    return 0;
                }

                firstTick = _processedTick + 1;
            }

            if (nowTick < firstTick)
            {
                return 0;
            }

            // Lag of the oldest tick processed now: how late the wheel is. Above one tick, the broker stalled,
            // and the read loops stalled with it: clients whose deadline fell inside the stall may have sent
            // packets that still sit unread in the socket or pipe, so their LastActivity is stale through no
            // fault of theirs. No separate branch is needed for them: Examine asks HasUnreadInput before every
            // expiry and re-arms one tick later when input is waiting, which lets the read loops run (and
            // Touch) before the wheel looks again. A client that really was silent has no unread input and
            // expires on this pass, so a stall never lets a dead client live longer than the stall itself.
            lag = _time.GetElapsedTime(_origin + (firstTick * _tickUnits), now);

            if (nowTick - firstTick + 1 >= _slots.Length)
            {
                // Behind by a whole revolution or more: every slot is due, visit each once. _processedTick
                // moves first so that an entry registered meanwhile is placed after nowTick and not lost
                // in a slot this pass has already visited.
                lock (_gate)
                {
                    _processedTick = nowTick;
                }

                for (int slot = 0; slot < _slots.Length; slot++)
                {
                    lock (_gate)
                    {
                        ProcessSlotLocked(slot, nowTick, now);
                    }
                }
            }
            else
            {
                for (long tick = firstTick; tick <= nowTick; tick++)
                {
                    // One lock hold per slot, so connects and disconnects interleave with a long catch-up.
                    lock (_gate)
                    {
                        _processedTick = tick;
                        ProcessSlotLocked((int)(tick & _slotMask), nowTick, now);
                    }
                }
            }

            Volatile.Write(ref _lastTickLagTicks, lag.Ticks);
            batches = CutBatches();
        }

        TickLagMeasured?.Invoke(lag);

        int expired = 0;
        foreach (var batch in batches)
        {
            expired += batch.Count;
            _dispatcher.Dispatch(batch);
        }

        return expired;
    }

    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            for (int slot = 0; slot < _slots.Length; slot++)
            {
                while (_slots[slot] is { } head)
                {
                    UnlinkLocked(head);
                    head.State = DeadlineState.Removed;
                }
            }

            _count = 0;
        }
    }

    /// <summary>Called by an <see cref="ExpiryBatch"/>: commits the expiries still valid, then tells their targets.</summary>
    internal void Deliver(PendingExpiry[] items)
    {
        int live = 0;
        lock (_gate)
        {
            for (int i = 0; i < items.Length; i++)
            {
                var item = items[i];
                var deadline = item.Deadline;
                if (!_disposed && deadline.State == DeadlineState.PendingExpiry && deadline.Version == item.Version)
                {
                    deadline.State = DeadlineState.Expired;
                    _count--;
                    items[live++] = item;
                }
            }
        }

        // Outside the lock: the target will typically close the connection and call Remove.
        for (int i = 0; i < live; i++)
        {
            try
            {
                items[i].Deadline.Target.OnDeadlineExpired(items[i].Expiry);
            }
            catch (Exception ex)
            {
                ExpiryCallbackFailed?.Invoke(ex);
            }
        }
    }

    internal long ToTimestampUnits(TimeSpan span)
    {
        // Rounded up so that a deadline is never earlier than asked; Int128 because ticks x frequency
        // overflows a long for long timeouts on a 1 GHz Stopwatch.
        Int128 scaled = ((Int128)span.Ticks * _time.TimestampFrequency) + (TimeSpan.TicksPerSecond - 1);
        return (long)(scaled / TimeSpan.TicksPerSecond);
    }

    private long ValidateTimeout(TimeSpan timeout)
    {
        if (timeout < TimeSpan.Zero || timeout > MaxTimeout)
        {
            throw new ArgumentOutOfRangeException(nameof(timeout), timeout, $"The timeout must be between zero and {MaxTimeout}.");
        }

        return ToTimestampUnits(timeout);
    }

    private void ThrowIfForeign(KeepAliveDeadline deadline)
    {
        ArgumentNullException.ThrowIfNull(deadline);
        if (!ReferenceEquals(deadline.Owner, this))
        {
            throw new ArgumentException("The deadline belongs to another wheel.", nameof(deadline));
        }
    }

    private long TickAtOrBefore(long timestamp) => Math.Max(0, timestamp - _origin) / _tickUnits;

    private void ArmLocked(KeepAliveDeadline deadline, DeadlineKind kind, TimeSpan timeout, long units, long now)
    {
        deadline.ArmedKind = kind;
        deadline.TimeoutUnits = units;
        deadline.ArmedAt = now;
        deadline.Deferrals = 0;
        deadline.Version++;
        if (units == 0)
        {
            deadline.State = DeadlineState.Disarmed;
            return;
        }

        deadline.State = DeadlineState.Armed;
        LinkLocked(deadline, Math.Max(TickAtOrBefore(now + units), _processedTick + 1));
    }

    private void ProcessSlotLocked(int slot, long nowTick, long now)
    {
        // Detach the whole chain first: entries re-linked while walking it (into this slot or another)
        // are not visited twice.
        var entry = _slots[slot];
        _slots[slot] = null;
        while (entry is not null)
        {
            var next = entry.NextInSlot;
            entry.NextInSlot = null;
            entry.PreviousInSlot = null;
            entry.Slot = -1;

            if (entry.DueTick > nowTick)
            {
                LinkLocked(entry, entry.DueTick); // a later revolution
            }
            else
            {
                ExamineLocked(entry, nowTick, now);
            }

            entry = next;
        }
    }

    private void ExamineLocked(KeepAliveDeadline entry, long nowTick, long now)
    {
        long deadline = entry.DeadlineTimestamp();
        if (deadline > now)
        {
            // Activity since it was linked (or not quite there yet): look again when the real deadline comes.
            entry.Deferrals = 0;
            LinkLocked(entry, Math.Max(TickAtOrBefore(deadline), nowTick + 1));
            return;
        }

        if (entry.ArmedKind == DeadlineKind.KeepAlive && IsHeldBack(entry.Target))
        {
            // Throttling never costs a keep-alive: the broker is not reading this client, so its silence proves nothing.
            entry.Deferrals = 0;
            LinkLocked(entry, Math.Max(TickAtOrBefore(now + entry.TimeoutUnits), nowTick + 1));
            return;
        }

        // Packets may be waiting unread because the broker, not the client, was slow (see Advance). Give
        // the read loop one more tick. The bound counts consecutive deferrals, i.e. ticks the wheel actually
        // ran, not wall time, so a stall longer than the timeout does not use it up: a client whose input has
        // stayed unread for another whole timeout of running ticks (at least MinDeferralTicks) is stuck, not
        // starved, and must not escape expiry forever.
        if (entry.ArmedKind is DeadlineKind.KeepAlive or DeadlineKind.Connect && entry.Deferrals < DeferralLimit(entry) && HasUnreadInput(entry.Target))
        {
            entry.Deferrals++;
            LinkLocked(entry, nowTick + 1);
            return;
        }

        // Read the activity again after the unread-input check: the read loop may have taken the waiting packet and
        // touched the entry between the first look and that check (it touches before it stops counting as
        // receiving), which is what happens to clients that kept sending through a stall when the read loop and
        // the wheel resume together.
        if (entry.DeadlineTimestamp() is var touched && touched > now)
        {
            entry.Deferrals = 0;
            LinkLocked(entry, Math.Max(TickAtOrBefore(touched), nowTick + 1));
            return;
        }

        entry.State = DeadlineState.PendingExpiry;
        long reference = deadline - entry.TimeoutUnits;
        var expiry = new DeadlineExpiry(entry.ArmedKind, entry.ArmedTimeout, _time.GetElapsedTime(reference, now));
        _due.Add(new PendingExpiry(entry, entry.Version, expiry));
    }

    private int DeferralLimit(KeepAliveDeadline entry) =>
        (int)Math.Clamp(entry.TimeoutUnits / _tickUnits, MinDeferralTicks, short.MaxValue);

    internal TimeSpan FromTimestampUnits(long units) =>
        TimeSpan.FromTicks((long)(((Int128)units * TimeSpan.TicksPerSecond + _time.TimestampFrequency - 1) / _time.TimestampFrequency));

    private static bool IsHeldBack(IKeepAliveTarget target)
    {
        try
        {
            return target.IsHeldBack;
        }
        catch (Exception)
        {
            return false;
        }
    }

    private static bool HasUnreadInput(IKeepAliveTarget target)
    {
        // A throwing target must not break the detached chain being walked: treat it as "nothing unread".
        try
        {
            return target.HasUnreadInput;
        }
        catch (Exception)
        {
            return false;
        }
    }

    private ExpiryBatch[] CutBatches()
    {
        if (_due.Count == 0)
        {
            return [];
        }

        var batches = new ExpiryBatch[(_due.Count + BatchSize - 1) / BatchSize];
        for (int i = 0; i < batches.Length; i++)
        {
            int start = i * BatchSize;
            var items = new PendingExpiry[Math.Min(BatchSize, _due.Count - start)];
            _due.CopyTo(start, items, 0, items.Length);
            batches[i] = new ExpiryBatch(this, items);
        }

        _due.Clear();
        return batches;
    }

    private void LinkLocked(KeepAliveDeadline entry, long dueTick)
    {
        int slot = (int)(dueTick & _slotMask);
        var head = _slots[slot];
        entry.DueTick = dueTick;
        entry.Slot = slot;
        entry.PreviousInSlot = null;
        entry.NextInSlot = head;
        if (head is not null)
        {
            head.PreviousInSlot = entry;
        }

        _slots[slot] = entry;
    }

    private void UnlinkLocked(KeepAliveDeadline entry)
    {
        if (entry.Slot < 0)
        {
            return;
        }

        if (entry.PreviousInSlot is { } previous)
        {
            previous.NextInSlot = entry.NextInSlot;
        }
        else
        {
            _slots[entry.Slot] = entry.NextInSlot;
        }

        if (entry.NextInSlot is { } next)
        {
            next.PreviousInSlot = entry.PreviousInSlot;
        }

        entry.NextInSlot = null;
        entry.PreviousInSlot = null;
        entry.Slot = -1;
    }
}
