using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.RegularExpressions;

namespace Broker.Attack;

/// <summary>
/// A fresh broker process for one attack: the published binary, run with `dotnet` from a directory of its own that
/// holds a copy of the repository's appsettings.json (so log levels are the shipped ones), listening on 127.0.0.1 and
/// ports chosen by the kernel, persistence off, stdout and stderr into one log file whose size is what the probe
/// reports. Optionally under `prlimit --nofile=N:N`. Killed (SIGKILL) on dispose.
/// </summary>
internal sealed partial class BrokerUnderTest : IDisposable
{
    private readonly Process _process;

    private BrokerUnderTest(Process process, string directory, string logPath)
    {
        _process = process;
        Directory = directory;
        LogPath = logPath;
    }

    public string Directory { get; }
    public string LogPath { get; }
    public int Pid => _process.Id;
    public IPEndPoint MqttEndPoint { get; private set; } = null!;
    public Uri HttpBase { get; private set; } = null!;
    public bool HasExited => _process.HasExited;
    public long LogBytes => new FileInfo(LogPath).Length;

    public static async Task<BrokerUnderTest> StartAsync(string brokerDll, string appSettings, int? openFiles, IEnumerable<string> extraArgs,
        IReadOnlyDictionary<string, string>? files = null)
    {
        string directory = Path.Combine(Path.GetTempPath(), "attack-" + Guid.NewGuid().ToString("N")[..8]);
        System.IO.Directory.CreateDirectory(directory);
        File.Copy(appSettings, Path.Combine(directory, "appsettings.json"));
        foreach (var (name, content) in files ?? new Dictionary<string, string>())
        {
            File.WriteAllText(Path.Combine(directory, name), content);
        }
        string logPath = Path.Combine(directory, "broker.log");
        var args = new List<string>
        {
            brokerDll,
            "--Broker:Tcp:Address=127.0.0.1", "--Broker:Tcp:Port=0",
            "--Broker:Metrics:Address=127.0.0.1", "--Broker:Metrics:Port=0",
            "--Broker:Persistence:Enabled=false",
        };
        args.AddRange(extraArgs);
        // exec: the pid we hold is the broker's own (prlimit execs its command too), so /proc/PID is the broker.
        string command = "exec " + (openFiles is int n ? $"prlimit --nofile={n}:{n} " : "") + "dotnet "
            + string.Join(' ', args.Select(Quote)) + " >" + Quote(logPath) + " 2>&1";
        var start = new ProcessStartInfo("bash") { WorkingDirectory = directory, UseShellExecute = false };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(command);
        var process = Process.Start(start) ?? throw new InvalidOperationException("could not start bash");
        var broker = new BrokerUnderTest(process, directory, logPath);
        if (Environment.GetEnvironmentVariable("ATTACK_PIDFILE") is { Length: > 0 } pidFile)
        {
            // run.sh kills this pid if the probe itself is killed before it could.
            File.WriteAllText(pidFile, process.Id.ToString(CultureInfo.InvariantCulture));
        }
        try
        {
            var deadline = Stopwatch.StartNew();
            while (true)
            {
                string log = File.Exists(logPath) ? ReadShared(logPath) : "";
                var mqtt = MqttLine().Match(log);
                var http = HttpLine().Match(log);
                if (mqtt.Success && http.Success)
                {
                    broker.MqttEndPoint = new IPEndPoint(IPAddress.Loopback, int.Parse(mqtt.Groups[1].Value, CultureInfo.InvariantCulture));
                    broker.HttpBase = new Uri($"http://127.0.0.1:{http.Groups[1].Value}/");
                    return broker;
                }
                if (process.HasExited || deadline.Elapsed > TimeSpan.FromSeconds(60))
                {
                    throw new InvalidOperationException($"the broker did not start (exited: {process.HasExited}); log:\n{log}");
                }
                await Task.Delay(100);
            }
        }
        catch
        {
            broker.Dispose();
            throw;
        }
    }

    public string ReadLog() => ReadShared(LogPath);

    private static string ReadShared(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        return new StreamReader(stream).ReadToEnd();
    }

    /// <summary>Resident set (VmRSS) in bytes and CPU time (user + system) in seconds, from /proc; null once gone.</summary>
    public (long RssBytes, double CpuSeconds)? Sample()
    {
        try
        {
            long rss = 0;
            foreach (var line in File.ReadLines($"/proc/{Pid}/status"))
            {
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                {
                    rss = long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
                }
            }
            string stat = File.ReadAllText($"/proc/{Pid}/stat");
            // Fields after the command name (which may hold spaces) start at state: utime and stime are the 12th and 13th.
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            double ticks = long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
            return (rss, ticks / ClockTicksPerSecond);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            return null;
        }
    }

    /// <summary>Open descriptors of the broker (entries of /proc/PID/fd).</summary>
    public int OpenDescriptors()
    {
        try
        {
            return System.IO.Directory.GetFileSystemEntries($"/proc/{Pid}/fd").Length;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return -1;
        }
    }

    private static readonly double ClockTicksPerSecond = ReadClockTicks();

    private static double ReadClockTicks()
    {
        try
        {
            var p = Process.Start(new ProcessStartInfo("getconf", "CLK_TCK") { RedirectStandardOutput = true })!;
            string text = p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            return double.Parse(text.Trim(), CultureInfo.InvariantCulture);
        }
        catch (Exception)
        {
            return 100;
        }
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
        catch (InvalidOperationException)
        {
        }
        _process.Dispose();
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private static string Quote(string s) => "'" + s.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    [GeneratedRegex(@"MQTT listener on 127\.0\.0\.1:(\d+)")]
    private static partial Regex MqttLine();

    [GeneratedRegex(@"HTTP endpoint on http://127\.0\.0\.1:(\d+)")]
    private static partial Regex HttpLine();
}

/// <summary>Samples the broker's RSS and CPU every 200 ms; marks let a probe read CPU over a window.</summary>
internal sealed class ProcessSampler : IAsyncDisposable
{
    private readonly BrokerUnderTest _broker;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private readonly object _lock = new();
    private long _peakRss;
    private long _lastRss;
    private double _lastCpu;

    public ProcessSampler(BrokerUnderTest broker)
    {
        _broker = broker;
        var first = broker.Sample() ?? throw new InvalidOperationException("the broker is gone");
        (_peakRss, _lastRss, _lastCpu) = (first.RssBytes, first.RssBytes, first.CpuSeconds);
        _loop = Task.Run(LoopAsync);
    }

    public long PeakRss
    {
        get
        {
            lock (_lock)
            {
                return _peakRss;
            }
        }
    }

    public long CurrentRss => Now().Rss;

    /// <summary>Starts a new peak from the current RSS (the baseline of an attack).</summary>
    public long ResetPeak()
    {
        var (rss, _) = Now();
        lock (_lock)
        {
            _peakRss = rss;
        }
        return rss;
    }

    public (long Rss, double Cpu) Now()
    {
        var sample = _broker.Sample();
        lock (_lock)
        {
            if (sample is { } s)
            {
                (_lastRss, _lastCpu) = (s.RssBytes, s.CpuSeconds);
                _peakRss = Math.Max(_peakRss, s.RssBytes);
            }
            return (_lastRss, _lastCpu);
        }
    }

    private async Task LoopAsync()
    {
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(200));
        try
        {
            while (await timer.WaitForNextTickAsync(_stop.Token))
            {
                Now();
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _loop;
        _stop.Dispose();
    }
}
