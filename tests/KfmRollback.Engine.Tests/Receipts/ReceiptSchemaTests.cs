using System.Text.Json.Nodes;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Receipts;
using Xunit;

namespace KfmRollback.Engine.Tests.Receipts;

public class ReceiptSchemaTests
{
    private static JsonObject Good() => ReceiptJson.ToJsonObject(Samples.Receipt());

    [Fact]
    public void GoodReceipt_IsAccepted()
    {
        Assert.Empty(ReceiptSchema.Check(Good()));
    }

    [Fact]
    public void SchemaShippedInDocs_IsTheOneEmbedded()
    {
        var repoRoot = AppContext.BaseDirectory;
        while (repoRoot is not null && !File.Exists(Path.Combine(repoRoot, "KfmRollback.sln"))) repoRoot = Path.GetDirectoryName(repoRoot);
        Assert.NotNull(repoRoot);
        Assert.Equal(File.ReadAllText(Path.Combine(repoRoot!, "docs", "rollback-receipt.schema.json")), ReceiptSchema.Text);
    }

    public static TheoryData<string, Action<JsonObject>> BadFields() => new()
    {
        { "/run_type", r => r["run_type"] = "ops.api.deploy" },
        { "/incident_id", r => r["incident_id"] = "" },
        { "/requested_by", r => r["requested_by"] = 42 },
        { "/approved_by", r => r["approved_by"] = "" },
        { "/started_at", r => r["started_at"] = "2026-03-02T00:00:00+01:00" },
        { "/completed_at", r => r["completed_at"] = "yesterday" },
        { "/environment", r => r["environment"] = "Prod" },
        { "/reason", r => r["reason"] = "" },
        { "/current_ref", r => r["current_ref"] = "kfm-api:v1.2" },
        { "/rollback_target_ref", r => r["rollback_target_ref"] = "sha256:ABC" },
        { "/changed_surfaces", r => r["changed_surfaces"] = new JsonArray("api", "api") },
        { "/changed_surfaces/0", r => r["changed_surfaces"] = new JsonArray("dataset") },
        { "/changed_surfaces", r => r["changed_surfaces"] = new JsonArray() },
        { "/verification/health", r => r["verification"]!["health"] = "ok" },
        { "/verification", r => r["verification"]!.AsObject().Remove("contract_smoke") },
        { "/notes", r => r["notes"] = null },
        { "/kfm_integrity/canonicalization", r => r["kfm_integrity"]!["canonicalization"] = "none" },
        { "/kfm_integrity/subjects/0/digest/sha256", r => r["kfm_integrity"]!["subjects"]![0]!["digest"]!["sha256"] = "xyz" },
        { "/extra_field", r => r["extra_field"] = "not allowed" },
        { "/", r => r.Remove("approved_by") },
    };

    [Theory]
    [MemberData(nameof(BadFields))]
    public void EachBadField_IsRejectedAtItsLocation(string location, Action<JsonObject> spoil)
    {
        var receipt = Good();
        spoil(receipt);
        var problems = ReceiptSchema.Check(receipt);
        Assert.True(problems.Any(p => p.StartsWith(location + ":", StringComparison.Ordinal)), string.Join(" | ", problems));
        var ex = Assert.Throws<KfmException>(() => ReceiptSchema.Validate(receipt));
        Assert.Equal("ReceiptSchemaInvalid", ex.ErrorId);
    }

    [Fact]
    public void RejectionMessage_DoesNotQuoteFieldValues()
    {
        var receipt = Good();
        receipt["current_ref"] = "registry-user:hunter2@image";
        var ex = Assert.Throws<KfmException>(() => ReceiptJson.FromJsonNode(receipt));
        Assert.Contains("/current_ref", ex.Message);
        Assert.DoesNotContain("hunter2", ex.Message);
    }
}
