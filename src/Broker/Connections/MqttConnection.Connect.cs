using System.Net;
using Broker.Connections.KeepAlive;
using Broker.Diagnostics;
using Broker.Protocol;
using Broker.Security;

namespace Broker.Connections;

internal sealed partial class MqttConnection
{
    private const string TakeoverRefused = "the session of this client id belongs to another user (Broker:Auth:TakeoverRequiresSameUser)";

    private bool HandleConnect(in MqttFrame frame)
    {
        var metrics = _services.Metrics;
        if (!MqttPacketDecoder.TryDecodeConnect(frame, out var connect, out byte level, out var error))
        {
            if (error.Code == ReasonCode.UnsupportedProtocolVersion)
            {
                metrics.ConnectAttempt(ConnectResult.UnsupportedProtocolVersion);
                // [MQTT-3.1.2-2] 3.1.1 answers 0x01 in its own format; 5.0 answers 0x84.
                return RefuseConnect(level == 5 || level > 5 ? MqttProtocolVersion.V500 : MqttProtocolVersion.V311,
                    level > 4 ? (byte)ReasonCode.UnsupportedProtocolVersion : (byte)ConnectReturnCode.UnacceptableProtocolVersion,
                    $"unsupported protocol (level {level}): {error.Message}", DisconnectCause.ConnectRefused);
            }
            metrics.ConnectAttempt(ConnectResult.MalformedConnect);
            if (level == 5)
            {
                // [MQTT-3.1.4-1] 5.0 may learn why with a CONNACK reason code before the close.
                return RefuseConnect(MqttProtocolVersion.V500, (byte)error.Code, error.ToString(), DisconnectCause.ProtocolError, error.Message);
            }
            return Fail(DisconnectCause.ProtocolError, "malformed CONNECT: " + error, null);
        }

        _version = connect.ProtocolVersion;
        // Known before any refusal, for the Reason String of a refusal CONNACK.
        _problemInformation = connect.Properties?.RequestProblemInformation != 0;
        _clientMaximumPacketSize = connect.Properties?.MaximumPacketSize ?? uint.MaxValue;
        var limits = _services.Limits;
        string clientId = connect.ClientId;
        bool assigned = false;
        if (clientId.Length == 0)
        {
            if (!V5 && !connect.CleanStart)
            {
                // [MQTT-3.1.3-8] 3.1.1: an empty client id needs Clean Session 1.
                metrics.ConnectAttempt(ConnectResult.IdentifierRejected);
                return RefuseConnect(_version, (byte)ConnectReturnCode.IdentifierRejected,
                    "empty client identifier with clean session 0 [MQTT-3.1.3-8]", DisconnectCause.ConnectRefused);
            }
            // [MQTT-3.1.3-6] the server assigns a unique id; 5.0 returns it [MQTT-3.2.2-16].
            clientId = "auto-" + Guid.NewGuid().ToString("N");
            assigned = true;
        }
        if (clientId.Length > limits.MaxClientIdLength)
        {
            metrics.ConnectAttempt(ConnectResult.IdentifierRejected);
            return RefuseConnect(_version, V5 ? (byte)ReasonCode.ClientIdentifierNotValid : (byte)ConnectReturnCode.IdentifierRejected,
                $"client identifier longer than Broker:Limits:MaxClientIdLength ({limits.MaxClientIdLength})", DisconnectCause.ConnectRefused);
        }
        if (connect.Will is { } will && !limits.TopicLimits.IsTopicNameAllowed(will.Topic.AsSpan(), out var willTopicError))
        {
            // Broker:Limits:MaxTopicLength / MaxTopicLevels hold for the will too: refused now, not when it would be published.
            metrics.ConnectAttempt(ConnectResult.MalformedConnect);
            string reason = "will topic: " + willTopicError.Message;
            return V5
                ? RefuseConnect(_version, (byte)ReasonCode.TopicNameInvalid, reason, DisconnectCause.ProtocolError, reason)
                : Fail(DisconnectCause.ProtocolError, "CONNECT refused, " + reason, null);
        }
        if (V5 && connect.Properties?.AuthenticationMethod is { } method)
        {
            metrics.ConnectAttempt(ConnectResult.BadAuthenticationMethod);
            return RefuseConnect(_version, (byte)ReasonCode.BadAuthenticationMethod,
                $"authentication method '{Diagnostics.LogText.Escape(method)}' is not supported", DisconnectCause.ConnectRefused);
        }

        // Broker:Limits:MaxConnections / MaxSessions: refused cleanly (5.0 0x97 Quota exceeded, 3.1.1 0x03 Server
        // unavailable), so a client backs off instead of finding its socket reset.
        if (_overConnectionLimit || (limits.MaxSessions > 0 && _services.Sessions.Count >= limits.MaxSessions && !_services.Sessions.TryGet(clientId, out _)))
        {
            var limit = _overConnectionLimit ? LimitKind.Connections : LimitKind.Sessions;
            metrics.ConnectAttempt(ConnectResult.ServerFull);
            metrics.LimitRefused(limit);
            return RefuseConnect(_version, V5 ? (byte)ReasonCode.QuotaExceeded : (byte)ConnectReturnCode.ServerUnavailable,
                limit == LimitKind.Connections
                    ? RefusalOf(clientId, $"Broker:Limits:MaxConnections ({limits.MaxConnections}) reached")
                    : RefusalOf(clientId, $"Broker:Limits:MaxSessions ({limits.MaxSessions}) reached"),
                DisconnectCause.ConnectRefused);
        }

        var negotiation = _services.KeepAlivePolicy.Negotiate((int)_version, connect.KeepAliveSeconds);
        if (!negotiation.Accepted)
        {
            metrics.ConnectAttempt(ConnectResult.KeepAliveRefused);
            // The contract: 3.1.1 clients outside the keep-alive policy get 0x02 (identifier rejected
            // is the only refusal code 3.1.1 has that a client treats as final rather than retrying at once).
            return RefuseConnect(_version, (byte)ConnectReturnCode.IdentifierRejected,
                RefusalOf(clientId, negotiation.RefusalReason), DisconnectCause.ConnectRefused);
        }

        // Adaptive Server Keep Alive (opt-in), 5.0 only: 3.1.1 cannot be told; its advice goes to the log.
        if (V5 && ClientEndPoint is IPEndPoint adaptFor
            && _services.Insight?.SuggestServerKeepAlive(adaptFor.Address, connect.KeepAliveSeconds, negotiation.EffectiveSeconds) is { } adapted)
        {
            negotiation = negotiation with { EffectiveSeconds = adapted, ServerKeepAlive = adapted };
        }

        return Authenticate(connect, clientId, assigned, negotiation);
    }

    /// <summary>
    /// The rest of CONNECT, once the client is known to be who it says (docs/security.md, "Authentication"): the
    /// verdict, the ACL's word on the will, takeover by the same user only, then the session and the CONNACK.
    /// </summary>
    private bool FinishConnect(ConnectPacket connect, string clientId, bool assigned, KeepAliveNegotiation negotiation, AuthenticationResult verdict)
    {
        var metrics = _services.Metrics;
        var limits = _services.Limits;
        if (!verdict.IsAccepted)
        {
            // The authenticator has logged it (event 1100: address, client id, user; never the password).
            metrics.ConnectAttempt(verdict.Outcome == AuthenticationOutcome.BadCredentials ? ConnectResult.BadCredentials : ConnectResult.NotAuthorized);
            return RefuseConnect(_version, V5 ? (byte)verdict.ReasonCode : (byte)verdict.ReturnCode,
                RefusalOf(clientId, verdict.Reason), DisconnectCause.ConnectRefused);
        }
        var permissions = _services.Authorizer.ForClient(verdict.UserName, clientId);
        if (connect.Will is { } willToCheck && !permissions.CanPublish(willToCheck.Topic))
        {
            // A will may only go where its client may publish.
            return RefuseNotAuthorized(clientId, verdict.UserName, $"the will topic '{Diagnostics.LogText.Escape(willToCheck.Topic)}' is not writable for this client");
        }
        var sessions = _services.Sessions;
        if (sessions.TryGet(clientId, out var existing) && !existing!.MayBeTakenOverBy(verdict.UserName, _services.MayTakeOver))
        {
            // Checked before the will is cancelled: a refused CONNECT leaves the owner's session and will alone.
            return RefuseNotAuthorized(clientId, verdict.UserName, TakeoverRefused);
        }

        var props = connect.Properties;
        uint expiry;
        if (V5)
        {
            expiry = props?.SessionExpiryInterval ?? 0;
        }
        else
        {
            // 3.1.1 has no Session Expiry: a Clean Session 0 session is kept for Broker:Limits:V311SessionExpirySeconds.
            expiry = connect.CleanStart ? 0 : limits.V311SessionExpirySeconds;
        }
        uint grantedExpiry = Math.Min(expiry, limits.MaxSessionExpirySeconds);

        _services.Wills.Cancel(clientId);
        // The same check again under the store's lock, which a concurrent CONNECT for this client id also takes.
        var session = sessions.TryAttach(clientId, connect.CleanStart, grantedExpiry, this, verdict.UserName, permissions,
            _services.MayTakeOver, out bool sessionPresent, out var previous);
        if (session is null)
        {
            return RefuseNotAuthorized(clientId, verdict.UserName, TakeoverRefused);
        }
        _session = session;
        _permissions = permissions;
        _clientId = clientId;
        _keepAlive = negotiation.EffectiveSeconds;
        if (connect.Will is { } will)
        {
            Extras.Will = will;
        }
        if (V5)
        {
            _clientReceiveMaximum = props?.ReceiveMaximum ?? ushort.MaxValue;
            // Broker:Limits:OutboundTopicAliases false treats every client as allowing no aliases [MQTT-3.1.2-27].
            _clientTopicAliasMaximum = limits.OutboundTopicAliases ? props?.TopicAliasMaximum ?? 0 : 0;
        }
        (previous as MqttConnection)?.TakeOver();

        var ack = new ConnAckPacket { SessionPresent = sessionPresent, ReasonCode = 0 };
        if (V5)
        {
            var ackProps = new MqttProperties
            {
                ReceiveMaximum = (ushort)limits.ReceiveMaximum,
                MaximumPacketSize = (uint)limits.MaxPacketSize,
                TopicAliasMaximum = limits.TopicAliasMaximum > 0 ? (ushort)limits.TopicAliasMaximum : null,
                AssignedClientIdentifier = assigned ? clientId : null,
                ServerKeepAlive = negotiation.ServerKeepAlive,
                SessionExpiryInterval = grantedExpiry != expiry ? grantedExpiry : null,
            };
            ack.Properties = ackProps;
        }
        // CONNACK and the resend of in-flight messages, after the store when the CONNECT wrote to it.
        SendConnAck(ack, session, sessionPresent);
        _connected = true;

        var timeout = negotiation.EffectiveSeconds == 0 ? TimeSpan.Zero : _services.KeepAlivePolicy.KeepAliveTimeout(negotiation.EffectiveSeconds);
        _services.Wheel.Rearm(_deadline, DeadlineKind.KeepAlive, timeout);

        // The authenticated user (a certificate's CN, or the verified user name); an unverified claim is not shown.
        if (verdict.UserName is { } userName)
        {
            Extras.UserName = userName;
        }
        Volatile.Write(ref _connectedTimestamp, _services.Time.GetTimestamp());
        metrics.ConnectAttempt(ConnectResult.Accepted);
        metrics.ClientConnected(_version, Listener);
        metrics.KeepAliveNegotiated(negotiation.EffectiveSeconds);
        // Every accepted connection counts for its network (keep-alive insight), however it ends.
        if (ClientEndPoint is IPEndPoint openedFrom)
        {
            _services.Insight?.ConnectionOpened(openedFrom.Address, _keepAlive);
        }
        BrokerLog.ClientConnected(_services.Logger, Diagnostics.LogText.Escape(clientId), ClientEndPoint, VersionText, _keepAlive,
            connect.KeepAliveSeconds, connect.CleanStart, sessionPresent);

        RequestFlush();
        return true;
    }

    /// <summary>Authorisation refused the CONNECT (will topic, takeover): 3.1.1 0x05, 5.0 0x87, logged as event 1100.</summary>
    private bool RefuseNotAuthorized(string clientId, string? userName, string reason)
    {
        SecurityLog.Refused(_services.Logger, clientId, (ClientEndPoint as IPEndPoint)?.Address, AuthenticationOutcome.NotAuthorized, reason, userName);
        _services.Metrics.ConnectAttempt(ConnectResult.NotAuthorized);
        return RefuseConnect(_version, V5 ? (byte)ReasonCode.NotAuthorized : (byte)ConnectReturnCode.NotAuthorized,
            RefusalOf(clientId, reason), DisconnectCause.ConnectRefused);
    }

    /// <summary>Why a CONNECT was refused, for the log and the Reason String: the client's own text escaped (issue #11).</summary>
    private static string RefusalOf(string clientId, string? reason) => $"client '{Diagnostics.LogText.Escape(clientId)}': {reason}";

    /// <summary>CONNACK with a refusal code, then close [MQTT-3.2.2-6 / 3.2.2-7].</summary>
    private bool RefuseConnect(MqttProtocolVersion version, byte code, string reason, DisconnectCause cause, string? reasonString = null)
    {
        BrokerLog.ConnectRefused(_services.Logger, ClientEndPoint, reason);
        _version = version;
        var ack = new ConnAckPacket { SessionPresent = false, ReasonCode = code };
        if (version == MqttProtocolVersion.V500)
        {
            ProblemInformation.Attach(ack, reasonString ?? reason, _problemInformation, _clientMaximumPacketSize);
        }
        WritePacket(ack);
        End(cause, reason, graceful: true);
        return false;
    }
}
