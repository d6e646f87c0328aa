using Microsoft.Extensions.Logging;

namespace Broker.Security;

/// <summary>
/// A value loaded from one or more files and reloaded when any of them changes, without restarting the broker.
/// Two ways notice a change: a FileSystemWatcher on the files' directories (debounced, so an editor's several
/// writes cause one reload), and <see cref="CheckIfDue"/>, called from connects, which compares modification
/// time and size at most once per interval. The second one also catches what inotify misses (bind mounts,
/// network file systems, Kubernetes secrets swapped through a symlink).
/// A file that changed but cannot be loaded is logged and the previous value stays in force.
/// </summary>
internal sealed class WatchedFile<T> : IDisposable
    where T : class
{
    private static readonly TimeSpan Debounce = TimeSpan.FromMilliseconds(300);

    private readonly string[] _paths;
    private readonly Func<T> _load;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly string _setting;
    private readonly long _checkIntervalTicks;
    private readonly Lock _gate = new();
    private readonly List<FileSystemWatcher> _watchers = [];
    private readonly ITimer? _debounceTimer;
    private (long WriteTicks, long Length)[] _stamps;
    private T _current;
    private long _version;
    private long _nextCheck;

    /// <param name="setting">The configuration key named in log lines, e.g. Broker:Auth:PasswordFile.</param>
    /// <exception cref="Exception">Whatever <paramref name="load"/> throws: at start-up the file must be usable.</exception>
    public WatchedFile(IReadOnlyList<string> paths, Func<T> load, TimeProvider time, ILogger logger, string setting, TimeSpan checkInterval, bool watch = true)
    {
        _paths = paths.Select(Path.GetFullPath).ToArray();
        _load = load;
        _time = time;
        _logger = logger;
        _setting = setting;
        _checkIntervalTicks = (long)(checkInterval.TotalSeconds * time.TimestampFrequency);
        _stamps = Stamp();
        _current = load();
        _nextCheck = time.GetTimestamp() + _checkIntervalTicks;
        if (watch)
        {
            _debounceTimer = time.CreateTimer(_ => CheckNow(), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            StartWatching(checkInterval);
        }
    }

    public T Current => Volatile.Read(ref _current);

    /// <summary>Incremented by every successful reload; readers compare it to notice a new value cheaply.</summary>
    public long Version => Volatile.Read(ref _version);

    /// <summary>Raised after a successful reload, on the thread that noticed the change.</summary>
    public event Action<T>? Reloaded;

    /// <summary>Reloads if any file's modification time or size changed; true when a new value is in force.</summary>
    public bool CheckNow()
    {
        T next;
        lock (_gate)
        {
            var stamps = Stamp();
            if (stamps.AsSpan().SequenceEqual(_stamps))
            {
                return false;
            }
            // Remembered even when loading fails, so a broken file is reported once, not at every check.
            _stamps = stamps;
            try
            {
                next = _load();
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or SecurityFileException
                or System.Security.Cryptography.CryptographicException or ArgumentException)
            {
                SecurityLog.ReloadFailed(_logger, _setting, ex.Message);
                return false;
            }
            Volatile.Write(ref _current, next);
            Interlocked.Increment(ref _version);
        }
        SecurityLog.Reloaded(_logger, _setting, string.Join(", ", _paths));
        Reloaded?.Invoke(next);
        return true;
    }

    /// <summary>
    /// Cheap when not due (one timestamp read). When due, the stat per file (and a reload, if one changed) runs on
    /// the thread pool: callers are CONNECTs on the socket engine's thread, which must never wait for a disk.
    /// The CONNECT that noticed it is decided with the version in force; the next ones see the new one.
    /// </summary>
    public void CheckIfDue()
    {
        long now = _time.GetTimestamp();
        long due = Volatile.Read(ref _nextCheck);
        if (now < due || Interlocked.CompareExchange(ref _nextCheck, now + _checkIntervalTicks, due) != due)
        {
            return;
        }
        ThreadPool.UnsafeQueueUserWorkItem(static file => file.CheckNow(), this, preferLocal: false);
    }

    private (long, long)[] Stamp()
    {
        var stamps = new (long, long)[_paths.Length];
        for (int i = 0; i < _paths.Length; i++)
        {
            var info = new FileInfo(_paths[i]);
            stamps[i] = info.Exists ? (info.LastWriteTimeUtc.Ticks, info.Length) : (-1, -1);
        }
        return stamps;
    }

    private void StartWatching(TimeSpan checkInterval)
    {
        foreach (string directory in _paths.Select(p => Path.GetDirectoryName(p)!).Distinct(StringComparer.Ordinal))
        {
            try
            {
                // No name filter: a Kubernetes secret changes by swapping a "..data" symlink, not the file itself.
                var watcher = new FileSystemWatcher(directory)
                {
                    NotifyFilter = NotifyFilters.FileName | NotifyFilters.LastWrite | NotifyFilters.Size | NotifyFilters.CreationTime | NotifyFilters.DirectoryName,
                    IncludeSubdirectories = false,
                };
                watcher.Changed += OnFileSystemEvent;
                watcher.Created += OnFileSystemEvent;
                watcher.Deleted += OnFileSystemEvent;
                watcher.Renamed += OnFileSystemEvent;
                watcher.EnableRaisingEvents = true;
                _watchers.Add(watcher);
            }
            catch (Exception ex) when (ex is IOException or ArgumentException or PlatformNotSupportedException or UnauthorizedAccessException)
            {
                // inotify instance limits are per user: fall back to the checks at connects.
                SecurityLog.WatchFailed(_logger, directory, _setting, ex.Message, checkInterval.TotalSeconds);
            }
        }
    }

    private void OnFileSystemEvent(object sender, FileSystemEventArgs e) =>
        _debounceTimer?.Change(Debounce, Timeout.InfiniteTimeSpan);

    public void Dispose()
    {
        foreach (var watcher in _watchers)
        {
            watcher.Dispose();
        }
        _debounceTimer?.Dispose();
    }
}
