using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Hosting;

namespace Broker.Hosting;

/// <summary>
/// Failures that stop start-up, as messages: listener bind failures naming the key and the port (exit code 3), an
/// unusable persistent store naming the file and what to do (exit code 2). A service that fails records it here and
/// stops the host instead of throwing: the Generic Host would log the exception with its stack trace before the
/// program could say in one line what is wrong. The program prints these and exits with <see cref="ExitCode"/>.
/// </summary>
internal sealed class StartupFailures(IHostApplicationLifetime lifetime)
{
    private readonly List<string> _messages = [];
    private int _exitCode;

    /// <summary>The exit code of the first failure (0 when none).</summary>
    public int ExitCode
    {
        get
        {
            lock (_messages)
            {
                return _exitCode;
            }
        }
    }

    public IReadOnlyList<string> Messages
    {
        get
        {
            lock (_messages)
            {
                return [.. _messages];
            }
        }
    }

    public bool Any
    {
        get
        {
            lock (_messages)
            {
                return _messages.Count > 0;
            }
        }
    }

    public void ListenerFailed(string section, string address, int port, Exception exception)
        => Add(Describe(section, address, port, exception), BrokerCommandLine.ExitCannotListen);

    /// <summary>The persistent store exists but cannot be used (its message says why and how to move it aside): exit code 2.</summary>
    public void StoreUnusable(string message) => Add(message, BrokerCommandLine.ExitInvalid);

    private void Add(string message, int exitCode)
    {
        lock (_messages)
        {
            _messages.Add(message);
            if (_exitCode == 0)
            {
                _exitCode = exitCode;
            }
        }
        lifetime.StopApplication();
    }

    /// <summary>True for the exceptions a listener's bind throws (socket errors, Kestrel's wrapped ones).</summary>
    public static bool IsBindFailure(Exception exception)
        => exception is SocketException or AddressInUseException
            || (exception is IOException && exception.InnerException is SocketException or AddressInUseException);

    /// <summary>"Broker:Tcp:Port 1883 is already in use on 0.0.0.0 (another process listens there)".</summary>
    internal static string Describe(string section, string address, int port, Exception exception)
    {
        var socketError = (exception as SocketException ?? exception.InnerException as SocketException ?? exception.InnerException?.InnerException as SocketException)?.SocketErrorCode;
        bool inUse = socketError == SocketError.AddressAlreadyInUse || exception is AddressInUseException || exception.InnerException is AddressInUseException;
        if (inUse)
        {
            return $"{section}:Port {port} is already in use on {address}: another process listens there (choose another port with --{section}:Port=N)";
        }
        return socketError switch
        {
            SocketError.AddressNotAvailable => $"{section}:Address {address} is not an address of this host (cannot listen on {address}:{port})",
            SocketError.AccessDenied => $"{section}:Port {port} needs privileges this process does not have (ports below 1024) on {address}",
            _ => $"cannot listen on {section}:Address {address} {section}:Port {port}: {exception.Message}",
        };
    }
}

/// <summary>Starts the MQTT listener, turning a bind failure into a <see cref="StartupFailures"/> entry.</summary>
internal sealed class GuardedBrokerServer(BrokerServer server, StartupFailures failures, Microsoft.Extensions.Options.IOptions<TcpOptions> tcp) : IHostedService
{
    private bool _started;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (failures.Any)
        {
            return; // an earlier listener failed: the host is stopping, do not open the MQTT port
        }
        try
        {
            await server.StartAsync(cancellationToken).ConfigureAwait(false);
            _started = true;
        }
        catch (Exception ex) when (StartupFailures.IsBindFailure(ex))
        {
            failures.ListenerFailed("Broker:Tcp", tcp.Value.Address, tcp.Value.Port, ex);
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => _started ? server.StopAsync(cancellationToken) : Task.CompletedTask;
}
