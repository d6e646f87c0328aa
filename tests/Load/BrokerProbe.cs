using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;

namespace Broker.Load;

internal sealed record ProbeSample(string Phase, double AtSeconds, long? RssKb, double? CpuSeconds);

/// <summary>
/// Samples the broker's resident set (/proc/PID/status VmRSS) and CPU time (/proc/PID/stat
/// utime + stime) at each phase of the run. Without a pid it only records when phases happened.
/// </summary>
internal sealed class BrokerProbe(int? pid)
{
    private const int SysconfClockTicks = 2; // _SC_CLK_TCK on Linux
    private readonly long _startTicks = Stopwatch.GetTimestamp();
    private readonly Lock _lock = new();
    private readonly List<ProbeSample> _samples = [];

    public int? Pid => pid;

    public IReadOnlyList<ProbeSample> Samples
    {
        get
        {
            lock (_lock)
            {
                return _samples.ToArray();
            }
        }
    }

    public ProbeSample? Find(string phase) => Samples.LastOrDefault(s => s.Phase == phase);

    public void Sample(string phase)
    {
        var sample = new ProbeSample(phase, Stopwatch.GetElapsedTime(_startTicks).TotalSeconds, ReadRssKb(), ReadCpuSeconds());
        lock (_lock)
        {
            _samples.Add(sample);
        }
    }

    private long? ReadRssKb()
    {
        if (pid is null)
        {
            return null;
        }

        try
        {
            foreach (string line in File.ReadLines($"/proc/{pid}/status"))
            {
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                {
                    return long.Parse(line["VmRSS:".Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
                }
            }
        }
        catch (IOException)
        {
        }

        return null;
    }

    private double? ReadCpuSeconds()
    {
        if (pid is null)
        {
            return null;
        }

        try
        {
            string stat = File.ReadAllText($"/proc/{pid}/stat");
            // The command name may contain spaces; fields are counted after its closing parenthesis.
            string[] fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            long utime = long.Parse(fields[11], CultureInfo.InvariantCulture);
            long stime = long.Parse(fields[12], CultureInfo.InvariantCulture);
            return (utime + stime) / (double)ClockTicksPerSecond();
        }
        catch (IOException)
        {
            return null;
        }
    }

    private static long ClockTicksPerSecond()
    {
        try
        {
            long ticks = sysconf(SysconfClockTicks);
            return ticks > 0 ? ticks : 100;
        }
        catch (DllNotFoundException)
        {
            return 100;
        }
    }

    [DllImport("libc", SetLastError = false)]
    private static extern long sysconf(int name);
}
