using Broker.Diagnostics;
using Broker.Persistence;
using Broker.Protocol;
using Broker.Routing;
using Broker.Sessions;

namespace Broker.Connections;

/// <summary>
/// Durability from the connection's side (issue #14; the table in docs/persistence.md). A reply that promises
/// something the store must keep waits for the store's completion instead of going out at once: PUBACK/PUBREC of a
/// message written for a persistent session or as retained, PUBREC of a stored QoS 2 packet id, PUBREL and PUBCOMP of a
/// stored exchange, SUBACK and UNSUBACK of a persistent session, the CONNACK of a CONNECT that wrote, and an outgoing
/// QoS 2 PUBLISH whose packet id must be on disk before the client sees it. The socket thread never waits: the reply
/// is queued with a store barrier and written by the completion (on the store's writer thread). Replies keep their
/// order [MQTT-4.6.0-2..4]: once one waits, every later one waits behind it (a barrier costs no disk write).
/// </summary>
/// <remarks>
/// A commit that fails (disk full) is not an acknowledgement: 5.0 PUBACK/PUBREC carry 0x80 Unspecified error (the QoS 2
/// exchange ends), SUBACK carries 0x80 for the filters it would have granted (they are removed again), a CONNACK
/// becomes a refusal (5.0 0x88 Server unavailable, 3.1.1 0x03); for everything else (3.1.1 PUBACK/PUBREC, PUBREL,
/// PUBCOMP, UNSUBACK, a held QoS 2 PUBLISH) the connection is closed (5.0 after DISCONNECT 0x80) and the client resends
/// after reconnecting. The store keeps retrying the writes, so what is in memory still reaches the disk later.
/// </remarks>
internal sealed partial class MqttConnection : IStoreCompletion
{
    private const string StoreFailureText = "the persistent store cannot write (disk full or failing, see the broker's log)";

    // Created the first time a reply waits for the store (a clean-session client never has one). Guarded by lock (this).
    private StoreReplies? _storeReplies;
    // Set by the publish being handled when it wrote to the store (receive path only).
    private bool _publishWroteStore;

    private IBrokerStateStore? Store => _services.Sessions.Journal?.Store;

    // lock (this) held.
    private bool RepliesWaiting => _storeReplies is { Waiting.Count: > 0 };

    // The CONNACK waits for the store: until it is out, queued messages are not sent (they must follow it).
    private bool ConnAckWaiting => _storeReplies is { ConnAckPending: true };

    /// <summary>The publish was routed: when it wrote to the store, its acknowledgement must wait and a store that is behind holds the client.</summary>
    private void OnPublishRouted(ApplicationMessage message)
    {
        if (message.Persisted is not null)
        {
            _publishWroteStore = message.QoS != QualityOfService.AtMostOnce;
            HoldIfStoreBehind();
        }
    }

    /// <summary>Whether the acknowledgement of the QoS 1/2 publish just handled must wait for the store (and forgets it for the next).</summary>
    private bool PublishNeedsStore(QualityOfService qos)
    {
        bool wrote = _publishWroteStore;
        _publishWroteStore = false;
        if (!wrote && qos == QualityOfService.ExactlyOnce && _session!.IsPersistent)
        {
            // The QoS 2 packet id was written [MQTT-4.3.3-10]: exactly once holds across a restart only if it is durable.
            wrote = true;
            HoldIfStoreBehind();
        }
        return wrote;
    }

    /// <summary>
    /// The store cannot keep up (or fails): stop reading this client after the packet in hand until it has caught up,
    /// so that publishers are slowed instead of the backlog (and memory) growing.
    /// </summary>
    private void HoldIfStoreBehind()
    {
        var store = Store;
        if (store is null || !store.IsBehind || (Volatile.Read(ref _holdReasons) & (int)HoldReason.Store) != 0)
        {
            return;
        }
        Hold(HoldReason.Store);
        store.WhenCaughtUp().ContinueWith(static (_, state) => ((MqttConnection)state!).Release(HoldReason.Store), this,
            CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    /// <summary>
    /// Queues <paramref name="reply"/> to be written once everything appended to the store so far is durable. False
    /// without a store. lock (this) held: the queue's order is the order of the barriers in the store.
    /// </summary>
    private bool WaitForStoreLocked(StoreReply reply)
    {
        var store = Store;
        if (store is null)
        {
            return false;
        }
        var replies = _storeReplies ??= new StoreReplies();
        reply.Token = ++replies.LastToken;
        replies.Waiting.Enqueue(reply);
        // A failing store answers at once, on this thread: OnStoreCompleted defers that to the thread pool.
        store.Append(StoreOperation.Barrier(), this, reply.Token);
        return true;
    }

    /// <summary>A control packet (UNSUBACK) written now, or after the store when <paramref name="afterStore"/> or when replies wait.</summary>
    private void WriteReply(MqttPacket packet, bool afterStore)
    {
        lock (this)
        {
            if (!_writesClosed && (afterStore || RepliesWaiting)
                && WaitForStoreLocked(new StoreReply { Kind = StoreReplyKind.Packet, Packet = packet, NeedsDurable = afterStore }))
            {
                return;
            }
        }
        WritePacket(packet);
    }

    /// <summary>SUBACK, then the retained messages [MQTT-3.8.4-1]; for a persistent session once its subscriptions are durable.</summary>
    private void SendSubAck(SubscribePacket subscribe, byte[] codes, List<(ApplicationMessage Message, QualityOfService QoS)>? retained, int? subscriptionId)
    {
        var suback = new SubAckPacket { PacketId = subscribe.PacketId, ReasonCodes = codes };
        bool wrote = _session!.IsPersistent && Array.Exists(codes, c => c < 0x80);
        lock (this)
        {
            if (!_writesClosed && (wrote || RepliesWaiting)
                && WaitForStoreLocked(new StoreReply
                {
                    Kind = StoreReplyKind.SubAck,
                    Packet = suback,
                    State = new PendingSubscribe(subscribe, retained, subscriptionId),
                    NeedsDurable = wrote,
                }))
            {
                return;
            }
        }
        WritePacket(suback);
        ReplayRetained(retained, subscriptionId);
    }

    private void ReplayRetained(List<(ApplicationMessage Message, QualityOfService QoS)>? retained, int? subscriptionId)
    {
        if (retained is null)
        {
            return;
        }
        var session = _session!;
        int[]? ids = subscriptionId is { } sid ? [sid] : null;
        foreach (var (message, qos) in retained)
        {
            // [MQTT-3.3.1-8] retained messages sent on subscribe carry the retain flag.
            _services.Router.EnqueueRetainedReplay(session, new OutboundMessage(message, qos, Retain: true, ids));
        }
    }

    /// <summary>
    /// CONNACK, and the resend of in-flight messages of a present session [MQTT-4.4.0-1]. When the CONNECT wrote to the
    /// store (a persistent session created or resumed, a stored one discarded by Clean Start), both wait until that is
    /// durable: the client is held (its next packets wait unread) and queued messages are not sent before the CONNACK.
    /// </summary>
    private void SendConnAck(ConnAckPacket ack, Session session, bool sessionPresent)
    {
        if (session.AttachWroteStore && Store is not null)
        {
            Hold(HoldReason.Store);
            lock (this)
            {
                if (!_writesClosed)
                {
                    (_storeReplies ??= new StoreReplies()).ConnAckPending = true;
                    WaitForStoreLocked(new StoreReply { Kind = StoreReplyKind.ConnAck, Packet = ack, State = sessionPresent ? session : null, NeedsDurable = true });
                    return;
                }
            }
            Release(HoldReason.Store);
            return;
        }
        WritePacket(ack);
        if (sessionPresent)
        {
            // Before _connected: until then the send loop does not take queued messages, so a message it
            // takes now cannot also be found in flight here and be sent twice [MQTT-4.4.0-1].
            ResendInflight(session);
        }
    }

    /// <summary>
    /// An outgoing PUBLISH taken from the queue waits when its QoS 2 packet id must be durable first (else a restart
    /// would send it again under another id: a duplicate the client cannot recognise), or when one before it waits
    /// (order [MQTT-4.6.0-6]). lock (this) held, inside the flush loop.
    /// </summary>
    private bool HoldPublishForStoreLocked(Session session, in OutboundMessage message, ushort packetId)
    {
        bool ownBarrier = message.QoS == QualityOfService.ExactlyOnce && message.Sequence != 0 && session.IsPersistent;
        if (!ownBarrier && _storeReplies is not { HeldPublishes: > 0 })
        {
            return false;
        }
        var reply = new StoreReply { Kind = StoreReplyKind.Publish, Message = message, PacketId = packetId, NeedsDurable = ownBarrier };
        if (ownBarrier)
        {
            if (!WaitForStoreLocked(reply))
            {
                return false;
            }
        }
        else
        {
            // Token 0: goes out right after the one before it.
            _storeReplies!.Waiting.Enqueue(reply);
        }
        _storeReplies!.HeldPublishes++;
        return true;
    }

    public void OnStoreCompleted(long token, StoreOutcome outcome)
    {
        if (outcome == StoreOutcome.Durable)
        {
            ReleaseReplies(token, durable: true);
        }
        else
        {
            // A failing store may answer on the thread that is appending, inside this connection's lock or its flush
            // loop: the answer (which may end the connection) is given from the thread pool instead.
            ThreadPool.UnsafeQueueUserWorkItem(static s => s.Connection.ReleaseReplies(s.Token, durable: false), (Connection: this, Token: token),
                preferLocal: false);
        }
    }

    /// <summary>
    /// Writes the replies up to <paramref name="token"/>, in order: as they are when durable, as failures (or an end of
    /// the connection) when not. A completion for a token already answered (a failure answers all before it) does nothing.
    /// </summary>
    private void ReleaseReplies(long token, bool durable)
    {
        List<StoreReply>? after = null;
        bool end = false;
        bool released = false;
        lock (this)
        {
            var replies = _storeReplies;
            if (replies is null)
            {
                return;
            }
            while (replies.Waiting.TryPeek(out var reply) && (reply.Token == 0 || reply.Token <= token))
            {
                replies.Waiting.Dequeue();
                released = true;
                if (reply.Kind == StoreReplyKind.Publish)
                {
                    replies.HeldPublishes--;
                }
                if (reply.Kind == StoreReplyKind.ConnAck)
                {
                    replies.ConnAckPending = false;
                }
                if (_writesClosed)
                {
                    continue;
                }
                if (durable || !reply.NeedsDurable)
                {
                    WriteDurableReplyLocked(reply, ref after);
                }
                else
                {
                    end |= WriteFailedReplyLocked(reply, ref after);
                }
            }
        }
        if (!released)
        {
            return;
        }
        if (after is not null)
        {
            foreach (var reply in after)
            {
                if (reply.Kind == StoreReplyKind.SubAck && reply.State is PendingSubscribe subscribe)
                {
                    ReplayRetained(subscribe.Retained, subscribe.SubscriptionId);
                }
                else if (reply.Kind == StoreReplyKind.ConnAck)
                {
                    if (durable)
                    {
                        Release(HoldReason.Store);
                    }
                    else
                    {
                        end = true;
                    }
                }
            }
        }
        if (end)
        {
            if (_connected && V5 && !ConnAckRefused(after))
            {
                TryWriteDisconnect(ReasonCode.UnspecifiedError, StoreFailureText);
            }
            End(DisconnectCause.StoreUnavailable, StoreFailureText, graceful: true);
            return;
        }
        RequestFlush();
    }

    private static bool ConnAckRefused(List<StoreReply>? after) => after?.Exists(r => r.Kind == StoreReplyKind.ConnAck) == true;

    private void WriteDurableReplyLocked(in StoreReply reply, ref List<StoreReply>? after)
    {
        switch (reply.Kind)
        {
            case StoreReplyKind.PublishResponse:
                WritePublishResponseLocked(reply.Type, reply.PacketId, reply.Reason);
                break;
            case StoreReplyKind.Packet:
                WritePacket(reply.Packet!, flush: false);
                break;
            case StoreReplyKind.SubAck:
                WritePacket(reply.Packet!, flush: false);
                (after ??= []).Add(reply);
                break;
            case StoreReplyKind.ConnAck:
                WritePacket(reply.Packet!, flush: false);
                if (reply.State is Session present)
                {
                    ResendInflight(present);
                }
                (after ??= []).Add(reply);
                break;
            case StoreReplyKind.Publish:
                WritePublishLocked(_session!, reply.Message, reply.PacketId, dup: false);
                break;
        }
    }

    /// <summary>A reply whose promise did not reach the disk. Returns true when the connection must end instead.</summary>
    private bool WriteFailedReplyLocked(in StoreReply reply, ref List<StoreReply>? after)
    {
        switch (reply.Kind)
        {
            case StoreReplyKind.PublishResponse when V5 && reply.Type is PacketType.PubAck or PacketType.PubRec:
                if (reply.Type == PacketType.PubRec)
                {
                    // A PUBREC with a failure code ends the QoS 2 exchange [MQTT-4.3.3-4]: the id is free again.
                    _session!.RemoveInboundQoS2(reply.PacketId);
                }
                WritePublishResponseLocked(reply.Type, reply.PacketId, ReasonCode.UnspecifiedError);
                return false;
            case StoreReplyKind.SubAck:
                var suback = (SubAckPacket)reply.Packet!;
                var subscribe = ((PendingSubscribe)reply.State!).Subscribe;
                for (int i = 0; i < suback.ReasonCodes.Length; i++)
                {
                    if (suback.ReasonCodes[i] < 0x80)
                    {
                        // Refused after all: not left active in memory while the client believes it failed.
                        _services.Router.Unsubscribe(subscribe.Subscriptions[i].TopicFilter, _session!);
                        suback.ReasonCodes[i] = (byte)ReasonCode.UnspecifiedError; // 3.1.1 Failure is 0x80 too
                    }
                }
                WritePacket(suback, flush: false);
                return false;
            case StoreReplyKind.ConnAck:
                var refusal = new ConnAckPacket
                {
                    SessionPresent = false, // [MQTT-3.2.2-6]
                    ReasonCode = V5 ? (byte)ReasonCode.ServerUnavailable : (byte)ConnectReturnCode.ServerUnavailable,
                };
                if (V5)
                {
                    ProblemInformation.Attach(refusal, StoreFailureText, _problemInformation, _clientMaximumPacketSize);
                }
                WritePacket(refusal, flush: false);
                (after ??= []).Add(reply);
                return true;
            default:
                return true;
        }
    }

    /// <summary>PUBACK/PUBREC/PUBREL/PUBCOMP into the output; lock (this) held and writes open.</summary>
    private void WritePublishResponseLocked(PacketType type, ushort packetId, ReasonCode reasonCode)
    {
        _services.Metrics.BytesSent(MqttPacketWriter.WritePublishResponse(this, type, packetId, reasonCode, _version));
        _services.Metrics.PacketSent(type);
    }

    private enum StoreReplyKind : byte
    {
        PublishResponse,
        Packet,
        SubAck,
        ConnAck,
        Publish,
    }

    /// <summary>A reply waiting for the store; <see cref="Token"/> 0 goes out with the one before it.</summary>
    private struct StoreReply
    {
        public long Token;
        public StoreReplyKind Kind;
        public PacketType Type;
        public ushort PacketId;
        public ReasonCode Reason;
        // False: it waits only to keep its place in the order; a failed commit does not change it.
        public bool NeedsDurable;
        public MqttPacket? Packet;
        public object? State;
        public OutboundMessage Message;

        public static StoreReply ForPublishResponse(PacketType type, ushort packetId, ReasonCode reason, bool needsDurable)
            => new() { Kind = StoreReplyKind.PublishResponse, Type = type, PacketId = packetId, Reason = reason, NeedsDurable = needsDurable };
    }

    private sealed class StoreReplies
    {
        public readonly Queue<StoreReply> Waiting = new();
        public long LastToken;
        public int HeldPublishes;
        public bool ConnAckPending;
    }

    private sealed record PendingSubscribe(SubscribePacket Subscribe, List<(ApplicationMessage Message, QualityOfService QoS)>? Retained, int? SubscriptionId);
}
