namespace KfmRollback.Engine.Configuration.Binding;

// Attributes that put the schema on the model itself, so the binder, the validator and the
// documentation test all read one source of truth instead of a hand-kept key table.

/// <summary>The key must be present (and not null) in the YAML.</summary>
[AttributeUsage(AttributeTargets.Property)]
internal sealed class RequiredKeyAttribute : Attribute { }

/// <summary>Not a YAML key: computed or filled in by the loader.</summary>
[AttributeUsage(AttributeTargets.Property)]
internal sealed class NotAKeyAttribute : Attribute { }

/// <summary>A local filesystem path, resolved against the configuration file's directory so the
/// same config works whatever the operator's current directory is.</summary>
[AttributeUsage(AttributeTargets.Property)]
internal sealed class LocalPathAttribute : Attribute { }

/// <summary>A path inside a git repository: must be relative and must not climb out with '..'.</summary>
[AttributeUsage(AttributeTargets.Property)]
internal sealed class RepoPathAttribute : Attribute { }

/// <summary>An HTTP path on the API (must start with '/').</summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field)]
internal sealed class UrlPathAttribute : Attribute { }

/// <summary>The name of an environment variable (never the secret itself).</summary>
[AttributeUsage(AttributeTargets.Property)]
internal sealed class EnvVarNameAttribute : Attribute { }

/// <summary>A content digest: "sha256:" followed by 64 lowercase hex digits.</summary>
[AttributeUsage(AttributeTargets.Property)]
internal sealed class DigestAttribute : Attribute { }

/// <summary>A regular expression that must compile.</summary>
[AttributeUsage(AttributeTargets.Property)]
internal sealed class RegexPatternAttribute : Attribute { }

/// <summary>A list that may also be written as one scalar (<c>container: api</c> for <c>container: [api]</c>).</summary>
[AttributeUsage(AttributeTargets.Property)]
internal sealed class OneOrManyAttribute : Attribute { }

/// <summary>A list that must have at least one element when present.</summary>
[AttributeUsage(AttributeTargets.Property)]
internal sealed class NonEmptyAttribute : Attribute { }

/// <summary>Inclusive numeric bounds for an int or double (durations: must be positive, always).</summary>
[AttributeUsage(AttributeTargets.Property)]
internal sealed class RangeAttribute : Attribute
{
    public RangeAttribute(double min, double max) { Min = min; Max = max; }
    public double Min { get; }
    public double Max { get; }
}

/// <summary>
/// The spelling of an enum member in YAML when it is not the kebab-case of its name, or of a key
/// when it is not the snake_case of its property's name.
/// </summary>
[AttributeUsage(AttributeTargets.Field | AttributeTargets.Property)]
internal sealed class YamlNameAttribute : Attribute
{
    public YamlNameAttribute(string name) { Name = name; }
    public string Name { get; }
}

/// <summary>
/// A git remote URL: https, http only to a loopback host (test servers; credentials never cross
/// the network unencrypted), or file://. Other transports (ssh, git) are refused.
/// </summary>
[AttributeUsage(AttributeTargets.Property)]
internal sealed class GitRemoteUrlAttribute : Attribute { }
