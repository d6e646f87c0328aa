using System.Net;
using Broker.Connections.KeepAlive;
using Broker.Diagnostics;
using Broker.Protocol;
using Broker.Security;

namespace Broker.Connections;

/// <summary>
/// Authentication at CONNECT without blocking the socket thread. Anonymous clients, certificate identities and
/// cached logins are decided at once, in the CONNECT's own handler. A password that must be hashed is verified off
/// the thread: the client is held (<see cref="HoldReason.Authentication"/>: the receive path stops after CONNECT,
/// keeps whatever the client sent behind it buffered, and parks), the verdict is stored when it arrives and the
/// hold released; the receive path, resumed, finishes the CONNECT before it handles anything else. So only the
/// receive path ever handles packets, in order, and the connect deadline (not extended by the hold) bounds the wait.
/// </summary>
internal sealed partial class MqttConnection
{
    // The ACL of this client (one shared object when there is no ACL); set when CONNECT is accepted.
    private ClientPermissions? _permissions;
    // The receive path stopped for a hold (or for a CONNECT awaiting its verdict) with input left unhandled: it must
    // look again once the hold is lifted, even if the hold was lifted before it could park.
    private bool _stoppedForHold;

    /// <summary>A CONNECT whose password is being verified; owned by the receive path once <see cref="Done"/>.</summary>
    private sealed class PendingConnect(ConnectPacket connect, string clientId, bool assigned, KeepAliveNegotiation negotiation, CancellationTokenSource? cancellation)
    {
        public ConnectPacket Connect => connect;
        public string ClientId => clientId;
        public bool Assigned => assigned;
        public KeepAliveNegotiation Negotiation => negotiation;
        public CancellationTokenSource? Cancellation => cancellation;
        public AuthenticationResult Verdict;
        // Null when the verification did not finish (the connection went away, or the authenticator failed).
        public string? Failure;
        public volatile bool Done;
    }

    private bool Authenticate(ConnectPacket connect, string clientId, bool assigned, KeepAliveNegotiation negotiation)
    {
        var request = new AuthenticationRequest((ClientEndPoint as IPEndPoint)?.Address, clientId, connect.UserName,
            connect.Password, _stream?.CertificateUserName);
        // A password may have to be hashed, which can be cancelled when the client goes away; nothing else waits.
        var cancellation = connect.Password is not null && connect.UserName is not null && request.CertificateUserName is null
            ? new CancellationTokenSource()
            : null;
        var verdict = _services.Authenticator.AuthenticateAsync(request, cancellation?.Token ?? CancellationToken.None);
        if (verdict.IsCompletedSuccessfully)
        {
            ForgetPassword(connect);
            return FinishConnect(connect, clientId, assigned, negotiation, verdict.Result);
        }
        var pending = new PendingConnect(connect, clientId, assigned, negotiation, cancellation);
        Extras.PendingConnect = pending;
        // Before the verdict can arrive: the hold is what resumes the receive path once it is stored.
        Hold(HoldReason.Authentication);
        _ = AwaitVerdictAsync(verdict, pending);
        return true;
    }

    private async Task AwaitVerdictAsync(ValueTask<AuthenticationResult> verdict, PendingConnect pending)
    {
        try
        {
            pending.Verdict = await verdict.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            pending.Failure = "the connection ended during the credential check";
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // A bug or a disposed authenticator (shutdown): the client is refused, the broker goes on.
            BrokerLog.ConnectionFault(_services.Logger, pending.ClientId, ex);
            pending.Failure = "the credential check failed: " + ex.Message;
        }
        ForgetPassword(pending.Connect);
        pending.Done = true;
        Release(HoldReason.Authentication);
    }

    /// <summary>
    /// Called by the receive path before it handles any further input: finishes a CONNECT whose verdict has arrived.
    /// False while the verdict is still awaited (the receive path then parks).
    /// </summary>
    private bool TryFinishPendingConnect(PendingConnect pending, out bool keepGoing)
    {
        keepGoing = true;
        if (!pending.Done)
        {
            return false;
        }
        _extras!.PendingConnect = null;
        if (pending.Failure is { } failure)
        {
            _services.Metrics.ConnectAttempt(ConnectResult.NotAuthorized);
            keepGoing = RefuseConnect(_version, V5 ? (byte)ReasonCode.ServerUnavailable : (byte)ConnectReturnCode.ServerUnavailable,
                RefusalOf(pending.ClientId, failure), DisconnectCause.ConnectRefused);
            return true;
        }
        keepGoing = FinishConnect(pending.Connect, pending.ClientId, pending.Assigned, pending.Negotiation, pending.Verdict);
        return true;
    }

    /// <summary>The connection ended: a password check still waiting (slow-down, hashing queue) is not needed any more.</summary>
    private void CancelPendingConnect()
    {
        if (_extras?.PendingConnect is { } pending && !pending.Done)
        {
            try
            {
                pending.Cancellation?.Cancel();
            }
            catch (AggregateException)
            {
                // A registration callback failed; the verification ends anyway.
            }
        }
    }

    /// <summary>The decoded password is not kept once its verdict is in (the authenticator wiped its own copy).</summary>
    private static void ForgetPassword(ConnectPacket connect)
    {
        if (connect.Password is { } password)
        {
            System.Security.Cryptography.CryptographicOperations.ZeroMemory(password);
        }
    }
}
