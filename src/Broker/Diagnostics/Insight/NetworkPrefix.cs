using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Broker.Diagnostics.Insight;

/// <summary>
/// A client network: an address with the bits past the prefix length cleared. IPv4 addresses and IPv4-mapped
/// IPv6 addresses (a dual-stack listener reports ::ffff:a.b.c.d) use the IPv4 length, so one device is one
/// network whichever socket accepted it. Built without allocating: it is the key looked up on every CONNECT.
/// </summary>
internal readonly struct NetworkPrefix : IEquatable<NetworkPrefix>
{
    private readonly ulong _high;   // IPv6 bits 0..63; 0 for IPv4
    private readonly ulong _low;    // IPv6 bits 64..127; for IPv4 the address in the low 32 bits
    private readonly byte _length;
    private readonly bool _isV4;

    private NetworkPrefix(ulong high, ulong low, int length, bool isV4)
    {
        _high = high;
        _low = low;
        _length = (byte)length;
        _isV4 = isV4;
    }

    public bool IsV4 => _isV4;

    public int Length => _length;

    /// <param name="v4Length">0..32, validated by the options.</param>
    /// <param name="v6Length">0..128, validated by the options.</param>
    public static NetworkPrefix From(IPAddress address, int v4Length, int v6Length)
    {
        ArgumentNullException.ThrowIfNull(address);
        Span<byte> bytes = stackalloc byte[16];
        if (address.AddressFamily == AddressFamily.InterNetwork)
        {
            address.TryWriteBytes(bytes, out _);
            return V4(BinaryPrimitives.ReadUInt32BigEndian(bytes), v4Length);
        }
        if (!address.TryWriteBytes(bytes, out int written) || written != 16)
        {
            throw new ArgumentException($"Not an IP address: {address}", nameof(address));
        }
        ulong high = BinaryPrimitives.ReadUInt64BigEndian(bytes);
        ulong low = BinaryPrimitives.ReadUInt64BigEndian(bytes[8..]);
        if (high == 0 && (low >> 32) == 0xFFFF)
        {
            return V4((uint)low, v4Length);
        }
        return new NetworkPrefix(high & Mask(Math.Min(v6Length, 64)), low & Mask(Math.Max(v6Length - 64, 0)), v6Length, isV4: false);
    }

    private static NetworkPrefix V4(uint address, int length)
        => new(0, address & (uint)(Mask(length) >> 32), length, isV4: true);

    /// <summary>The top <paramref name="bits"/> (0..64) set.</summary>
    private static ulong Mask(int bits) => bits == 0 ? 0 : ulong.MaxValue << (64 - bits);

    public bool Equals(NetworkPrefix other)
        => _high == other._high && _low == other._low && _length == other._length && _isV4 == other._isV4;

    public override bool Equals(object? obj) => obj is NetworkPrefix other && Equals(other);

    public override int GetHashCode() => HashCode.Combine(_high, _low, _length, _isV4);

    public static bool operator ==(NetworkPrefix left, NetworkPrefix right) => left.Equals(right);

    public static bool operator !=(NetworkPrefix left, NetworkPrefix right) => !left.Equals(right);

    /// <summary>CIDR notation: <c>203.0.113.0/24</c>, <c>2001:db8:12::/48</c>.</summary>
    public override string ToString()
    {
        Span<byte> bytes = stackalloc byte[16];
        IPAddress address;
        if (_isV4)
        {
            BinaryPrimitives.WriteUInt32BigEndian(bytes, (uint)_low);
            address = new IPAddress(bytes[..4]);
        }
        else
        {
            BinaryPrimitives.WriteUInt64BigEndian(bytes, _high);
            BinaryPrimitives.WriteUInt64BigEndian(bytes[8..], _low);
            address = new IPAddress(bytes);
        }
        return address.ToString() + "/" + _length.ToString(CultureInfo.InvariantCulture);
    }
}
