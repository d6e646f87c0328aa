using System.Buffers;

namespace Broker.Diagnostics;

/// <summary>
/// <c>$SYS/</c> belongs to the broker: it publishes there and clients only read. [MQTT-4.7.2-1] already keeps
/// <c>#</c> and <c>+</c> subscriptions from matching it.
/// </summary>
internal static class SysTopicRules
{
    public const string Prefix = "$SYS/";

    private static ReadOnlySpan<byte> PrefixUtf8 => "$SYS/"u8;

    public static bool IsReserved(string topic) => IsReserved(topic.AsSpan());

    /// <summary>The one definition the ACL check (<c>ClientPermissions.CanPublish</c>) and the tests use.</summary>
    public static bool IsReserved(ReadOnlySpan<char> topic) =>
        topic.StartsWith("$SYS", StringComparison.Ordinal) && (topic.Length == 4 || topic[4] == '/');

    /// <summary>The topic as received (UTF-8, possibly segmented), or the one a topic alias stands for.</summary>
    public static bool IsReserved(in ReadOnlySequence<byte> topicUtf8, string? aliasedTopic)
    {
        if (aliasedTopic is not null)
        {
            return IsReserved(aliasedTopic);
        }
        if (topicUtf8.Length < 4 || topicUtf8.FirstSpan.Length == 0 || topicUtf8.FirstSpan[0] != (byte)'$')
        {
            return false;
        }
        Span<byte> head = stackalloc byte[5];
        int n = (int)Math.Min(5, topicUtf8.Length);
        topicUtf8.Slice(0, n).CopyTo(head);
        return head[..n].SequenceEqual(PrefixUtf8[..n]) && (n == 5 || topicUtf8.Length == 4);
    }
}
