using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Core;
using Xunit;

namespace KfmRollback.Engine.Tests.Configuration;

public sealed class ConfigLocatorTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("kfm-locator-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Touch(string name)
    {
        var path = Path.Combine(_dir, name);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, "environments: {}\n");
        return path;
    }

    [Fact]
    public void ParameterWinsOverEnvironmentVariableAndCurrentDirectory()
    {
        var param = Touch("param.yaml");
        var env = Touch("env.yaml");
        Touch(ConfigLocator.DefaultFileName);
        Assert.Equal(param, ConfigLocator.Resolve(param, env, _dir));
    }

    [Fact]
    public void EnvironmentVariableWinsOverCurrentDirectory()
    {
        var env = Touch("env.yaml");
        Touch(ConfigLocator.DefaultFileName);
        Assert.Equal(env, ConfigLocator.Resolve(null, env, _dir));
        Assert.Equal(env, ConfigLocator.Resolve("  ", env, _dir));
    }

    [Fact]
    public void FallsBackToFileInCurrentDirectory()
    {
        var local = Touch(ConfigLocator.DefaultFileName);
        Assert.Equal(local, ConfigLocator.Resolve(null, "", _dir));
    }

    [Fact]
    public void RelativeParameterIsResolvedAgainstCurrentDirectory()
    {
        var nested = Touch("conf/kfm.yaml");
        Assert.Equal(nested, ConfigLocator.Resolve("conf/kfm.yaml", null, _dir));
    }

    [Fact]
    public void MissingExplicitPathIsAnErrorNotAFallThrough()
    {
        Touch(ConfigLocator.DefaultFileName); // must NOT be picked up instead
        var e = Assert.Throws<KfmException>(() => ConfigLocator.Resolve("nope.yaml", null, _dir));
        Assert.Equal(ConfigErrorIds.ConfigNotFound, e.ErrorId);
        Assert.Equal(KfmErrorKind.ObjectNotFound, e.Kind);
        Assert.Contains("-ConfigPath", e.Message);
        Assert.Contains("nope.yaml", e.Message);

        var fromEnv = Assert.Throws<KfmException>(() => ConfigLocator.Resolve(null, "gone.yaml", _dir));
        Assert.Contains("$KFM_ROLLBACK_CONFIG", fromEnv.Message);
    }

    [Fact]
    public void LocateAndLoadUsesTheResolvedFile()
    {
        var path = Path.Combine(_dir, "from-env.yaml");
        File.WriteAllText(path, ConfigTestSupport.Minimal);
        var config = KfmConfigLoader.LocateAndLoad(null, path, _dir);
        Assert.Equal(path, config.SourcePath);
        Assert.Equal(Path.Combine(_dir, "infra"), config.GetEnvironment("prod").Gitops.Path);
    }

    [Fact]
    public void NothingFoundNamesEverySearchedPlace()
    {
        var e = Assert.Throws<KfmException>(() => ConfigLocator.Resolve(null, null, _dir));
        Assert.Equal(ConfigErrorIds.ConfigNotFound, e.ErrorId);
        Assert.Contains("-ConfigPath", e.Message);
        Assert.Contains("$KFM_ROLLBACK_CONFIG", e.Message);
        Assert.Contains(Path.Combine(_dir, "kfm-rollback.yaml"), e.Message);
    }
}
