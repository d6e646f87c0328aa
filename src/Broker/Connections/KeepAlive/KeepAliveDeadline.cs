using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace Broker.Connections.KeepAlive;

/// <summary>
/// One entry in the <see cref="TimerWheel"/>: a connection's (connect timeout, keep-alive, linger), an offline
/// session's expiry or a delayed will. The read path owns <see cref="Touch"/>; everything else is owned by the
/// wheel and changed only under its lock.
/// </summary>
internal sealed class KeepAliveDeadline
{
    // Written by the connection's read loop on every packet, read by the wheel about once per period.
    // A plain 64-bit store: no lock, no allocation, no interlocked operation.
    private long _lastActivity;

    internal KeepAliveDeadline(TimerWheel owner, IKeepAliveTarget target, long now)
    {
        Owner = owner;
        Target = target;
        _lastActivity = now;
    }

    /// <summary>A packet (of any kind) arrived. Hot path: a timestamp read and a volatile write.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Touch()
    {
        // The wheel's clock is null when it runs on TimeProvider.System: then Stopwatch.GetTimestamp is called
        // directly, which the JIT inlines, instead of a virtual call (TimeProvider.System returns the same value).
        var clock = Owner.TouchClock;
        Volatile.Write(ref _lastActivity, clock is null ? Stopwatch.GetTimestamp() : clock.GetTimestamp());
    }

    /// <summary>Timestamp (in the wheel's TimeProvider units) of the last <see cref="Touch"/> or of registration.</summary>
    public long LastActivityTimestamp => Volatile.Read(ref _lastActivity);

    /// <summary>The kind last armed (diagnostics; may be momentarily stale while a Rearm runs).</summary>
    public DeadlineKind Kind => ArmedKind;

    /// <summary>The timeout last armed; <see cref="TimeSpan.Zero"/> when disarmed (Keep Alive 0).</summary>
    public TimeSpan Timeout => ArmedTimeout;

    // Kept as timestamp units only (one field less per client); converting back is exact for the clocks in use
    // (Stopwatch at 1 GHz, fake clocks at TimeSpan ticks), and at worst rounds up by one unit.
    internal TimeSpan ArmedTimeout => Owner.FromTimestampUnits(TimeoutUnits);

    // ---- Owned by TimerWheel, read and written only under TimerWheel's lock (except Owner/Target). ----
    internal readonly TimerWheel Owner;
    internal readonly IKeepAliveTarget Target;
    internal KeepAliveDeadline? NextInSlot;
    internal KeepAliveDeadline? PreviousInSlot;
    internal int Slot = -1;                  // -1 = not linked into any slot
    internal long DueTick;                   // absolute tick number; the slot is DueTick & mask
    internal long ArmedAt;                   // timestamp of Register/Rearm
    internal long TimeoutUnits;              // timeout in timestamp units, rounded up
    internal DeadlineKind ArmedKind;
    internal DeadlineState State;
    internal short Deferrals;                // consecutive ticks expiry was put off for unread input (capped)
    internal int Version;                    // bumped by every Rearm/Remove: invalidates pending expiries

    /// <summary>The moment this deadline is reached if nothing else happens.</summary>
    internal long DeadlineTimestamp()
    {
        long reference = ArmedKind is DeadlineKind.KeepAlive or DeadlineKind.SendStall
            ? Math.Max(ArmedAt, LastActivityTimestamp)
            : ArmedAt; // every other deadline counts from arming: activity does not extend it
        return reference + TimeoutUnits;
    }
}

internal enum DeadlineState
{
    Armed,          // linked into a slot
    Disarmed,       // Keep Alive 0: registered but never expires
    PendingExpiry,  // handed to an expiry batch; Rearm/Remove can still cancel it
    Expired,        // the batch committed it: the target has been (or is being) told
    Removed,
}
