using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;

namespace Conformance.Infrastructure;

/// <summary>
/// The broker's own binary (the one Conformance references) run with `dotnet` as a child process on loopback and
/// ephemeral ports, so that a test can stop it (SIGTERM: the normal shutdown) or kill it (SIGKILL: a crash) and start
/// it again on the same store, freeze it (SIGSTOP), or run it under a descriptor limit. Output is read all along (a full
/// pipe would block the broker's logger); the process is resumed and killed on dispose if it still runs.
/// </summary>
internal sealed partial class ChildBroker : IDisposable
{
    public static readonly TimeSpan StartBound = TimeSpan.FromSeconds(60);
    private const int SigTerm = 15;
    private const int SigCont = 18; // Linux x86-64 and arm64

    private readonly Process _process;
    private readonly ConcurrentQueue<string> _lines = new();
    private readonly TaskCompletionSource<IPEndPoint> _endPoint = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource<IPEndPoint> _httpEndPoint = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private TaskCompletionSource _lineAdded = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private ChildBroker(Process process)
    {
        _process = process;
    }

    /// <summary>The MQTT endpoint, once the listener line was logged; faults if the broker exits first.</summary>
    public Task<IPEndPoint> EndPoint => _endPoint.Task;

    /// <summary>The HTTP endpoint (metrics, health), once its line was logged; faults if the broker exits first.</summary>
    public Task<IPEndPoint> HttpEndPoint => _httpEndPoint.Task;

    public string Output => string.Join('\n', _lines);

    public bool HasExited => _process.HasExited;

    /// <summary>Starts a broker on <paramref name="storeDirectory"/> (null: persistence off) with more arguments.</summary>
    public static ChildBroker Start(string? storeDirectory, params string[] args) => Start(openFilesLimit: null, storeDirectory, args);

    /// <summary>
    /// Starts a broker without a store under `bash -c 'ulimit -n N; exec dotnet ...'`, so that the process held here is
    /// the broker itself.
    /// </summary>
    public static ChildBroker StartWithOpenFilesLimit(int openFiles, params string[] args) => Start(openFiles, storeDirectory: null, args);

    private static ChildBroker Start(int? openFilesLimit, string? storeDirectory, string[] args)
    {
        string dll = typeof(Broker.Hosting.BrokerHost).Assembly.Location;
        string dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet";
        var start = new ProcessStartInfo(openFilesLimit is null ? dotnet : "bash")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Path.GetDirectoryName(dll)!,
        };
        if (openFilesLimit is { } limit)
        {
            start.ArgumentList.Add("-c");
            start.ArgumentList.Add($"ulimit -n {limit} && exec \"$0\" \"$@\"");
            start.ArgumentList.Add(dotnet);
        }
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
        process.Exited += (_, _) =>
        {
            var exited = new InvalidOperationException("the broker exited: " + broker.Output);
            broker._endPoint.TrySetException(exited);
            broker._httpEndPoint.TrySetException(exited);
        };
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

    /// <summary>Sends <paramref name="signal"/> (e.g. SIGSTOP / SIGCONT to freeze and resume the broker).</summary>
    public void Signal(int signal)
    {
        if (kill(_process.Id, signal) != 0)
        {
            throw new InvalidOperationException($"kill({_process.Id}, {signal}) failed: errno {Marshal.GetLastPInvokeError()}");
        }
    }

    /// <summary>User + system CPU time of the broker process so far, from /proc/PID/stat (USER_HZ is 100 on Linux).</summary>
    public double CpuSeconds()
    {
        string stat = File.ReadAllText($"/proc/{_process.Id}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return (long.Parse(fields[11], System.Globalization.CultureInfo.InvariantCulture)
            + long.Parse(fields[12], System.Globalization.CultureInfo.InvariantCulture)) / 100.0;
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
                // A frozen broker (SIGSTOP) is resumed first, so that nothing of it lingers stopped.
                _ = kill(_process.Id, SigCont);
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
        if (HttpLine().Match(line) is { Success: true } http)
        {
            _httpEndPoint.TrySetResult(new IPEndPoint(IPAddress.Loopback, int.Parse(http.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture)));
        }
    }

    [GeneratedRegex(@"MQTT listener on 127\.0\.0\.1:(\d+)")]
    private static partial Regex ListenerLine();

    [GeneratedRegex(@"HTTP endpoint on http://127\.0\.0\.1:(\d+)")]
    private static partial Regex HttpLine();

    // DllImport rather than LibraryImport: the latter needs AllowUnsafeBlocks in the test project.
    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int signal);
}
