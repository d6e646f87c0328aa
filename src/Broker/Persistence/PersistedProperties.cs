using Broker.Protocol;

namespace Broker.Persistence;

/// <summary>
/// 5.0 properties kept in the store as the protocol's own Properties field (length prefix, then id/value pairs),
/// so that no second format has to be maintained.
/// </summary>
internal static class PersistedProperties
{
    /// <summary>The field for <paramref name="properties"/>, or null when there are none.</summary>
    public static byte[]? Encode(MqttProperties? properties)
    {
        int content = MqttPropertiesCodec.GetContentLength(properties);
        if (content == 0)
        {
            return null;
        }
        var field = new byte[MqttPropertiesCodec.GetFieldSize(properties)];
        MqttPropertiesCodec.Write(field, properties, content);
        return field;
    }

    /// <summary>
    /// Reads a field written by <see cref="Encode"/>; <paramref name="context"/> is <see cref="PropertyContext.Publish"/>
    /// for messages and <see cref="PropertyContext.Will"/> for wills.
    /// </summary>
    public static MqttProperties? Decode(byte[]? field, PropertyContext context)
    {
        if (field is null)
        {
            return null;
        }
        if (!MqttPropertiesCodec.TryReadField(field, context, out var properties, out var error))
        {
            throw new InvalidDataException($"Stored properties cannot be read: {error}");
        }
        return properties;
    }
}
