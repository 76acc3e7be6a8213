using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Core;
using Xunit;

namespace KfmRollback.Engine.Tests.Configuration;

/// <summary>Shared fixtures: a minimal valid config and helpers to load text and catch errors.</summary>
internal static class ConfigTestSupport
{
    public const string BaseDirectory = "/srv/kfm";

    /// <summary>Smallest config that loads; tests splice their faults into it.</summary>
    public const string Minimal = """
        defaults:
          incident_journal: journal
          receipt_store: receipts
        environments:
          prod:
            cluster:
              namespace: kfm
              deployment: kfm-api
            gitops:
              path: infra
              file: apps/kfm-api/kustomization.yaml
              kind: kustomize
              image_name: kfm-api
            freeze:
              mechanisms:
                - kind: argocd
                  name: kfm-api
            prometheus:
              url: http://prom.test:9090
            api:
              base_url: https://api.test
              contract_snapshot_dir: contracts
              probe:
                callers:
                  anon:
                    anonymous: true
                    role: public
                endpoints:
                  - path: /api/v1/datasets
        """;

    public static KfmConfig Load(string yaml) => KfmConfigLoader.LoadFromText(yaml, "kfm-rollback.yaml", BaseDirectory);

    public static KfmException LoadFails(string yaml, string errorId)
    {
        var e = Assert.Throws<KfmException>(() => Load(yaml));
        Assert.True(errorId == e.ErrorId, $"expected {errorId}, got {e.ErrorId}: {e.Message}");
        return e;
    }

    /// <summary>Minimal with one line replaced (exact, whole-line match) by one or more lines.</summary>
    public static string Replace(string line, string replacement)
    {
        var lines = Minimal.Split('\n').ToList();
        var index = lines.FindIndex(l => l == line);
        Assert.True(index >= 0, $"fixture has no line '{line}'");
        lines[index] = replacement;
        return string.Join('\n', lines);
    }

    /// <summary>Minimal with lines inserted after the (exact, whole-line) anchor.</summary>
    public static string InsertAfter(string anchor, string insertion) => Replace(anchor, anchor + "\n" + insertion);

    public static EnvironmentConfig Prod(string yaml) => Load(yaml).GetEnvironment("prod");

    public static string RepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "KfmRollback.sln")))
            dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("repository root (KfmRollback.sln) not found");
    }
}
