using KfmRollback.Engine.Adapters.GitOpsFiles;
using KfmRollback.Engine.Adapters.Git;
using System.Text;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Configuration;

namespace KfmRollback.Engine.Tests.GitOps;

public class GitOpsFormatFidelityTests
{
    public static IEnumerable<object[]> Corpus() => FormatCorpus.All().Select(f => new object[] { f });

    [Fact]
    public void CorpusHasAtLeastTwentyFiles() => Assert.True(FormatCorpus.All().Count() >= 20);

    [Theory]
    [MemberData(nameof(Corpus))]
    public void OnlyTheRefLineChanges(CorpusFile corpus)
    {
        byte[] before = Encoding.UTF8.GetBytes(corpus.Text);
        var file = YamlText.Parse(corpus.Name, before);
        var locator = new ImagePinLocator(corpus.Kind, corpus.ImageName, corpus.Helm, corpus.Select);
        var pin = locator.Locate(file);

        byte[] after = file.Encode(ImagePinEditor.SetDigest(file, pin, FormatCorpus.New));

        string beforeText = Encoding.UTF8.GetString(before);
        string afterText = Encoding.UTF8.GetString(after);
        Assert.Equal(beforeText.StartsWith('\uFEFF'), afterText.StartsWith('\uFEFF'));
        var beforeLines = beforeText.Split('\n');
        var afterLines = afterText.Split('\n');
        Assert.Equal(beforeLines.Length, afterLines.Length);
        var changed = Enumerable.Range(0, beforeLines.Length).Where(i => beforeLines[i] != afterLines[i]).Select(i => i + 1).ToList();
        Assert.Equal(new[] { corpus.RefLine }, changed);
        Assert.Contains(FormatCorpus.New, afterLines[corpus.RefLine - 1]);
        Assert.Equal(beforeLines[corpus.RefLine - 1].EndsWith('\r'), afterLines[corpus.RefLine - 1].EndsWith('\r'));

        // The edit must read back as the new digest (the parse sees what the reconciler will).
        var reread = locator.Locate(YamlText.Parse(corpus.Name, after));
        Assert.Equal(FormatCorpus.New, reread.Digest);
        Assert.Equal(pin.Repository, reread.Repository);
    }

    [Fact]
    public void KustomizeTagOnlyBecomesDigestOnTheSameLine()
    {
        var corpus = FormatCorpus.All().Single(c => c.Name == "kustomize-tag-only");
        var file = YamlText.Parse(corpus.Name, Encoding.UTF8.GetBytes(corpus.Text));
        string edited = ImagePinEditor.SetDigest(file, new ImagePinLocator(corpus.Kind, corpus.ImageName).Locate(file), FormatCorpus.New);
        Assert.Contains($"  digest: {FormatCorpus.New} # bumped by release bot", edited);
        Assert.DoesNotContain("v1.9.0", edited);
    }

    [Fact]
    public void UnparsableYamlNamesFileAndLine()
    {
        var e = Assert.Throws<KfmException>(() => YamlText.Parse("apps/api/kustomization.yaml", Encoding.UTF8.GetBytes("images:\n  - name: kfm-api\n    digest: [unclosed\n  other: x\n")));
        Assert.Equal(GitOpsErrorIds.YamlInvalid, e.ErrorId);
        Assert.Matches(@"^apps/api/kustomization\.yaml:\d+: is not valid YAML", e.Message);
        Assert.DoesNotMatch(@"^apps/api/kustomization\.yaml:0:", e.Message);
    }

    [Fact]
    public void TagTargetIsRefused()
    {
        var corpus = FormatCorpus.All().First();
        var file = YamlText.Parse(corpus.Name, Encoding.UTF8.GetBytes(corpus.Text));
        var pin = new ImagePinLocator(corpus.Kind, corpus.ImageName).Locate(file);
        var e = Assert.Throws<KfmException>(() => ImagePinEditor.SetDigest(file, pin, "v1.8.0"));
        Assert.Equal(GitOpsErrorIds.DigestRequired, e.ErrorId);
        Assert.Equal(KfmErrorKind.Ambiguous, e.Kind);
        Assert.Contains("-ToRef", e.Message);
    }

    [Fact]
    public void HelmWithTagButNoDigestKeyFailsClosed()
    {
        var file = YamlText.Parse("values.yaml", Encoding.UTF8.GetBytes("image:\n  repository: registry.example.test/kfm/api\n  tag: \"1.9.0\"\n"));
        var e = Assert.Throws<KfmException>(() => new ImagePinLocator(KfmRollback.Engine.Configuration.GitOpsKind.Helm, null).Locate(file));
        Assert.Equal(GitOpsErrorIds.NoDigestField, e.ErrorId);
        Assert.Contains("gitops.helm_values.digest", e.Message);
        // Reading still works: Get-KfmApiRef shows the tag it found.
        Assert.Equal(("registry.example.test/kfm/api:1.9.0", (string?)null), new ImagePinLocator(KfmRollback.Engine.Configuration.GitOpsKind.Helm, null).ReadHelmLoosely(file));
    }

    [Fact]
    public void RawWithTwoMatchingImagesNamesTheLines()
    {
        var file = YamlText.Parse("deploy.yaml", Encoding.UTF8.GetBytes("a:\n  image: r.example.test/kfm/api@" + FormatCorpus.Old + "\n---\nb:\n  image: other.example.test/kfm/api:2\n"));
        var e = Assert.Throws<KfmException>(() => new ImagePinLocator(KfmRollback.Engine.Configuration.GitOpsKind.Raw, "kfm/api").Locate(file));
        Assert.Equal(GitOpsErrorIds.ImageAmbiguous, e.ErrorId);
        Assert.Contains("lines 2, 5", e.Message);
        Assert.Contains("gitops.image_name", e.Message);
    }
}

/// <summary>Several pins and no configuration to choose: each layout fails closed, naming the choices and the key that picks one.</summary>
public class GitOpsPinAmbiguityTests
{
    /// <summary>Asserts the locator refuses as ambiguous and its message names every choice and the key (the last mention).</summary>
    private static void Fails(string text, GitOpsKind kind, string? image, HelmValuePaths? helm, PinSelection? select, params string[] mentions)
    {
        var file = YamlText.Parse("f.yaml", Encoding.UTF8.GetBytes(text));
        var e = Assert.Throws<KfmException>(() => new ImagePinLocator(kind, image, helm, select).Locate(file));
        Assert.Equal(GitOpsErrorIds.ImageAmbiguous, e.ErrorId);
        Assert.Equal(KfmErrorKind.Ambiguous, e.Kind);
        Assert.All(mentions, m => Assert.Contains(m, e.Message));
    }

    private static CorpusFile Layout(string name) => FormatCorpus.All().Single(c => c.Name == name);

    [Fact]
    public void TwoContainersOfOneImageNeedTheContainerKey()
    {
        Fails(Layout("raw-one-image-two-containers").Text, GitOpsKind.Raw, "kfm/api", null, null,
            "container 'migrate'", "container 'api'", "set gitops.container");
    }

    [Fact]
    public void TwoApplicationsNeedTheResourceKey()
    {
        Fails(Layout("argocd-two-applications-resource").Text, GitOpsKind.Kustomize, "kfm-api", null, new PinSelection { ImagesPath = "spec.source.kustomize.images" },
            "Application/kfm-api-staging spec.source.kustomize.images[0] (line 8)", "Application/kfm-api-prod spec.source.kustomize.images[0] (line 17)", "set gitops.resource");
    }

    [Fact]
    public void TwoPostRenderersNeedAnIndexedImagesPath()
    {
        string text = "kind: HelmRelease\nmetadata: {name: kfm-api}\nspec:\n  postRenderers:\n    - kustomize: {images: [{name: kfm-api, digest: " + FormatCorpus.Old + "}]}\n    - kustomize: {images: [{name: kfm-api, digest: " + FormatCorpus.Old + "}]}\n";
        Fails(text, GitOpsKind.Kustomize, "kfm-api", null, new PinSelection { ImagesPath = "spec.postRenderers[].kustomize.images" },
            "spec.postRenderers[0].kustomize.images[0]", "spec.postRenderers[1].kustomize.images[0]", "set gitops.images_path");
        // The indexed path the message suggests resolves it.
        var pin = new ImagePinLocator(GitOpsKind.Kustomize, "kfm-api", null, new PinSelection { ImagesPath = "spec.postRenderers[1].kustomize.images" }).Locate(YamlText.Parse("f.yaml", Encoding.UTF8.GetBytes(text)));
        Assert.Equal(6, pin.ValueSpan.Span.Line);
    }

    [Fact]
    public void AHelmListWildcardMatchingTwoContainersNeedsAnIndex()
    {
        Fails(Layout("helm-list-index").Text, GitOpsKind.Helm, null,
            new HelmValuePaths { Repository = "api.containers[].image.repository", Digest = "api.containers[].image.digest", Tag = "api.containers[].image.tag" }, null,
            "api.containers[0].image.repository", "api.containers[1].image.repository", "set gitops.helm_values.repository");
    }

    [Fact]
    public void DuplicateArgoParametersNeedTheDigestKey()
    {
        string text = "kind: Application\nmetadata: {name: kfm-api}\nspec:\n  source:\n    helm:\n      parameters:\n        - {name: image.repository, value: r.example.test/kfm/api}\n        - {name: image.digest, value: " + FormatCorpus.Old + "}\n        - {name: image.digest, value: " + FormatCorpus.Old + "}\n";
        Fails(text, GitOpsKind.Helm, null, new HelmValuePaths { Parameters = "spec.source.helm.parameters" }, null,
            "spec.source.helm.parameters[1].value", "spec.source.helm.parameters[2].value", "gitops.helm_values.digest");
    }

    [Fact]
    public void HelmTagAtDigestKeepsTheTag()
    {
        var corpus = Layout("helm-tag-at-digest");
        var file = YamlText.Parse(corpus.Name, Encoding.UTF8.GetBytes(corpus.Text));
        string edited = ImagePinEditor.SetDigest(file, new ImagePinLocator(corpus.Kind, null).Locate(file), FormatCorpus.New);
        Assert.Contains($"  tag: \"1.2.3@{FormatCorpus.New}\" # renovate: datasource=docker", edited);
    }

    [Fact]
    public void ArgoAliasIsKeptAndTagReplacedByDigest()
    {
        var corpus = Layout("argocd-kustomize-images-tag");
        var file = YamlText.Parse(corpus.Name, Encoding.UTF8.GetBytes(corpus.Text));
        string edited = ImagePinEditor.SetDigest(file, new ImagePinLocator(corpus.Kind, corpus.ImageName, null, corpus.Select).Locate(file), FormatCorpus.New);
        Assert.Contains($"images: ['registry.example.test/kfm/api@{FormatCorpus.New}', 'registry.example.test/kfm/worker:1.9.0']", edited);
        var alias = Layout("argocd-kustomize-images-alias");
        var aliased = YamlText.Parse(alias.Name, Encoding.UTF8.GetBytes(alias.Text));
        Assert.Contains($"- kfm-api=registry.example.test/kfm/api@{FormatCorpus.New} # pinned", ImagePinEditor.SetDigest(aliased, new ImagePinLocator(alias.Kind, alias.ImageName, null, alias.Select).Locate(aliased), FormatCorpus.New));
    }
}
