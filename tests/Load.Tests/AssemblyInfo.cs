using Xunit;

// The scenario runs measure timing against a broker in this process: running them side by side on
// a two-core CI machine would measure each other.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
