using System.Text;
using KfmRollback.Engine.Adapters.Git;
using KfmRollback.Engine.Adapters.GitOpsFiles;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Core;

namespace KfmRollback.Engine.Tests.GitOps;

/// <summary>Argo CD Helm values written as a string (spec.source.helm.values: |): edited in place, or refused naming what cannot be read.</summary>
public sealed class EmbeddedValuesTests
{
    private static YamlText Parse(string text) => YamlText.Parse("apps/kfm-api.yaml", Encoding.UTF8.GetBytes(text));

    [Fact]
    public void The_pin_inside_the_values_string_is_read_and_rewritten_on_its_own_line()
    {
        var file = Parse(FormatCorpusReal.ArgoHelmValuesBlock(FormatCorpus.Old));
        var locator = new ImagePinLocator(GitOpsKind.Helm, null, FormatCorpusReal.ArgoValuesBlock);

        ImagePin pin = locator.Locate(file);
        string edited = ImagePinEditor.SetDigest(file, pin, FormatCorpus.New);

        Assert.Equal(("registry.example.test/kfm/api", FormatCorpus.Old), (pin.Repository, pin.Digest));
        Assert.Equal("Application/ingress-nginx spec.source.helm.values (line 14) » image.digest (line 16)", pin.Location);
        Assert.Equal(FormatCorpusReal.ArgoHelmValuesBlock(FormatCorpus.New), edited);
        Assert.Equal(("registry.example.test/kfm/api@" + FormatCorpus.Old, (string?)FormatCorpus.Old), locator.ReadHelmLoosely(file));
    }

    [Fact]
    public void Without_the_block_setting_the_error_says_where_the_values_string_is_instead_of_no_value()
    {
        var file = Parse(FormatCorpusReal.ArgoHelmValuesBlock(FormatCorpus.Old));

        var e = Assert.Throws<KfmException>(() => new ImagePinLocator(GitOpsKind.Helm, null).Locate(file));

        Assert.Equal(GitOpsErrorIds.ImageNotFound, e.ErrorId);
        Assert.Contains("The values are a string at spec.source.helm.values (line 14)", e.Message);
        Assert.Contains("set gitops.helm_values.block: spec.source.helm.values", e.Message);
    }

    [Theory]
    [InlineData("values: >\n        image:\n          repository: r.example.test/kfm/api\n          digest: D\n", "folded (>)")]
    [InlineData("values: \"image: {repository: r.example.test/kfm/api, digest: D}\"\n", "double-quoted")]
    [InlineData("values: |2\n          image:\n            repository: r.example.test/kfm/api\n            digest: D\n", "explicit indentation")]
    [InlineData("values:\n        image: {repository: r.example.test/kfm/api, digest: D}\n", "not a string")]
    public void A_values_string_that_cannot_be_mapped_back_is_refused_naming_what_and_offering_revert(string values, string why)
    {
        var file = Parse("kind: Application\nmetadata: {name: kfm-api}\nspec:\n  source:\n    helm:\n      " + values.Replace("D", FormatCorpus.Old));

        var e = Assert.Throws<KfmException>(() => new ImagePinLocator(GitOpsKind.Helm, null, FormatCorpusReal.ArgoValuesBlock).Locate(file));

        Assert.Equal(GitOpsErrorIds.ValuesUnreadable, e.ErrorId);
        Assert.Contains("cannot read the Helm values at Application/kfm-api spec.source.helm.values", e.Message);
        Assert.Contains(why, e.Message);
        Assert.Contains("-Revert <sha>", e.Message);
    }
}

/// <summary>gitops.container naming several containers (an init container running migrations on the API's image): pinned together.</summary>
public sealed class SeveralContainersTests
{
    private static readonly CorpusFile Layout = FormatCorpus.All().Single(c => c.Name == "raw-one-image-two-containers");

    [Fact]
    public void Both_named_containers_are_pinned_on_their_own_lines_and_nothing_else_changes()
    {
        var file = YamlText.Parse(Layout.Name, Encoding.UTF8.GetBytes(Layout.Text));
        var locator = new ImagePinLocator(GitOpsKind.Raw, "kfm/api", null, new PinSelection { Container = ["migrate", "api"] });

        ImagePin pin = locator.Locate(file);
        string edited = ImagePinEditor.SetDigest(file, pin, FormatCorpus.New);

        Assert.Equal("container 'migrate' at Deployment/kfm-api spec.template.spec.initContainers[0].image (line 9)", pin.Location);
        Assert.Single(pin.Others);
        Assert.Equal(Layout.Text.Replace(FormatCorpus.Old, FormatCorpus.New), edited);
        string[] before = Layout.Text.Split('\n'), after = edited.Split('\n');
        Assert.Equal(new[] { 9, 13 }, Enumerable.Range(0, before.Length).Where(i => before[i] != after[i]).Select(i => i + 1));
        ImagePin reread = locator.Locate(YamlText.Parse(Layout.Name, Encoding.UTF8.GetBytes(edited)));
        Assert.Equal(new[] { FormatCorpus.New, FormatCorpus.New }, reread.Others.Prepend(reread).Select(p => p.Digest));
    }

    [Fact]
    public void Named_containers_running_different_builds_are_refused()
    {
        string text = Layout.Text.Replace($"api@{FormatCorpus.Old}   # the API", $"api@{FormatCorpus.New}   # the API");
        var file = YamlText.Parse(Layout.Name, Encoding.UTF8.GetBytes(text));

        var e = Assert.Throws<KfmException>(() => new ImagePinLocator(GitOpsKind.Raw, "kfm/api", null, new PinSelection { Container = ["migrate", "api"] }).Locate(file));

        Assert.Equal(GitOpsErrorIds.ImageAmbiguous, e.ErrorId);
        Assert.Contains("run different images", e.Message);
        Assert.Contains("-Revert <sha>", e.Message);
    }
}
