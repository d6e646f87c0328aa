using System.Globalization;

namespace Broker.Diagnostics;

/// <summary>
/// The process's file descriptors, read from Linux's /proc (null elsewhere). Every MQTT connection is one; the
/// runtime and the HTTP listener hold ~200 before the first client, and .NET raises the soft limit to the hard one
/// at start-up, so the limit that matters is the hard one the service manager or container gives.
/// </summary>
internal static class ProcessDescriptors
{
    public static long? Open()
    {
        try
        {
            // Counting entries opens one descriptor for the directory itself: not one the broker holds.
            return Directory.Exists("/proc/self/fd") ? Math.Max(0, Directory.EnumerateFileSystemEntries("/proc/self/fd").LongCount() - 1) : null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>The soft RLIMIT_NOFILE ("Max open files" in /proc/self/limits); null when unknown or unlimited.</summary>
    public static long? Limit()
    {
        try
        {
            if (!File.Exists("/proc/self/limits"))
            {
                return null;
            }
            foreach (var line in File.ReadLines("/proc/self/limits"))
            {
                if (line.StartsWith("Max open files", StringComparison.Ordinal))
                {
                    var words = line["Max open files".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
                    return words.Length > 0 && long.TryParse(words[0], NumberStyles.None, CultureInfo.InvariantCulture, out long soft) ? soft : null;
                }
            }
            return null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
