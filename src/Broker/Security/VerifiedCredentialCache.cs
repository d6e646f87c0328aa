using System.Buffers;
using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace Broker.Security;

/// <summary>
/// Remembers (user, password) pairs that passed verification, so that a fleet reconnecting after a network blip
/// costs one HMAC per client instead of one PBKDF2. Entries are HMAC-SHA256 digests under a key drawn at start-up
/// and never stored: the cache holds no password and nothing usable outside this process. Each entry carries the
/// password file version it was verified against, so a changed file invalidates it.
/// Bounded by two generations: when the current one holds half the capacity it becomes the previous one and the
/// older one is dropped; a hit in the previous generation moves the entry forward, so active clients stay.
/// </summary>
internal sealed class VerifiedCredentialCache
{
    private const int StackLimit = 512;

    private readonly byte[] _key = RandomNumberGenerator.GetBytes(32);
    private readonly int _generationCapacity;
    private readonly Lock _gate = new();
    private Dictionary<Digest, long> _current = [];
    private Dictionary<Digest, long> _previous = [];

    /// <param name="capacity">Most entries kept; 0 disables the cache.</param>
    public VerifiedCredentialCache(int capacity) => _generationCapacity = (capacity + 1) / 2;

    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _current.Count + _previous.Count;
            }
        }
    }

    public bool Contains(string user, ReadOnlySpan<byte> password, long fileVersion)
    {
        if (_generationCapacity == 0)
        {
            return false;
        }
        var digest = Compute(user, password);
        lock (_gate)
        {
            if (_current.TryGetValue(digest, out long version))
            {
                return version == fileVersion;
            }
            if (_previous.Remove(digest, out version) && version == fileVersion)
            {
                AddLocked(digest, version);
                return true;
            }
            return false;
        }
    }

    public void Add(string user, ReadOnlySpan<byte> password, long fileVersion)
    {
        if (_generationCapacity == 0)
        {
            return;
        }
        var digest = Compute(user, password);
        lock (_gate)
        {
            AddLocked(digest, fileVersion);
        }
    }

    public void Clear()
    {
        lock (_gate)
        {
            _current = [];
            _previous = [];
        }
    }

    private void AddLocked(Digest digest, long version)
    {
        if (_current.Count >= _generationCapacity && !_current.ContainsKey(digest))
        {
            _previous = _current;
            _current = [];
        }
        _current[digest] = version;
    }

    /// <summary>HMAC over (user length, user, password): the length prefix keeps "ab"+"c" apart from "a"+"bc".</summary>
    private Digest Compute(string user, ReadOnlySpan<byte> password)
    {
        int userBytes = Encoding.UTF8.GetByteCount(user);
        int length = 4 + userBytes + password.Length;
        byte[]? rented = null;
        Span<byte> buffer = length <= StackLimit ? stackalloc byte[StackLimit] : (rented = ArrayPool<byte>.Shared.Rent(length));
        buffer = buffer[..length];
        try
        {
            BinaryPrimitives.WriteInt32BigEndian(buffer, userBytes);
            Encoding.UTF8.GetBytes(user, buffer[4..]);
            password.CopyTo(buffer[(4 + userBytes)..]);
            Span<byte> mac = stackalloc byte[32];
            HMACSHA256.HashData(_key, buffer, mac);
            return new Digest(
                BinaryPrimitives.ReadUInt64LittleEndian(mac),
                BinaryPrimitives.ReadUInt64LittleEndian(mac[8..]),
                BinaryPrimitives.ReadUInt64LittleEndian(mac[16..]),
                BinaryPrimitives.ReadUInt64LittleEndian(mac[24..]));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(buffer);
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }

    private readonly record struct Digest(ulong A, ulong B, ulong C, ulong D);
}
