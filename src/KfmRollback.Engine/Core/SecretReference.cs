namespace KfmRollback.Engine.Core;

/// <summary>
/// Reads a value the configuration only refers to (an environment variable or a file), so
/// secrets and restricted details never sit in the configuration itself. Null when neither is set
/// or the referenced value is empty.
/// </summary>
public static class SecretReference
{
    public static string? Read(string? environmentVariable, string? file)
    {
        string? value = environmentVariable is not null ? System.Environment.GetEnvironmentVariable(environmentVariable)
            : file is not null && File.Exists(file) ? File.ReadAllText(file) : null;
        return string.IsNullOrWhiteSpace(value) ? null : value.Trim();
    }
}
