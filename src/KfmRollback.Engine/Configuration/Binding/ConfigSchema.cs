using System.Reflection;
using System.Text;

namespace KfmRollback.Engine.Configuration.Binding;

/// <summary>One YAML key of a model class.</summary>
internal sealed record ConfigKey(string Name, PropertyInfo Property)
{
    public bool IsRequired => Property.IsDefined(typeof(RequiredKeyAttribute));
    public T? Attribute<T>() where T : Attribute => Property.GetCustomAttribute<T>();
}

/// <summary>
/// Derives the YAML schema from the model by reflection: every settable public property not
/// marked <see cref="NotAKeyAttribute"/> is a key, spelled in lower_snake_case.
/// </summary>
internal static class ConfigSchema
{
    private static readonly Dictionary<Type, IReadOnlyList<ConfigKey>> Cache = new();

    public static IReadOnlyList<ConfigKey> KeysOf(Type type)
    {
        lock (Cache)
        {
            if (Cache.TryGetValue(type, out var keys))
                return keys;
            keys = type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
                .Where(p => p.GetSetMethod(nonPublic: true) is { } setter && !setter.IsPrivate)
                .Where(p => !p.IsDefined(typeof(NotAKeyAttribute)))
                .OrderBy(p => p.MetadataToken) // declaration order, for readable docs and errors
                .Select(p => new ConfigKey(p.GetCustomAttribute<YamlNameAttribute>()?.Name ?? ToSeparated(p.Name, '_'), p))
                .ToList();
            Cache[type] = keys;
            return keys;
        }
    }

    /// <summary>YAML spellings of an enum's members, in declaration order.</summary>
    public static IReadOnlyList<(string Name, object Value)> EnumValues(Type enumType) =>
        enumType.GetFields(BindingFlags.Public | BindingFlags.Static)
            .Select(f => (f.GetCustomAttribute<YamlNameAttribute>()?.Name ?? ToSeparated(f.Name, '-'), f.GetValue(null)!))
            .ToList();

    /// <summary>The YAML spelling of one enum value (used when reporting or writing config back).</summary>
    public static string YamlName(Enum value) =>
        EnumValues(value.GetType()).First(v => v.Value.Equals(value)).Name;

    /// <summary>"KubeconfigPath" → "kubeconfig_path", "MaxP95Ms" → "max_p95_ms".</summary>
    public static string ToSeparated(string pascal, char separator)
    {
        var sb = new StringBuilder(pascal.Length + 4);
        for (var i = 0; i < pascal.Length; i++)
        {
            var c = pascal[i];
            if (char.IsUpper(c) && i > 0 && (char.IsLower(pascal[i - 1]) || char.IsDigit(pascal[i - 1])))
                sb.Append(separator);
            sb.Append(char.ToLowerInvariant(c));
        }
        return sb.ToString();
    }

    /// <summary>Element type if <paramref name="type"/> is IReadOnlyList&lt;T&gt;.</summary>
    public static Type? ListElement(Type type) =>
        type.IsGenericType && type.GetGenericTypeDefinition() == typeof(IReadOnlyList<>) ? type.GetGenericArguments()[0] : null;

    /// <summary>Value type if <paramref name="type"/> is IReadOnlyDictionary&lt;string, T&gt;.</summary>
    public static Type? MapValue(Type type) =>
        type.IsGenericType && type.GetGenericTypeDefinition() == typeof(IReadOnlyDictionary<,>) ? type.GetGenericArguments()[1] : null;

    /// <summary>True for model classes (bound from a YAML mapping key by key).</summary>
    public static bool IsSection(Type type) => typeof(IConfigSection).IsAssignableFrom(type);
}
