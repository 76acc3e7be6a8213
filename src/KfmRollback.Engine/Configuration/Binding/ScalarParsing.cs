using System.Globalization;
using System.Text.RegularExpressions;
using KfmRollback.Engine.Core;
using YamlDotNet.RepresentationModel;

namespace KfmRollback.Engine.Configuration.Binding;

/// <summary>Turns one YAML scalar into the property's type and applies the key's attributes.</summary>
internal static partial class ScalarParsing
{
    [GeneratedRegex(@"^[A-Za-z_][A-Za-z0-9_]*$", RegexOptions.CultureInvariant)]
    private static partial Regex EnvVarName();

    [GeneratedRegex(@"^sha256:[a-f0-9]{64}$", RegexOptions.CultureInvariant)]
    private static partial Regex DigestShape();

    /// <summary>True when <paramref name="text"/> is "sha256:" + 64 lowercase hex digits.</summary>
    public static bool IsDigest(string text) => DigestShape().IsMatch(text);

    public static object Parse(YamlScalarNode node, Type type, ConfigKey key, string path, ConfigBinder binder)
    {
        var text = node.Value ?? "";
        KfmException Bad(string expectation) =>
            binder.Locate(node.Start).Error(ConfigErrorIds.ConfigInvalidValue, $"{path} must be {expectation}{Got(text, type)}.", path);

        if (type == typeof(string))
            return CheckText(text, key, path, binder.Locate(node.Start), binder);

        if (type == typeof(bool))
        {
            // YAML 1.1 also read yes/no/on/off as booleans; accepting only true/false removes the ambiguity.
            if (text.Equals("true", StringComparison.OrdinalIgnoreCase)) return true;
            if (text.Equals("false", StringComparison.OrdinalIgnoreCase)) return false;
            throw Bad(Describe(type));
        }

        if (type == typeof(int))
        {
            if (!int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var i))
                throw Bad(Describe(type));
            return CheckRange(i, key, path, binder.Locate(node.Start));
        }

        if (type == typeof(double))
        {
            if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) || !double.IsFinite(d))
                throw Bad(Describe(type));
            return CheckRange(d, key, path, binder.Locate(node.Start));
        }

        if (type == typeof(TimeSpan))
        {
            if (!DurationParser.TryParse(text, out var span))
                throw Bad(Describe(type));
            if (span <= TimeSpan.Zero)
                throw Bad("a positive duration");
            return span;
        }

        if (type == typeof(Uri) && key.Attribute<GitRemoteUrlAttribute>() is not null)
        {
            const string expected = "an https:// URL, an http:// URL to a loopback host, or a file:// URL";
            if (!Uri.TryCreate(text, UriKind.Absolute, out var remote))
                throw Bad(expected);
            bool loopbackHttp = remote.Scheme == Uri.UriSchemeHttp && Core.Transport.IsLoopback(remote);
            if (remote.Scheme != Uri.UriSchemeHttps && remote.Scheme != Uri.UriSchemeFile && !loopbackHttp)
                throw Bad(expected);
            if (!string.IsNullOrEmpty(remote.UserInfo))
                throw binder.Locate(node.Start).Error(ConfigErrorIds.ConfigInvalidValue,
                    $"{path} must not carry credentials in the URL; use a '*_env' or '*_file' key instead.", path);
            return remote;
        }

        if (type == typeof(Uri))
        {
            if (!Uri.TryCreate(text, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
                throw Bad(Describe(type));
            if (!string.IsNullOrEmpty(uri.UserInfo))
                throw binder.Locate(node.Start).Error(ConfigErrorIds.ConfigInvalidValue,
                    $"{path} must not carry credentials in the URL; use a '*_env' or '*_file' key instead.", path);
            return uri;
        }

        if (type.IsEnum)
        {
            foreach (var (name, value) in ConfigSchema.EnumValues(type))
                if (name.Equals(text, StringComparison.OrdinalIgnoreCase))
                    return value;
            throw Bad(Describe(type));
        }

        throw new InvalidOperationException($"The configuration model uses unsupported type {type.Name} at {path}.");
    }

    /// <summary>What a value of this type looks like, for error messages.</summary>
    public static string Describe(Type type)
    {
        type = Nullable.GetUnderlyingType(type) ?? type;
        if (type == typeof(bool)) return "a boolean (true or false)";
        if (type == typeof(int)) return "an integer";
        if (type == typeof(double)) return "a number";
        if (type == typeof(TimeSpan)) return "a duration such as 30s, 15m, 1h or 1h30m";
        if (type == typeof(Uri)) return "an absolute http:// or https:// URL";
        if (type.IsEnum) return "one of: " + string.Join(", ", ConfigSchema.EnumValues(type).Select(v => v.Name));
        return "text";
    }

    /// <summary>"a mapping", "a list", "text": what the user actually wrote.</summary>
    public static string Shape(YamlNode node) => node switch
    {
        YamlMappingNode => "a mapping",
        YamlSequenceNode => "a list",
        _ => "a single value",
    };

    // Values are echoed only when short and when the key is not text: a non-text key cannot hold a
    // credential, and a long value is more likely pasted material that should not reach a log.
    private static string Got(string text, Type type) =>
        type != typeof(string) && text.Length <= 40 ? $" (got '{text}')" : "";

    private static string CheckText(string text, ConfigKey key, string path, ConfigLocation at, ConfigBinder binder)
    {
        KfmException Bad(string message) => at.Error(ConfigErrorIds.ConfigInvalidValue, $"{path} {message}", path);

        if (text.Trim().Length == 0)
            throw Bad("must not be empty.");
        if (key.Attribute<EnvVarNameAttribute>() is not null && !EnvVarName().IsMatch(text))
            throw Bad("must be the name of an environment variable (letters, digits and '_'), never the secret itself.");
        if (key.Attribute<DigestAttribute>() is not null && !IsDigest(text))
            throw Bad("must be a digest: 'sha256:' followed by 64 lowercase hex digits.");
        if (key.Attribute<UrlPathAttribute>() is not null && !text.StartsWith('/'))
            throw Bad($"must be an absolute URL path starting with '/' (got '{text}').");
        if (key.Attribute<RegexPatternAttribute>() is not null)
        {
            try { _ = new Regex(text, RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1)); }
            catch (ArgumentException e) { throw Bad($"is not a valid regular expression: {e.Message}"); }
        }
        if (key.Attribute<RepoPathAttribute>() is not null)
        {
            var parts = text.Replace('\\', '/').Split('/');
            if (text.StartsWith('/') || Path.IsPathRooted(text) || parts.Contains(".."))
                throw Bad($"must be a path relative to the repository root, without '..' (got '{text}').");
        }
        if (key.Attribute<LocalPathAttribute>() is not null)
            return binder.ResolveLocalPath(text);
        return text;
    }

    private static T CheckRange<T>(T value, ConfigKey key, string path, ConfigLocation at) where T : IConvertible
    {
        if (key.Attribute<RangeAttribute>() is { } range)
        {
            var d = value.ToDouble(CultureInfo.InvariantCulture);
            if (d < range.Min || d > range.Max)
                throw at.Error(ConfigErrorIds.ConfigInvalidValue,
                    $"{path} must be between {range.Min.ToString(CultureInfo.InvariantCulture)} and {range.Max.ToString(CultureInfo.InvariantCulture)} (got {d.ToString(CultureInfo.InvariantCulture)}).", path);
        }
        return value;
    }
}
