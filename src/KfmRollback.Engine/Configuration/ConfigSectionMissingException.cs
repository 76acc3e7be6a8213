using KfmRollback.Engine.Core;

namespace KfmRollback.Engine.Configuration;

/// <summary>
/// A step needs an optional section the environment does not have. The cmdlet layer names itself
/// in the message (<see cref="For"/>), so the operator reads which command needs which key and why.
/// </summary>
public sealed class ConfigSectionMissingException : KfmException
{
    public const string Id = "ConfigSectionMissing";

    public ConfigSectionMissingException(string environment, string section, string why, string? command = null)
        : base(Id, KfmErrorKind.ObjectNotFound,
            $"{command ?? "This step"} needs the '{section}' section of environment '{environment}' for {why}, and it is not configured. " +
            $"Add environments.{environment}.{section} to the configuration (docs/configuration.md).", section)
    {
        Environment = environment;
        Section = section;
        Why = why;
    }

    public string Environment { get; }
    public string Section { get; }
    public string Why { get; }

    /// <summary>The same error, naming the command that needed the section.</summary>
    public ConfigSectionMissingException For(string command) => new(Environment, Section, Why, command);
}
