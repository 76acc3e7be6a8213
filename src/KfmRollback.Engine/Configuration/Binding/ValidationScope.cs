using KfmRollback.Engine.Core;
using YamlDotNet.RepresentationModel;

namespace KfmRollback.Engine.Configuration.Binding;

/// <summary>
/// What a section's semantic rules need to report a failure at the right spot: the section's
/// key path and the YAML positions of its keys.
/// </summary>
internal sealed class ValidationScope
{
    private readonly ConfigBinder _binder;
    private readonly BoundSection _section;

    public ValidationScope(ConfigBinder binder, BoundSection section)
    {
        _binder = binder;
        _section = section;
    }

    public string Path => _section.Path;

    public string KeyPath(string key) => ConfigBinder.Join(Path, key);

    /// <summary>Position of the key's value, or of the section when the key is absent.</summary>
    public ConfigLocation LocationOf(string key)
    {
        foreach (var (k, v) in _section.Node.Children)
            if (k is YamlScalarNode { Value: var name } && name == key)
                return _binder.Locate(v.Start);
        return _binder.Locate(_section.Node.Start);
    }

    /// <summary>A present value breaks a rule. <paramref name="message"/> continues "key.path …".</summary>
    public KfmException Invalid(string key, string message) =>
        LocationOf(key).Error(ConfigErrorIds.ConfigInvalidValue, $"{KeyPath(key)} {message}", KeyPath(key));

    /// <summary>
    /// The one transport rule (Core/Transport) at load time: a URL that will receive a credential must
    /// be https, or http to a loopback host.
    /// </summary>
    public void CredentialsTravelSafely(string key, Uri? url, bool withCredentials, string credential)
    {
        if (url is not null && withCredentials && Transport.Refusal(url) is { } why)
            throw Invalid(key, $"would receive {credential}, and {why}. Use https://, or drop the credential if that server needs none.");
    }

    /// <summary>A key required in this situation is absent.</summary>
    public KfmException Missing(string key, string why) =>
        _binder.Locate(_section.Node.Start).Error(ConfigErrorIds.ConfigMissingKey,
            $"missing required key '{key}' {ConfigBinder.Under(Path)}: {why}", KeyPath(key));

    /// <summary>True when the key was written in this section's YAML with a value.</summary>
    public bool Has(string key) =>
        _section.Node.Children.Any(c => c.Key is YamlScalarNode { Value: var name } && name == key && !ConfigBinder.IsNull(c.Value));

    /// <summary>The scope of a child section, when it came from the YAML (defaults have none).</summary>
    public ValidationScope? For(object? child) =>
        _binder.SectionOf(child) is { } s ? new ValidationScope(_binder, s) : null;

    /// <summary>At most one of the keys may be set (e.g. token_env and token_file).</summary>
    public void AtMostOne(params string[] keys)
    {
        // Report the key written later: the earlier one is what the reader saw first and "kept".
        var set = _section.Node.Children.Keys.OfType<YamlScalarNode>()
            .Select(k => k.Value!).Where(k => keys.Contains(k) && Has(k)).ToList();
        if (set.Count > 1)
            throw Invalid(set[1], $"cannot be combined with '{set[0]}'; set only one of {Quote(keys)}.");
    }

    /// <summary>Exactly one of the keys must be set.</summary>
    public void ExactlyOne(string why, params string[] keys)
    {
        AtMostOne(keys);
        if (!keys.Any(Has))
            throw _binder.Locate(_section.Node.Start).Error(ConfigErrorIds.ConfigMissingKey,
                $"{(Path.Length == 0 ? "the top level" : Path)} needs one of {Quote(keys)}: {why}", KeyPath(keys[0]));
    }

    private static string Quote(IEnumerable<string> keys) => string.Join(", ", keys.Select(k => $"'{k}'"));
}
