using KfmRollback.Engine.Configuration.Binding;
using KfmRollback.Engine.Core;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace KfmRollback.Engine.Configuration;

/// <summary>
/// Loads and validates a kfm-rollback.yaml. Every failure is a <see cref="KfmException"/> whose
/// message starts with "file:line:column:" and names the key, so a bad config is fixed in one go
/// instead of failing halfway through an incident.
/// </summary>
public static class KfmConfigLoader
{
    /// <summary>
    /// What a cmdlet calls: finds the file (<see cref="ConfigLocator.Resolve"/>) and loads it.
    /// </summary>
    /// <param name="configPath">The -ConfigPath parameter, or null.</param>
    /// <param name="envVarValue">The value of $env:KFM_ROLLBACK_CONFIG, or null.</param>
    /// <param name="currentDirectory">The session's current file-system directory.</param>
    public static KfmConfig LocateAndLoad(string? configPath, string? envVarValue, string currentDirectory) =>
        Load(ConfigLocator.Resolve(configPath, envVarValue, currentDirectory));

    /// <summary>Loads a configuration file; relative paths inside it resolve against its directory.</summary>
    /// <exception cref="KfmException">ConfigNotFound, ConfigYamlMalformed, ConfigUnknownKey, ConfigInvalidValue, ConfigMissingKey.</exception>
    public static KfmConfig Load(string path)
    {
        var fullPath = Path.GetFullPath(path);
        string text;
        try
        {
            text = File.ReadAllText(fullPath);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new KfmException(ConfigErrorIds.ConfigNotFound, KfmErrorKind.ObjectNotFound,
                $"Configuration file '{fullPath}' does not exist.", fullPath, e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new KfmException(ConfigErrorIds.ConfigNotFound, KfmErrorKind.ReadError,
                $"Configuration file '{fullPath}' cannot be read: {e.Message}", fullPath, e);
        }
        return LoadFromText(text, fullPath, Path.GetDirectoryName(fullPath)!);
    }

    /// <summary>Loads configuration text.</summary>
    /// <param name="text">The YAML.</param>
    /// <param name="sourceName">Name used in error locations (normally the file path).</param>
    /// <param name="baseDirectory">Directory relative paths resolve against; defaults to the current directory.</param>
    public static KfmConfig LoadFromText(string text, string sourceName, string? baseDirectory = null)
    {
        var root = ReadRoot(text, sourceName);
        var binder = new ConfigBinder(sourceName, Path.GetFullPath(baseDirectory ?? Directory.GetCurrentDirectory()));
        var config = binder.Bind<KfmConfig>(root);
        config.Complete(sourceName);
        binder.Validate();
        return config;
    }

    private static YamlMappingNode ReadRoot(string text, string sourceName)
    {
        var stream = new YamlStream();
        var parser = new Parser(new StringReader(text));
        try
        {
            stream.Load(parser);
        }
        catch (YamlException e)
        {
            var at = new ConfigLocation(sourceName, e.Start.Line, e.Start.Column);
            // YamlDotNet wraps the real cause ("mapping values are not allowed...") in a generic outer message.
            var reason = e.InnerException is YamlException inner ? inner.Message : e.Message;
            throw new KfmException(ConfigErrorIds.ConfigYamlMalformed, KfmErrorKind.InvalidData,
                $"{at}: the file is not valid YAML: {reason}", sourceName, e);
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException)
        {
            // Some malformed inputs (an unclosed '[' running to the end of the file) make YamlDotNet's
            // scanner fail without a position; the last event it produced is the closest known spot.
            var mark = parser.Current?.Start ?? Mark.Empty;
            var at = new ConfigLocation(sourceName, Math.Max(1, mark.Line), Math.Max(1, mark.Column));
            throw new KfmException(ConfigErrorIds.ConfigYamlMalformed, KfmErrorKind.InvalidData,
                $"{at}: the file is not valid YAML after this point (an unclosed '[', '{{' or quote?).", sourceName, e);
        }

        if (stream.Documents.Count == 0)
            throw new ConfigLocation(sourceName, 1, 1).Error(ConfigErrorIds.ConfigYamlMalformed,
                "the file is empty; it needs at least an 'environments' mapping (see module/kfm-rollback.example.yaml).", "");
        if (stream.Documents.Count > 1)
        {
            var second = stream.Documents[1].RootNode.Start;
            throw new ConfigLocation(sourceName, second.Line, second.Column).Error(ConfigErrorIds.ConfigYamlMalformed,
                "the file holds several YAML documents; put everything in one.", "");
        }
        var rootNode = stream.Documents[0].RootNode;
        return rootNode as YamlMappingNode
            ?? throw new ConfigLocation(sourceName, rootNode.Start.Line, rootNode.Start.Column).Error(ConfigErrorIds.ConfigYamlMalformed,
                "the top level must be a mapping of keys (defaults, environments).", "");
    }
}
