using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using Broker.Diagnostics;
using Microsoft.Extensions.Logging;

namespace Broker.Transport;

/// <summary>
/// The TLS listener: the same accept loop as plain TCP (a <see cref="SocketListener"/>: SAEA accepts, back-off when
/// out of descriptors, NoDelay and kernel keep-alive on every socket), then a TLS handshake per socket on the thread
/// pool, bounded by a timeout, and only an authenticated stream is handed on. A client that is not speaking TLS (plain
/// MQTT sent to this port), a refused certificate, a client that leaves or stalls: one Debug line and a count, no
/// exception escapes, and nobody else waits for it.
/// </summary>
internal sealed class TlsListener : IDisposable
{
    private readonly SocketListener _sockets;
    private readonly Func<SslServerAuthenticationOptions> _serverOptions;
    private readonly TimeSpan _handshakeTimeout;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly BrokerMetrics _metrics;
    private readonly CancellationTokenSource _stopping = new();
    private Action<TlsClient>? _onAuthenticated;

    /// <param name="serverOptions">Asked once per handshake (the certificate may have been replaced meanwhile).</param>
    public TlsListener(SocketListener sockets, Func<SslServerAuthenticationOptions> serverOptions, TimeSpan handshakeTimeout,
        TimeProvider time, ILogger logger, BrokerMetrics metrics)
    {
        _sockets = sockets;
        _serverOptions = serverOptions;
        _handshakeTimeout = handshakeTimeout;
        _time = time;
        _logger = logger;
        _metrics = metrics;
    }

    public IPEndPoint LocalEndPoint => _sockets.LocalEndPoint;

    /// <summary>Binds; throws (SocketException) when the address cannot be bound.</summary>
    public void Bind() => _sockets.Bind();

    /// <summary>Starts accepting; <paramref name="onAuthenticated"/> gets every client whose handshake succeeded, on a thread-pool thread.</summary>
    public void Start(Action<TlsClient> onAuthenticated)
    {
        _onAuthenticated = onAuthenticated;
        _sockets.Start(OnAccepted, _metrics.AcceptFailed);
    }

    /// <summary>Stops accepting and abandons the handshakes in progress. Idempotent.</summary>
    public void Stop()
    {
        _sockets.Stop();
        try
        {
            _stopping.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }
    }

    public void Dispose()
    {
        Stop();
        _sockets.Dispose();
        _stopping.Dispose();
    }

    // On the accept loop's thread: the handshake (asymmetric cryptography, and a certificate check) would stall the
    // accepting of every other client, so it starts on a thread-pool thread of its own.
    private void OnAccepted(Socket socket) =>
        ThreadPool.UnsafeQueueUserWorkItem(static state => _ = state.Listener.HandshakeAsync(state.Socket), (Listener: this, Socket: socket), preferLocal: false);

    private async Task HandshakeAsync(Socket socket)
    {
        EndPoint? remote = null;
        SslStream? ssl = null;
        HandshakeStream? transport = null;
        var failure = TlsHandshakeFailure.Refused;
        string? problem = null;
        using var timeout = new CancellationTokenSource(_handshakeTimeout, _time);
        using var stopping = _stopping.Token.UnsafeRegister(static cts => ((CancellationTokenSource)cts!).Cancel(), timeout);
        try
        {
            remote = socket.RemoteEndPoint;
            // NetworkStream wants a blocking socket; its asynchronous reads and writes do not block either way.
            socket.Blocking = true;
            transport = new HandshakeStream(new NetworkStream(socket, ownsSocket: true));
            ssl = new SslStream(transport, leaveInnerStreamOpen: false);
            await ssl.AuthenticateAsServerAsync(_serverOptions(), timeout.Token).ConfigureAwait(false);
            transport.HandshakeDone();
        }
        catch (OperationCanceledException)
        {
            failure = TlsHandshakeFailure.Timeout;
            problem = _stopping.IsCancellationRequested ? "the listener stopped" : $"no handshake within {_handshakeTimeout.TotalSeconds:F0} s";
        }
        catch (AuthenticationException ex)
        {
            // Not TLS at all (plain MQTT to this port), an old protocol version, no shared cipher, a refused certificate.
            problem = ex.InnerException is { } inner ? $"{ex.Message} ({inner.Message})" : ex.Message;
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException)
        {
            failure = TlsHandshakeFailure.ClientGone;
            problem = ex.Message;
        }
        if (problem is not null)
        {
            _metrics.TlsHandshakeFailed(failure);
            TransportLog.TlsHandshakeFailed(_logger, remote, DiagnosticNames.Of(failure), problem);
            if (ssl is not null)
            {
                await DisposeQuietlyAsync(ssl).ConfigureAwait(false);
            }
            else
            {
                socket.Dispose();
            }
            return;
        }
        _onAuthenticated!(new TlsClient(ssl!, socket, remote));
    }

    private static async Task DisposeQuietlyAsync(SslStream ssl)
    {
        try
        {
            await ssl.DisposeAsync().ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException)
        {
        }
    }

    /// <summary>
    /// The socket's stream, seen by SslStream. With the socket engine's inline completions, a read completes on the
    /// engine's thread and SslStream would go on with the handshake there: during the handshake every read resumes on
    /// the thread pool instead. Afterwards reads pass straight through (decrypting a packet is cheap, and the
    /// connection handles its packets on that thread as plain TCP does), zero-byte reads included.
    /// </summary>
    private sealed class HandshakeStream(NetworkStream inner) : UnseekableStream
    {
        private volatile bool _handshaking = true;

        public void HandshakeDone() => _handshaking = false;

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            _handshaking ? ReadOffThreadAsync(buffer, cancellationToken) : inner.ReadAsync(buffer, cancellationToken);

        private async ValueTask<int> ReadOffThreadAsync(Memory<byte> buffer, CancellationToken cancellationToken)
        {
            int read = await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
            await Task.Yield();
            return read;
        }

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) =>
            inner.WriteAsync(buffer, cancellationToken);

        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);

        public override void Write(byte[] buffer, int offset, int count) => inner.Write(buffer, offset, count);

        public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

        public override void Flush() => inner.Flush();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
            }
            base.Dispose(disposing);
        }

        public override ValueTask DisposeAsync() => inner.DisposeAsync();
    }
}

/// <summary>A client whose TLS handshake succeeded: the stream, the socket under it, and its address.</summary>
internal sealed record TlsClient(SslStream Stream, Socket Socket, EndPoint? RemoteEndPoint);
