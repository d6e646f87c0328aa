using System.Net.Sockets;
using Broker.Diagnostics;

namespace Broker.Transport;

/// <summary>
/// Keeps the last descriptors of the process for the rest of it. The MQTT listener stops accepting while fewer than
/// <see cref="Reserve"/> descriptors are free, so that MQTT clients alone can never exhaust them: the HTTP listener
/// (whose accept loop retries at once on EMFILE, spinning a core while a /readyz probe waits in its backlog), the
/// metrics scrape (which reads /proc), the store and the log keep working. The check is free: Unix hands out the lowest
/// free descriptor, so an accepted socket numbered at or above limit - Reserve means fewer than Reserve are left.
/// Inactive where the limit is unknown (not Linux, or unlimited).
/// </summary>
internal sealed class DescriptorHeadroom
{
    /// <summary>Enough for several HTTP requests and a metrics scrape at once; a small share of any usable limit.</summary>
    public const int Reserve = 32;

    // Descriptors numbered at or above this leave fewer than Reserve free; long.MaxValue when inactive.
    private readonly long _threshold;

    /// <param name="limit">The soft RLIMIT_NOFILE, null when unknown.</param>
    public DescriptorHeadroom(long? limit)
    {
        _threshold = limit is long l && l > 2 * Reserve ? l - Reserve : long.MaxValue;
    }

    /// <summary>For the process as it runs now (its limit as /proc/self/limits gives it).</summary>
    public static DescriptorHeadroom ForThisProcess() => new(ProcessDescriptors.Limit());

    public bool IsActive => _threshold != long.MaxValue;

    /// <summary>True when <paramref name="accepted"/> took one of the last <see cref="Reserve"/> descriptors.</summary>
    public bool IsLow(Socket accepted)
    {
        // SafeHandle marks the handle as exposed; accepted sockets are already marked by their untracked options
        // (kernel keep-alive), and the mark only matters for client connects.
        return IsActive && IsLow((long)accepted.SafeHandle.DangerousGetHandle());
    }

    public bool IsLow(long descriptor) => descriptor >= _threshold;

    /// <summary>True while fewer than <see cref="Reserve"/> descriptors are free (one probe descriptor opened and closed).</summary>
    public bool IsLowNow()
    {
        if (!IsActive)
        {
            return false;
        }
        try
        {
            using var probe = File.OpenHandle("/dev/null", FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            return IsLow((long)probe.DangerousGetHandle());
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // EMFILE/ENFILE: none left at all.
            return true;
        }
    }
}
