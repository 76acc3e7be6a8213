using System.Text.Json.Nodes;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Receipts;
using Xunit;

namespace KfmRollback.Engine.Tests.Receipts;

public class ReceiptFactoryTests
{
    [Fact]
    public void Create_FillsTheRunbookFieldsWithExactNamesAndDefaults()
    {
        var input = Samples.Input();
        input.ChangedSurfaces = new[] { "Policy", "api", "policy" };
        input.Health = "PASS";
        input.ContractSmoke = "fail";
        var receipt = Samples.Factory().Create(input);
        var json = ReceiptJson.ToJsonObject(receipt);

        Assert.Equal("ops.api.rollback", (string?)json["run_type"]);
        Assert.Equal("2026-03-02T12:10:00Z", (string?)json["started_at"]);
        Assert.Equal("2026-03-02T12:30:00Z", (string?)json["completed_at"]); // defaulted from the clock
        Assert.Equal(new[] { "api", "policy" }, json["changed_surfaces"]!.AsArray().Select(n => (string?)n));
        Assert.Equal("pass", (string?)json["verification"]!["health"]);
        Assert.Equal("fail", (string?)json["verification"]!["contract_smoke"]);
        Assert.Equal(new[]
        {
            "run_type", "incident_id", "requested_by", "approved_by", "started_at", "completed_at", "environment", "reason",
            "current_ref", "rollback_target_ref", "changed_surfaces", "verification", "notes", "kfm_integrity",
        }, json.Select(p => p.Key));
        var integrity = json["kfm_integrity"]!;
        Assert.Equal("RFC8785", (string?)integrity["canonicalization"]);
        Assert.Equal("sha256", (string?)integrity["digest_algorithm"]);
        Assert.Equal(KfmIntegrity.SchemaId, (string?)integrity["schema"]);
        Assert.Equal("prod/current_ref", (string?)integrity["subjects"]![0]!["name"]);
        Assert.Equal(Samples.CurrentDigest["sha256:".Length..], (string?)integrity["subjects"]![0]!["digest"]!["sha256"]);
        Assert.Null(integrity["revision"]);
    }

    [Fact]
    public void Create_RecordsTheVerdictsBaselineAsAnExtension_AndLeavesTheRunbookFieldsAlone()
    {
        var input = Samples.Input();
        input.Baseline = (new DateTimeOffset(2026, 3, 2, 11, 30, 0, TimeSpan.Zero), new DateTimeOffset(2026, 3, 2, 12, 0, 0, TimeSpan.Zero),
            "the latest clean window before the incident, clear of incidents, deploys and SLO breaches; refused: incident INC-1041");
        var json = ReceiptJson.ToJsonObject(Samples.Factory().Create(input));
        var baseline = json["kfm_integrity"]!["baseline"]!;
        Assert.Equal("2026-03-02T11:30:00Z", (string?)baseline["from"]);
        Assert.Equal("2026-03-02T12:00:00Z", (string?)baseline["to"]);
        Assert.Contains("refused: incident INC-1041", (string?)baseline["reason"]);
        Assert.Equal(new[] { "health", "policy_invariants", "contract_smoke" }, json["verification"]!.AsObject().Select(p => p.Key));
        Assert.Null(ReceiptJson.ToJsonObject(Samples.Receipt())["kfm_integrity"]!["baseline"]);
    }

    [Fact]
    public void Create_AcceptsGitShaAndImageAtDigest_AndRecordsRevisionDetail()
    {
        var input = Samples.Input();
        input.CurrentRef = "images.example.invalid/kfm/kfm-api@sha256:" + new string('A', 64);
        input.RollbackTargetRef = Samples.GitSha.ToUpperInvariant();
        input.RevisionMethod = "Cluster";
        input.RevisionFrom = "7";
        input.RevisionTo = "6";
        var receipt = Samples.Factory().Create(input);
        Assert.Equal("sha256:" + new string('a', 64), receipt.CurrentRef);
        Assert.Equal(Samples.GitSha, receipt.RollbackTargetRef);
        Assert.Equal("gitCommit", receipt.KfmIntegrity.Subjects[1].Digest.Keys.Single());
        Assert.Equal("cluster", receipt.KfmIntegrity.Revision!.Method);
        Assert.Equal("6", receipt.KfmIntegrity.Revision.To);
    }

    [Theory]
    [InlineData("kfm-api:v1.2", "tag")]
    [InlineData("latest", "latest")]
    [InlineData("0123abc", "abbreviated git SHA")]
    [InlineData("sha256:1234", "sha256 digest")]
    [InlineData("main", "branch or tag")]
    public void MutableOrShortRefs_AreRefusedWithHowToGetADigest(string badRef, string expectedHint)
    {
        var input = Samples.Input();
        input.RollbackTargetRef = badRef;
        var ex = Assert.Throws<KfmException>(() => Samples.Factory().Create(input));
        Assert.Equal("ReceiptRefNotImmutable", ex.ErrorId);
        Assert.Equal(KfmErrorKind.InvalidArgument, ex.Kind);
        Assert.Contains("rollback_target_ref", ex.Message);
        Assert.Contains(expectedHint, ex.Message);
        Assert.Contains("sha256:", ex.Message);
        Assert.Contains("git rev-parse", ex.Message);
    }

    [Fact]
    public void SecretInNotes_IsRefused_AndTheMessageNamesTheKindNotTheValue()
    {
        var token = "ghp_" + "Zq9Xw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0FeDcBa98";
        var input = Samples.Input();
        input.Notes = $"used {token} to push the revert";
        var ex = Assert.Throws<KfmException>(() => Samples.Factory().Create(input));
        Assert.Equal("ReceiptNotesLookSecret", ex.ErrorId);
        Assert.Equal(KfmErrorKind.SecurityError, ex.Kind);
        Assert.Contains("github-token", ex.Message);
        Assert.DoesNotContain(token, ex.Message);
        Assert.DoesNotContain(token[4..12], ex.Message);
        Assert.DoesNotContain(token, ex.ToString());
    }

    [Fact]
    public void SecretInReason_IsRefusedToo()
    {
        var input = Samples.Input();
        input.Reason = "rollback; password=CorrectHorse9";
        var ex = Assert.Throws<KfmException>(() => Samples.Factory().Create(input));
        Assert.Equal("ReceiptFieldLooksSecret", ex.ErrorId);
        Assert.DoesNotContain("CorrectHorse9", ex.Message);
    }

    [Theory]
    [InlineData("incident_id")]
    [InlineData("requested_by")]
    [InlineData("approved_by")]
    [InlineData("started_at")]
    [InlineData("environment")]
    [InlineData("reason")]
    [InlineData("current_ref")]
    [InlineData("changed_surfaces")]
    [InlineData("verification.health")]
    public void MissingRequiredField_IsRefusedNamingIt(string field)
    {
        var input = Samples.Input();
        switch (field)
        {
            case "incident_id": input.IncidentId = null; break;
            case "requested_by": input.RequestedBy = " "; break;
            case "approved_by": input.ApprovedBy = null; break;
            case "started_at": input.StartedAt = null; break;
            case "environment": input.Environment = null; break;
            case "reason": input.Reason = ""; break;
            case "current_ref": input.CurrentRef = null; break;
            case "changed_surfaces": input.ChangedSurfaces = Array.Empty<string>(); break;
            case "verification.health": input.Health = null; break;
        }
        var ex = Assert.Throws<KfmException>(() => Samples.Factory().Create(input));
        Assert.Equal("ReceiptFieldMissing", ex.ErrorId);
        Assert.Equal(field, ex.Target);
    }

    [Theory]
    [InlineData("surface")]
    [InlineData("outcome")]
    [InlineData("incident")]
    [InlineData("environment")]
    [InlineData("method")]
    public void InvalidValues_AreRefused(string which)
    {
        var input = Samples.Input();
        switch (which)
        {
            case "surface": input.ChangedSurfaces = new[] { "api", "dataset" }; break;
            case "outcome": input.PolicyInvariants = "mostly"; break;
            case "incident": input.IncidentId = "INC 1042; rm"; break;
            case "environment": input.Environment = "prod env"; break;
            case "method": input.RevisionMethod = "manual"; break;
        }
        var ex = Assert.Throws<KfmException>(() => Samples.Factory().Create(input));
        Assert.Equal("ReceiptFieldInvalid", ex.ErrorId);
    }

    [Fact]
    public void CompletedBeforeStarted_IsRefused()
    {
        var input = Samples.Input();
        input.CompletedAt = input.StartedAt!.Value.AddMinutes(-1);
        Assert.Equal("ReceiptTimesOutOfOrder", Assert.Throws<KfmException>(() => Samples.Factory().Create(input)).ErrorId);
    }

    [Fact]
    public void SameCurrentAndTarget_IsRefused()
    {
        var input = Samples.Input();
        input.RollbackTargetRef = input.CurrentRef;
        Assert.Equal("ReceiptRefsIdentical", Assert.Throws<KfmException>(() => Samples.Factory().Create(input)).ErrorId);
    }

    [Fact]
    public void NonUtcOffsets_AreConvertedToZ()
    {
        var input = Samples.Input();
        input.StartedAt = new DateTimeOffset(2026, 3, 2, 6, 10, 0, TimeSpan.FromHours(-6)); // America/Chicago CST
        Assert.Equal("2026-03-02T12:10:00Z", Samples.Factory().Create(input).StartedAt);
    }

    [Fact]
    public void ParseRoundTrips_AndDigestIsStable()
    {
        var receipt = Samples.Receipt();
        var text = System.Text.Encoding.UTF8.GetString(ReceiptJson.ToPrettyBytes(receipt));
        var parsed = ReceiptJson.Parse(text);
        Assert.Equal(ReceiptDigest.Of(receipt), ReceiptDigest.Of(parsed));
        Assert.Equal(ReceiptDigest.Of(receipt), ReceiptDigest.Of(JsonNode.Parse(text)));
        Assert.Matches("^sha256:[a-f0-9]{64}$", ReceiptDigest.Of(receipt));
    }
}
