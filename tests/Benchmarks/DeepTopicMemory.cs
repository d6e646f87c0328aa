using System.Diagnostics;
using Broker.Routing;

namespace Broker.Benchmarks;

/// <summary>
/// What the deep-topic attacks of issue #11 cost the routing structures, measured in process as managed
/// heap growth (GC.GetTotalMemory after a full collection) so that it runs in seconds and means the same
/// on every machine. Inputs are allocated before the baseline: only what the trie keeps is counted.
/// Run: dotnet run -c Release --project tests/Benchmarks -- deep-topics
/// </summary>
internal static class DeepTopicMemory
{
    private sealed record Message(string Topic);

    public static void Run()
    {
        Console.WriteLine("| attack (input bytes) | managed heap growth | per input byte | match time |");
        Console.WriteLine("|---|---|---|---|");

        // 20 retained PUBLISHes to 65,535-byte topics made of '/' (distinct first level each).
        string[] slashTopics = [.. Enumerable.Range(0, 20).Select(i => $"{i:D2}" + new string('/', 65_533))];
        Measure("20 retained topics of 65,535 B of '/'", slashTopics.Sum(t => t.Length), () =>
        {
            var store = new RetainedMessageStore<Message>();
            foreach (string topic in slashTopics)
            {
                store.Set(topic, new Message(topic));
            }

            return store;
        }, store => ((RetainedMessageStore<Message>)store).TryGet(slashTopics[7], out _));

        // One 975 KB SUBSCRIBE: 15 filters of 65,000 B, '+' levels and empty levels.
        string[] deepFilters = [.. Enumerable.Range(0, 15).Select(i => i % 2 == 0
            ? $"{i:D2}" + string.Concat(Enumerable.Repeat("/+", 32_499))
            : $"{i:D2}" + new string('/', 64_998))];
        string deepTopic = "00" + string.Concat(Enumerable.Repeat("/x", 32_499));
        Measure("15 subscriptions to 65,000 B filters ('/+' or '/')", deepFilters.Sum(f => f.Length), () =>
        {
            var tree = new SubscriptionTree<int>();
            foreach (string filter in deepFilters)
            {
                tree.Subscribe(filter, "attacker", 1);
            }

            return tree;
        }, tree => Match((SubscriptionTree<int>)tree, deepTopic) == 1);

        // Within MaxTopicLevels = 128: 1,000 retained topics of 128 levels (unique first level, 127 '/').
        string[] limitTopics = [.. Enumerable.Range(0, 1_000).Select(i => $"{i:D4}" + new string('/', 127))];
        Measure("1,000 retained topics of 128 levels (131 B)", limitTopics.Sum(t => t.Length), () =>
        {
            var store = new RetainedMessageStore<Message>();
            foreach (string topic in limitTopics)
            {
                store.Set(topic, new Message(topic));
            }

            return store;
        }, store => ((RetainedMessageStore<Message>)store).TryGet(limitTopics[500], out _));

        string[] limitFilters = [.. Enumerable.Range(0, 1_000).Select(i => $"{i:D4}" + string.Concat(Enumerable.Repeat("/+", 127)))];
        string limitTopic = "0500" + string.Concat(Enumerable.Repeat("/x", 127));
        Measure("1,000 subscriptions to filters of 128 levels (258 B)", limitFilters.Sum(f => f.Length), () =>
        {
            var tree = new SubscriptionTree<int>();
            foreach (string filter in limitFilters)
            {
                tree.Subscribe(filter, "attacker", 1);
            }

            return tree;
        }, tree => Match((SubscriptionTree<int>)tree, limitTopic) == 1);
    }

    private static void Measure(string name, long inputChars, Func<object> build, Func<object, bool> match)
    {
        long before = GC.GetTotalMemory(forceFullCollection: true);
        var built = build();
        long after = GC.GetTotalMemory(forceFullCollection: true);
        if (!match(built))
        {
            throw new InvalidOperationException($"{name}: the match found nothing");
        }

        var watch = Stopwatch.StartNew();
        int runs = 0;
        while (watch.ElapsedMilliseconds < 200)
        {
            match(built);
            runs++;
        }

        double micros = watch.Elapsed.TotalMicroseconds / runs;
        long growth = after - before;
        Console.WriteLine($"| {name} ({inputChars:N0}) | {growth / 1048576.0:N1} MB | {(double)growth / inputChars:N1} B | {micros:N1} µs |");
        GC.KeepAlive(built);
    }

    private static int Match(SubscriptionTree<int> tree, string topic)
    {
        var visitor = new CountingVisitor();
        tree.Match(topic.AsSpan(), ref visitor);
        return visitor.Visits;
    }

    private struct CountingVisitor : ISubscriptionVisitor<int>
    {
        public int Visits;

        public readonly bool PrefersSharedMember(int value) => true;

        public void Visit(string clientId, int value, string? shareName) => Visits += value;
    }
}
