namespace Broker.Diagnostics;

/// <summary>
/// <c>$SYS/</c> belongs to the broker: it publishes there and clients only read. [MQTT-4.7.2-1] already keeps
/// <c>#</c> and <c>+</c> subscriptions from matching it.
/// </summary>
internal static class SysTopicRules
{
    /// <summary>"$SYS" and everything below it; the one definition the ACL check (<c>ClientPermissions.CanPublish</c>) uses.</summary>
    public static bool IsReserved(ReadOnlySpan<char> topic) =>
        topic.StartsWith("$SYS", StringComparison.Ordinal) && (topic.Length == 4 || topic[4] == '/');
}
