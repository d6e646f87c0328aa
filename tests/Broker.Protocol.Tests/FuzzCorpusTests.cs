using Broker.Fuzz;

namespace Broker.Protocol.Tests;

/// <summary>
/// Replays the committed fuzz corpus (tests/Fuzz/corpus: the seeds, and every input the fuzzer found
/// that failed once) through the fuzz target on every test run, so a fixed finding stays fixed and the
/// target keeps compiling against the codec.
/// </summary>
public sealed class FuzzCorpusTests
{
    public static TheoryData<string> Inputs()
    {
        var data = new TheoryData<string>();
        foreach (string file in Directory.EnumerateFiles(Path.Combine(AppContext.BaseDirectory, "FuzzCorpus"), "*", SearchOption.AllDirectories)
                     .Order(StringComparer.Ordinal))
        {
            data.Add(Path.GetRelativePath(AppContext.BaseDirectory, file));
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Inputs))]
    public void Corpus_input_passes_the_fuzz_target(string file) =>
        CodecFuzzTarget.Run(File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, file)));

    [Fact]
    public void The_corpus_holds_every_seed_and_the_regressions()
    {
        var names = Inputs().Select(row => Path.GetFileName(row.Data)).ToHashSet();
        Assert.Contains("v500-stream", names);
        Assert.True(names.Count >= SamplePackets.Encoded().Count(), $"{names.Count} corpus files");
    }
}
