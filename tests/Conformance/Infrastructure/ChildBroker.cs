using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;

namespace Conformance.Infrastructure;

/// <summary>
/// The broker's own binary (the one Conformance references) run with `dotnet` as a child process on loopback and
/// ephemeral ports, so that a test can stop it (SIGTERM: the normal shutdown) or kill it (SIGKILL: a crash) and start
/// it again on the same store. Output is read all along (a full pipe would block the broker's logger); the process is
/// killed on dispose if it still runs.
/// </summary>
internal sealed partial class ChildBroker : IDisposable
{
    public static readonly TimeSpan StartBound = TimeSpan.FromSeconds(60);
    private const int SigTerm = 15;

    private readonly Process _process;
    private readonly ConcurrentQueue<string> _lines = new();
    private readonly TaskCompletionSource<IPEndPoint> _endPoint = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private TaskCompletionSource _lineAdded = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private ChildBroker(Process process)
    {
        _process = process;
    }

    /// <summary>The MQTT endpoint, once the listener line was logged; faults if the broker exits first.</summary>
    public Task<IPEndPoint> EndPoint => _endPoint.Task;

    public string Output => string.Join('\n', _lines);

    /// <summary>Starts a broker on <paramref name="storeDirectory"/> (null: persistence off) with more arguments.</summary>
    public static ChildBroker Start(string? storeDirectory, params string[] args)
    {
        string dll = typeof(Broker.Hosting.BrokerHost).Assembly.Location;
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Path.GetDirectoryName(dll)!,
        };
        start.ArgumentList.Add(dll);
        foreach (var arg in (string[])[
            "--Broker:Tcp:Address=127.0.0.1", "--Broker:Tcp:Port=0", "--Broker:Metrics:Address=127.0.0.1", "--Broker:Metrics:Port=0",
            storeDirectory is null ? "--Broker:Persistence:Enabled=false" : "--Broker:Persistence:Path=" + storeDirectory, .. args])
        {
            start.ArgumentList.Add(arg);
        }
        var process = new Process { StartInfo = start };
        var broker = new ChildBroker(process);
        process.OutputDataReceived += (_, e) => broker.OnLine(e.Data);
        process.ErrorDataReceived += (_, e) => broker.OnLine(e.Data);
        process.Exited += (_, _) => broker._endPoint.TrySetException(new InvalidOperationException("the broker exited: " + broker.Output));
        process.EnableRaisingEvents = true;
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return broker;
    }

    /// <summary>Starts a broker and waits (bounded) until it listens.</summary>
    public static async Task<(ChildBroker Broker, IPEndPoint EndPoint)> StartListeningAsync(string? storeDirectory, params string[] args)
    {
        var broker = Start(storeDirectory, args);
        try
        {
            return (broker, await broker.EndPoint.WaitAsync(StartBound));
        }
        catch
        {
            broker.Dispose();
            throw;
        }
    }

    /// <summary>Waits (bounded) for an output line containing <paramref name="text"/>: what the broker did that the wire does not show.</summary>
    public async Task WaitForOutputAsync(string text, TimeSpan timeout)
    {
        using var bound = new CancellationTokenSource(timeout);
        while (true)
        {
            var added = Volatile.Read(ref _lineAdded);
            if (_lines.Any(l => l.Contains(text, StringComparison.Ordinal)))
            {
                return;
            }
            try
            {
                await added.Task.WaitAsync(bound.Token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"no output line containing '{text}' within {timeout}. Output:\n{Output}");
            }
        }
    }

    /// <summary>The normal shutdown (SIGTERM, as systemd and docker stop do); returns the exit code.</summary>
    public async Task<int> StopAsync()
    {
        if (kill(_process.Id, SigTerm) != 0 && !_process.HasExited)
        {
            throw new InvalidOperationException($"kill({_process.Id}, SIGTERM) failed: errno {Marshal.GetLastPInvokeError()}");
        }
        return await WaitForExitAsync();
    }

    /// <summary>A crash: SIGKILL, no clean-up of any kind in the broker.</summary>
    public async Task CrashAsync()
    {
        _process.Kill(entireProcessTree: true);
        await WaitForExitAsync();
    }

    public async Task<int> WaitForExitAsync()
    {
        using var bound = new CancellationTokenSource(StartBound);
        await _process.WaitForExitAsync(bound.Token);
        // The asynchronous readers may still deliver the last lines: WaitForExit() without a timeout waits for them.
        _process.WaitForExit();
        return _process.ExitCode;
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(TimeSpan.FromSeconds(10));
            }
        }
        finally
        {
            _process.Dispose();
        }
    }

    private void OnLine(string? line)
    {
        if (line is null)
        {
            return;
        }
        _lines.Enqueue(line);
        Interlocked.Exchange(ref _lineAdded, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
        if (ListenerLine().Match(line) is { Success: true } match)
        {
            _endPoint.TrySetResult(new IPEndPoint(IPAddress.Loopback, int.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture)));
        }
    }

    [GeneratedRegex(@"MQTT listener on 127\.0\.0\.1:(\d+)")]
    private static partial Regex ListenerLine();

    // DllImport rather than LibraryImport: the latter needs AllowUnsafeBlocks in the test project.
    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int signal);
}
