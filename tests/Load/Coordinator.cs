using System.Diagnostics;
using System.Net;
using System.Text.Json;

namespace Broker.Load;

/// <summary>
/// Spawns this program as worker processes, each with a slice of the clients and its own
/// loopback source address (each address has its own ~28K ephemeral ports, each process its own
/// open-files limit), releases them through the phase barriers together, and merges their results.
/// </summary>
internal sealed class Coordinator
{
    private readonly LoadOptions _options;
    private readonly string[] _args;
    private readonly BrokerProbe _probe;
    private readonly Lock _lock = new();
    private readonly List<WorkerProcess> _workers = [];
    private readonly long _startTicks = Stopwatch.GetTimestamp();
    private string _phase = "starting";

    private readonly ProgressView? _progress;

    public Coordinator(LoadOptions options, string[] args, BrokerProbe probe, ProgressView? progress = null)
    {
        _options = options;
        _args = args;
        _probe = probe;
        _progress = progress;
    }

    public async Task<(WorkerResult Result, int WorkersFailed)> RunAsync(CancellationToken cancellationToken)
    {
        int workerCount = _options.WorkerCount;
        int total = _options.TotalClients;
        int offset = 0;
        string runId = _options.RunId;
        for (int i = 0; i < workerCount; i++)
        {
            int count = total / workerCount + (i < total % workerCount ? 1 : 0);
            double share = count / (double)total;
            var arguments = new List<string> { "worker" };
            arguments.AddRange(_args);
            // Later flags win in the parser, so these override the user's values for the slice.
            arguments.AddRange([
                "--worker-index", i.ToString(),
                "--client-offset", offset.ToString(),
                "--client-count", count.ToString(),
                "--source-address", SourceAddress(i).ToString(),
                "--run-id", runId,
                "--rate", (_options.Rate * share).ToString("R", System.Globalization.CultureInfo.InvariantCulture),
                "--max-pending", (_options.MaxPendingConnects == 0 ? 0 : Math.Max(1, (int)(_options.MaxPendingConnects * share))).ToString(),
                "--deadline", Math.Max(1, _options.Deadline.TotalSeconds - 3).ToString("R", System.Globalization.CultureInfo.InvariantCulture),
            ]);
            _workers.Add(WorkerProcess.Start(i, arguments, this));
            offset += count;
        }

        using var progressTimer = new PeriodicTimer(TimeSpan.FromSeconds(1), TimeProvider.System);
        Task progress = _progress is not null ? PrintProgressAsync(progressTimer, cancellationToken) : Task.CompletedTask;
        try
        {
            await Task.WhenAll(_workers.Select(w => w.Exited)).WaitAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine("deadline reached: killing workers");
            foreach (WorkerProcess worker in _workers)
            {
                worker.Kill();
            }
        }

        progressTimer.Dispose();
        await progress.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        List<WorkerResult> results = _workers.Where(w => w.Result is not null).Select(w => w.Result!).ToList();
        return (WorkerResult.Merge(results), _workers.Count - results.Count);
    }

    private IPAddress SourceAddress(int worker)
    {
        byte[] bytes = _options.SourceBase.GetAddressBytes();
        uint value = (uint)(bytes[0] << 24 | bytes[1] << 16 | bytes[2] << 8 | bytes[3]) + (uint)worker;
        return new IPAddress([(byte)(value >> 24), (byte)(value >> 16), (byte)(value >> 8), (byte)value]);
    }

    private void OnPhaseReached()
    {
        List<WorkerProcess> live;
        string? phase;
        lock (_lock)
        {
            live = _workers.Where(w => !w.HasExited).ToList();
            phase = live.Count > 0 && live.All(w => w.WaitingAt is not null && w.WaitingAt == live[0].WaitingAt) ? live[0].WaitingAt : null;
            if (phase is null)
            {
                return;
            }

            foreach (WorkerProcess worker in live)
            {
                worker.WaitingAt = null;
            }

            _phase = phase;
        }

        _probe.Sample(phase);
        foreach (WorkerProcess worker in live)
        {
            worker.Release();
        }
    }

    private async Task PrintProgressAsync(PeriodicTimer timer, CancellationToken cancellationToken)
    {
        while (await timer.WaitForNextTickAsync(cancellationToken))
        {
            ProgressSnapshot total = ProgressSnapshot.Sum(_workers.Select(w => w.LastProgress));
            _progress!.Update(total, $"{_phase} ({_workers.Count(w => !w.HasExited)}w)");
        }
    }

    private sealed class WorkerProcess
    {
        private readonly Process _process;
        private readonly Coordinator _owner;
        private readonly int _index;

        private WorkerProcess(int index, Process process, Coordinator owner)
        {
            _index = index;
            _process = process;
            _owner = owner;
        }

        public string? WaitingAt { get; set; }
        public bool HasExited { get; private set; }
        public WorkerResult? Result { get; private set; }
        public ProgressSnapshot LastProgress { get; private set; } = new(0, 0, 0, 0, 0, 0, 0);
        public Task Exited { get; private set; } = Task.CompletedTask;

        public static WorkerProcess Start(int index, IEnumerable<string> arguments, Coordinator owner)
        {
            var start = new ProcessStartInfo
            {
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            string self = Environment.ProcessPath ?? throw new InvalidOperationException("cannot find this program's path to start workers");
            start.FileName = self;
            if (Path.GetFileNameWithoutExtension(self) == "dotnet")
            {
                // Started as "dotnet Broker.Load.dll": workers need the assembly path too.
                start.ArgumentList.Add(typeof(Coordinator).Assembly.Location);
            }

            foreach (string argument in arguments)
            {
                start.ArgumentList.Add(argument);
            }

            Process process = Process.Start(start) ?? throw new InvalidOperationException("worker process did not start");
            var worker = new WorkerProcess(index, process, owner);
            worker.Exited = worker.PumpAsync();
            return worker;
        }

        public void Release()
        {
            try
            {
                _process.StandardInput.WriteLine("go");
                _process.StandardInput.Flush();
            }
            catch (IOException)
            {
            }
        }

        public void Kill()
        {
            try
            {
                _process.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
            }
        }

        private async Task PumpAsync()
        {
            Task errors = ForwardErrorsAsync();
            while (await _process.StandardOutput.ReadLineAsync() is { } line)
            {
                if (line.StartsWith(WorkerChannel.PhasePrefix, StringComparison.Ordinal))
                {
                    lock (_owner._lock)
                    {
                        WaitingAt = line[WorkerChannel.PhasePrefix.Length..];
                    }

                    _owner.OnPhaseReached();
                }
                else if (line.StartsWith(WorkerChannel.ProgressPrefix, StringComparison.Ordinal))
                {
                    LastProgress = JsonSerializer.Deserialize<ProgressSnapshot>(line[WorkerChannel.ProgressPrefix.Length..]) ?? LastProgress;
                }
                else if (line.StartsWith(WorkerChannel.ResultPrefix, StringComparison.Ordinal))
                {
                    Result = JsonSerializer.Deserialize<WorkerResult>(line[WorkerChannel.ResultPrefix.Length..]);
                }
                else
                {
                    Console.Error.WriteLine($"[worker {_index}] {line}");
                }
            }

            await errors;
            await _process.WaitForExitAsync();
            lock (_owner._lock)
            {
                HasExited = true;
                WaitingAt = null;
            }

            if (_process.ExitCode != 0)
            {
                Console.Error.WriteLine($"[worker {_index}] exited with code {_process.ExitCode}");
            }

            // The barrier may now be complete without this worker.
            _owner.OnPhaseReached();
        }

        private async Task ForwardErrorsAsync()
        {
            while (await _process.StandardError.ReadLineAsync() is { } line)
            {
                Console.Error.WriteLine($"[worker {_index}] {line}");
            }
        }
    }
}
