namespace Broker.Persistence;

/// <summary>
/// Operations appended between two commits, with the completions to call after the commit. Two batches take
/// turns (one filling, one committing); their arrays grow to the busiest batch seen and are kept, so appending
/// allocates nothing in steady state.
/// </summary>
internal sealed class StoreBatch
{
    private StoreOperation[] _operations = new StoreOperation[64];
    private PendingCompletion[] _completions = new PendingCompletion[64];

    public int Count { get; private set; }
    public int CompletionCount { get; private set; }

    /// <summary>A Flush operation is in the batch: commit it without waiting for the interval.</summary>
    public bool FlushRequested { get; private set; }

    /// <summary>A RemoveOutbound is in the batch: some queue entries may be enqueued and removed within it.</summary>
    public bool HasRemoveOutbound { get; private set; }

    public ReadOnlySpan<StoreOperation> Operations => _operations.AsSpan(0, Count);
    public ReadOnlySpan<PendingCompletion> Completions => _completions.AsSpan(0, CompletionCount);

    public void Add(in StoreOperation operation, IStoreCompletion? completion, long token)
    {
        if (Count == _operations.Length)
        {
            Array.Resize(ref _operations, _operations.Length * 2);
        }
        _operations[Count++] = operation;
        FlushRequested |= operation.Kind == StoreOperationKind.Flush;
        HasRemoveOutbound |= operation.Kind == StoreOperationKind.RemoveOutbound;
        if (completion is not null)
        {
            if (CompletionCount == _completions.Length)
            {
                Array.Resize(ref _completions, _completions.Length * 2);
            }
            _completions[CompletionCount++] = new PendingCompletion(completion, token);
        }
    }

    /// <summary>
    /// Removes the completions and returns them (the operations stay): callers told now that their operations are
    /// not durable yet must not be told again when a retry writes them. Allocates; only on a failed commit.
    /// </summary>
    public PendingCompletion[] TakeCompletions()
    {
        var taken = _completions.AsSpan(0, CompletionCount).ToArray();
        Array.Clear(_completions, 0, CompletionCount);
        CompletionCount = 0;
        return taken;
    }

    /// <summary>Drops the references (payloads, callers) so that a committed batch does not keep them alive.</summary>
    public void Clear()
    {
        Array.Clear(_operations, 0, Count);
        Array.Clear(_completions, 0, CompletionCount);
        Count = 0;
        CompletionCount = 0;
        FlushRequested = false;
        HasRemoveOutbound = false;
    }
}

internal readonly record struct PendingCompletion(IStoreCompletion Completion, long Token);
