using Broker.Fuzz;
using Broker.Protocol;
using SharpFuzz;

// tests/Fuzz: the codec's fuzz program (see docs/security.md, "Fuzzing the codec").
//   Fuzz               under afl-fuzz: the fork server, one input per execution from stdin
//   Fuzz seed DIR      writes the seed corpus (every sample packet of both versions, plus streams)
//   Fuzz replay PATH.. runs files or directories through the target once, printing the first failure
switch (args)
{
    case ["seed", var directory]:
        return Seeds.Write(directory);
    case ["replay", .. var paths]:
        return Replay(paths);
    case []:
        // Out of process: a stack overflow or a fail-fast in the codec is reported as a crash of this
        // input instead of taking the fork server down.
        Fuzzer.OutOfProcess.Run(stream =>
        {
            using var memory = new MemoryStream();
            stream.CopyTo(memory);
            CodecFuzzTarget.Run(memory.GetBuffer().AsSpan(0, (int)memory.Length));
        });
        return 0;
    default:
        Console.Error.WriteLine("usage: Fuzz [seed DIR | replay PATH...]");
        return 2;
}

static int Replay(string[] paths)
{
    var files = paths.SelectMany(p => Directory.Exists(p) ? Directory.EnumerateFiles(p, "*", SearchOption.AllDirectories) : [p]);
    int count = 0;
    foreach (string file in files.Order(StringComparer.Ordinal))
    {
        try
        {
            CodecFuzzTarget.Run(File.ReadAllBytes(file));
            count++;
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"{file}: {e}");
            return 1;
        }
    }

    Console.WriteLine($"{count} inputs replayed, no failure");
    return 0;
}
