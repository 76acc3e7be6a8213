using System.Text.Json.Nodes;
using Json.Schema;
using KfmRollback.Engine.Core;

namespace KfmRollback.Engine.Receipts;

/// <summary>
/// The receipt's JSON Schema (docs/rollback-receipt.schema.json, embedded). Every receipt is checked
/// against it before it is handed out or stored, so the file on disk always matches the published contract.
/// </summary>
public static class ReceiptSchema
{
    private const string ResourceName = "KfmRollback.Engine.Receipts.rollback-receipt.schema.json";

    private static readonly Lazy<string> LazyText = new(() =>
    {
        using var stream = typeof(ReceiptSchema).Assembly.GetManifestResourceStream(ResourceName)
            ?? throw new InvalidOperationException($"Embedded resource {ResourceName} is missing from the engine assembly.");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    });

    private static readonly Lazy<JsonSchema> LazySchema = new(() => JsonSchema.FromText(LazyText.Value));

    // JsonSchema.Net builds and caches evaluation state inside the schema object on first use; concurrent
    // saves share one schema, so evaluations are serialised rather than trusting that cache to be thread-safe.
    private static readonly object EvaluationGate = new();

    public static string Text => LazyText.Value;

    /// <summary>
    /// Problems as "&lt;instance location&gt;: &lt;keyword&gt;" only. Library messages are not repeated
    /// because some quote the offending value, and a wrong field may hold a secret.
    /// </summary>
    public static IReadOnlyList<string> Check(JsonNode? receipt)
    {
        var options = new EvaluationOptions
        {
            OutputFormat = OutputFormat.List,
            RequireFormatValidation = true,
        };
        EvaluationResults result;
        lock (EvaluationGate) result = LazySchema.Value.Evaluate(receipt, options);
        if (result.IsValid) return Array.Empty<string>();
        var problems = new List<string>();
        foreach (var detail in result.Details)
        {
            if (detail.IsValid || detail.Errors is null) continue;
            var location = detail.InstanceLocation.ToString();
            foreach (var keyword in detail.Errors.Keys)
            {
                // An empty keyword is a 'false' subschema: here, a member additionalProperties forbids.
                problems.Add($"{(location.Length == 0 ? "/" : location)}: {(keyword.Length == 0 ? "not allowed" : keyword)}");
            }
        }
        if (problems.Count == 0) problems.Add("/: schema");
        return problems.Distinct().ToList();
    }

    public static void Validate(JsonNode? receipt)
    {
        var problems = Check(receipt);
        if (problems.Count == 0) return;
        throw new KfmException("ReceiptSchemaInvalid", KfmErrorKind.InvalidData,
            $"The receipt does not match {KfmIntegrity.SchemaId} ({string.Join("; ", problems)}). " +
            "Fix those fields (see docs/rollback-receipt.schema.json) or create the receipt with New-KfmRollbackReceipt.");
    }
}
