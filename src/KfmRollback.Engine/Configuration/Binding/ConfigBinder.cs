using System.Collections;
using System.Collections.ObjectModel;
using System.Globalization;
using System.Reflection;
using System.Text.RegularExpressions;
using KfmRollback.Engine.Core;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace KfmRollback.Engine.Configuration.Binding;

/// <summary>A model object together with the YAML mapping it came from, for located errors.</summary>
internal sealed record BoundSection(IConfigSection Instance, string Path, YamlMappingNode Node);

/// <summary>
/// Binds a YAML node tree onto the model by walking the nodes ourselves rather than using
/// YamlDotNet's deserializer: we need the exact line and column of every key and value for
/// errors, every unknown key reported (never ignored), and secrets detected before any value
/// could be echoed.
/// </summary>
internal sealed partial class ConfigBinder
{
    private readonly string _source;
    private readonly string _baseDirectory;
    private readonly List<BoundSection> _sections = new();
    private readonly Dictionary<object, BoundSection> _byInstance = new(ReferenceEqualityComparer.Instance);

    public ConfigBinder(string source, string baseDirectory)
    {
        _source = source;
        _baseDirectory = baseDirectory;
    }

    public T Bind<T>(YamlMappingNode root) where T : class, IConfigSection =>
        (T)BindSection(root, typeof(T), "");

    /// <summary>Runs every bound section's semantic rules, outermost first.</summary>
    public void Validate()
    {
        foreach (var section in _sections)
            section.Instance.Validate(new ValidationScope(this, section));
    }

    public BoundSection? SectionOf(object? instance) =>
        instance is not null && _byInstance.TryGetValue(instance, out var s) ? s : null;

    public ConfigLocation Locate(Mark mark) => new(_source, mark.Line, mark.Column);

    private object BindSection(YamlMappingNode node, Type type, string path)
    {
        var instance = (IConfigSection)Activator.CreateInstance(type, nonPublic: true)!;
        var section = new BoundSection(instance, path, node);
        _sections.Add(section);
        _byInstance[instance] = section;

        var keys = ConfigSchema.KeysOf(type).ToDictionary(k => k.Name, StringComparer.Ordinal);
        var present = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (keyNode, valueNode) in node.Children)
        {
            var name = KeyText(keyNode, path);
            if (!keys.TryGetValue(name, out var key))
                throw UnknownKey(name, keyNode, path, keys.Keys);
            present.Add(name);
            if (IsNull(valueNode))
                continue; // "key:" with no value means "use the default", exactly like leaving it out
            key.Property.SetValue(instance, Convert(valueNode, key.Property.PropertyType, key, Join(path, name)));
        }

        foreach (var key in keys.Values.Where(k => k.IsRequired))
        {
            if (!present.Contains(key.Name) || key.Property.GetValue(instance) is null)
                throw Locate(node.Start).Error(ConfigErrorIds.ConfigMissingKey,
                    $"missing required key '{key.Name}' {Under(path)}.", Join(path, key.Name));
        }
        return instance;
    }

    private object? Convert(YamlNode node, Type type, ConfigKey key, string path)
    {
        var target = Nullable.GetUnderlyingType(type) ?? type;
        if (ConfigSchema.IsSection(target))
            return BindSection(Expect<YamlMappingNode>(node, path, "a mapping of keys"), target, path);
        if (ConfigSchema.ListElement(target) is { } element && node is YamlScalarNode && key.Attribute<OneOrManyAttribute>() is not null)
        {
            var one = Array.CreateInstance(element, 1);
            one.SetValue(Convert(node, element, key, path), 0);
            return one;
        }
        if (ConfigSchema.ListElement(target) is { } listElement)
            return BindList(Expect<YamlSequenceNode>(node, path, "a list"), listElement, key, path);
        if (ConfigSchema.MapValue(target) is { } valueType)
            return BindMap(Expect<YamlMappingNode>(node, path, "a mapping of names"), valueType, key, path);
        var scalar = Expect<YamlScalarNode>(node, path, ScalarParsing.Describe(target));
        return ScalarParsing.Parse(scalar, target, key, path, this);
    }

    private Array BindList(YamlSequenceNode node, Type element, ConfigKey key, string path)
    {
        if (key.Attribute<NonEmptyAttribute>() is not null && node.Children.Count == 0)
            throw Locate(node.Start).Error(ConfigErrorIds.ConfigInvalidValue, $"{path} must list at least one item.", path);
        var array = Array.CreateInstance(element, node.Children.Count);
        for (var i = 0; i < node.Children.Count; i++)
        {
            var item = node.Children[i];
            var itemPath = $"{path}[{i}]";
            if (IsNull(item))
                throw Locate(item.Start).Error(ConfigErrorIds.ConfigInvalidValue, $"{itemPath} is empty; remove it or give it a value.", itemPath);
            array.SetValue(Convert(item, element, key, itemPath), i);
        }
        return array;
    }

    private object BindMap(YamlMappingNode node, Type valueType, ConfigKey key, string path)
    {
        var dictionary = (IDictionary)Activator.CreateInstance(typeof(Dictionary<,>).MakeGenericType(typeof(string), valueType), StringComparer.Ordinal)!;
        if (key.Attribute<NonEmptyAttribute>() is not null && node.Children.Count == 0)
            throw Locate(node.Start).Error(ConfigErrorIds.ConfigInvalidValue, $"{path} must define at least one entry.", path);
        foreach (var (keyNode, valueNode) in node.Children)
        {
            var name = KeyText(keyNode, path);
            if (!NamePattern().IsMatch(name))
                throw Locate(keyNode.Start).Error(ConfigErrorIds.ConfigInvalidValue,
                    $"name '{name}' {Under(path)} must start with a letter or digit and use only letters, digits, '.', '_' or '-'.", Join(path, name));
            var entryPath = Join(path, name);
            if (IsNull(valueNode))
                throw Locate(keyNode.Start).Error(ConfigErrorIds.ConfigInvalidValue, $"{entryPath} is empty; give it its settings.", entryPath);
            dictionary.Add(name, Convert(valueNode, valueType, key, entryPath));
        }
        var readOnly = typeof(ReadOnlyDictionary<,>).MakeGenericType(typeof(string), valueType);
        return Activator.CreateInstance(readOnly, dictionary)!;
    }

    private T Expect<T>(YamlNode node, string path, string expected) where T : YamlNode =>
        node as T ?? throw Locate(node.Start).Error(ConfigErrorIds.ConfigInvalidValue,
            $"{path} must be {expected}, but is {ScalarParsing.Shape(node)}.", path);

    private string KeyText(YamlNode keyNode, string path) =>
        keyNode is YamlScalarNode { Value: { Length: > 0 } text }
            ? text
            : throw Locate(keyNode.Start).Error(ConfigErrorIds.ConfigYamlMalformed, $"keys {Under(path)} must be plain names.", path);

    private KfmException UnknownKey(string name, YamlNode keyNode, string path, IEnumerable<string> known)
    {
        var knownKeys = known.ToList();
        if (SecretKeyDetector.LooksLikeLiteralSecret(name))
        {
            var references = knownKeys.Where(k => k.EndsWith("_env", StringComparison.Ordinal) || k.EndsWith("_file", StringComparison.Ordinal)).ToList();
            var how = references.Count > 0
                ? $"reference it with {string.Join(" or ", references.Select(r => r.EndsWith("_env", StringComparison.Ordinal) ? $"'{r}: VARIABLE_NAME'" : $"'{r}: path/to/file'"))}"
                : "keep it out of this section; only '*_env' (an environment variable name) or '*_file' (a file path) keys may point at credentials";
            return Locate(keyNode.Start).Error(ConfigErrorIds.ConfigInvalidValue,
                $"key '{name}' {Under(path)} looks like a literal secret. Secrets are never stored in the configuration: {how}.",
                Join(path, name));
        }
        var suggestion = KeySuggester.Nearest(name, knownKeys);
        var hint = suggestion is not null ? $"; did you mean '{suggestion}'?" : $". Known keys: {string.Join(", ", knownKeys)}.";
        return Locate(keyNode.Start).Error(ConfigErrorIds.ConfigUnknownKey, $"unknown key '{name}' {Under(path)}{hint}", Join(path, name));
    }

    internal string ResolveLocalPath(string path) => PathExpansion.ResolveAgainst(path, _baseDirectory);

    internal static string Under(string path) => path.Length == 0 ? "at the top level" : $"under {path}";

    internal static string Join(string path, string key) => path.Length == 0 ? key : $"{path}.{key}";

    /// <summary>"key:", "key: ~" and "key: null" mean "not set" (quoted "null" is the text null).</summary>
    internal static bool IsNull(YamlNode node) =>
        node is YamlScalarNode { Style: ScalarStyle.Plain or ScalarStyle.Any } s &&
        (s.Value is null or "" or "~" or "null" or "Null" or "NULL");

    [GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9._-]*$", RegexOptions.CultureInvariant)]
    private static partial Regex NamePattern();
}
