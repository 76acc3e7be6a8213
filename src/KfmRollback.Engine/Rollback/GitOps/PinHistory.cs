using KfmRollback.Engine.Adapters.Git;
using KfmRollback.Engine.Adapters.GitOpsFiles;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Refs;
using LibGit2Sharp;

namespace KfmRollback.Engine.Rollback.GitOps;

/// <summary>
/// The pinned value as the deploy branch last had it at a digest (issue 19 item 5): when the target
/// came from Git history, the pin returns to exactly that revision's line, so a Renovate-style
/// <c>tag: 1.2.3@sha256:…</c> gets its old tag back with its old digest, never the new tag beside the
/// old digest (which names a build that tag never was). The walk is the GitOps history of
/// <see cref="GitOpsRefSource.History"/>, the same one that chose the last-known-good.
/// </summary>
internal static class PinHistory
{
    /// <summary>The pin's value (the scalar as written, without quotes) in the newest revision that pinned <paramref name="digest"/>, or null.</summary>
    public static string? ValueWhenPinned(Repository repo, Commit tip, GitOpsConfig config, string digest)
    {
        GitOpsRefChange? change = GitOpsRefSource.History(config, repo, tip, int.MaxValue)
            .FirstOrDefault(c => c.Digest == digest && c.Unreadable is null);
        if (change is null || GitOpsRepository.ReadFile(repo.Lookup<Commit>(change.Commit), config.File) is not { } bytes)
            return null;
        try
        {
            ImagePin pin = ImagePinLocator.For(config).Locate(YamlText.Parse(config.File, bytes));
            return pin.Digest == digest ? pin.ValueSpan.Value : null;
        }
        catch (KfmException)
        {
            return null; // that revision pinned it in a shape this edit cannot reuse: the digest alone is written
        }
    }
}
