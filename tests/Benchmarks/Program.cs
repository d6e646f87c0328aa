using BenchmarkDotNet.Running;
using Broker.Benchmarks;

if (args is ["deep-topics"])
{
    DeepTopicMemory.Run();
    return;
}

BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
