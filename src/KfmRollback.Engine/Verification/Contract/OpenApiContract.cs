using KfmRollback.Engine.Adapters.Http;
using System.Text;
using System.Text.Json.Nodes;
using Json.Schema;
using KfmRollback.Engine.Core;
using Microsoft.OpenApi;
using Microsoft.OpenApi.Reader;

namespace KfmRollback.Engine.Verification.Contract;

/// <summary>One operation of the document: path template, method, and the operation with its path-level parameters merged in.</summary>
internal sealed record ContractOperation(string Path, HttpMethod Method, OpenApiOperation Operation, IReadOnlyList<IOpenApiParameter> Parameters)
{
    /// <summary>"GET /api/v1/datasets", as breaking-change reports name an operation.</summary>
    public string Name => Method.Method.ToUpperInvariant() + " " + Path;
}

/// <summary>
/// An OpenAPI document (3.0 or 3.1, JSON or YAML) read by Microsoft.OpenApi, which resolves every
/// <c>$ref</c>. Responses are validated with JsonSchema.Net against the document as the library
/// writes it in 3.1 form (a JSON Schema 2020-12 dialect), so references resolve inside that one
/// document and nothing here walks them.
/// </summary>
internal sealed class OpenApiContract
{
    private static readonly Uri DocumentUri = new("https://contract.kfm-rollback.invalid/openapi.json");
    private readonly JsonNode _serialized;

    private OpenApiContract(OpenApiDocument document, string format, string version, byte[] content)
    {
        Document = document;
        Format = format;
        Version = version;
        Content = content;
        var text = new StringWriter();
        document.SerializeAsV31(new OpenApiJsonWriter(text));
        _serialized = JsonNode.Parse(text.ToString())!;
    }

    public OpenApiDocument Document { get; }

    /// <summary>"json" or "yaml": how the API served it (and how it is recorded).</summary>
    public string Format { get; }

    /// <summary>The document's own openapi version, e.g. 3.0.3 or 3.1.0.</summary>
    public string Version { get; }

    /// <summary>The bytes as served, recorded unchanged as the last-known-good specification.</summary>
    public byte[] Content { get; }

    /// <summary>
    /// Reads a document; JSON when it starts with '{', YAML otherwise. A document the library cannot
    /// read, or reads with errors, is refused with the first errors named (no values of the API's data).
    /// </summary>
    public static async Task<OpenApiContract> ParseAsync(byte[] content, string source, CancellationToken cancellationToken)
    {
        string text = Encoding.UTF8.GetString(content).TrimStart('\uFEFF', ' ', '\t', '\r', '\n');
        string format = text.StartsWith('{') ? OpenApiConstants.Json : OpenApiConstants.Yaml;
        var settings = new OpenApiReaderSettings();
        settings.AddYamlReader();
        ReadResult result;
        try
        {
            using var stream = new MemoryStream(content, writable: false);
            result = await OpenApiDocument.LoadAsync(stream, format, settings, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is OpenApiException or FormatException or System.Text.Json.JsonException or InvalidOperationException)
        {
            throw Unreadable(source, ex.Message);
        }
        if (result.Document is null || result.Diagnostic is { Errors.Count: > 0 })
        {
            string why = result.Diagnostic is { Errors.Count: > 0 } d ? string.Join("; ", d.Errors.Take(3).Select(e => $"{e.Pointer}: {e.Message}")) : "no document";
            throw Unreadable(source, why);
        }
        string version = result.Diagnostic?.SpecificationVersion switch
        {
            OpenApiSpecVersion.OpenApi2_0 => "2.0",
            OpenApiSpecVersion.OpenApi3_0 => "3.0",
            _ => "3.1",
        };
        if (version == "2.0")
        {
            throw Unreadable(source, "it is a Swagger 2.0 document; the contract checks read OpenAPI 3.0 and 3.1");
        }
        return new OpenApiContract(result.Document, format, version, content);
    }

    private static KfmException Unreadable(string source, string why) =>
        new("ContractDocumentUnreadable", KfmErrorKind.InvalidArgument,
            $"The OpenAPI document from {source} could not be read ({why}); fix the document the API serves or api.openapi_path.", source);

    /// <summary>Every operation, in document order, with path-level parameters merged under operation-level ones.</summary>
    public IReadOnlyList<ContractOperation> Operations
    {
        get
        {
            var operations = new List<ContractOperation>();
            foreach (var (path, item) in Document.Paths ?? new OpenApiPaths())
            {
                foreach (var (method, operation) in item.Operations ?? new Dictionary<HttpMethod, OpenApiOperation>())
                {
                    var parameters = new List<IOpenApiParameter>(operation.Parameters ?? new List<IOpenApiParameter>());
                    foreach (IOpenApiParameter shared in item.Parameters ?? new List<IOpenApiParameter>())
                    {
                        if (!parameters.Any(p => p.Name == shared.Name && p.In == shared.In)) { parameters.Add(shared); }
                    }
                    operations.Add(new ContractOperation(path, method, operation, parameters));
                }
            }
            return operations;
        }
    }

    /// <summary>The response an answer with this status is documented by: the exact code, then its range (2XX), then default.</summary>
    public static (string Key, IOpenApiResponse Response)? ResponseFor(OpenApiOperation operation, int status)
    {
        if (operation.Responses is null) { return null; }
        string exact = status.ToString(System.Globalization.CultureInfo.InvariantCulture);
        foreach (string key in new[] { exact, exact[0] + "XX", exact[0] + "xx", "default" })
        {
            if (operation.Responses.TryGetValue(key, out IOpenApiResponse? response)) { return (key, response); }
        }
        return null;
    }

    /// <summary>The JSON media type of a content map (application/json, or any +json).</summary>
    public static KeyValuePair<string, IOpenApiMediaType>? JsonContent(IDictionary<string, IOpenApiMediaType>? content) =>
        content?.Where(c => IsJson(c.Key)).Select(c => (KeyValuePair<string, IOpenApiMediaType>?)c).FirstOrDefault();

    private static bool IsJson(string mediaType)
    {
        string type = mediaType.Split(';')[0].Trim();
        return type.Equals("application/json", StringComparison.OrdinalIgnoreCase) || type.EndsWith("+json", StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>
    /// Validates a body against the schema of a documented response. Violations name the location and
    /// keyword only, never a value: values could be restricted data.
    /// </summary>
    public IReadOnlyList<string> ValidateResponse(ContractOperation operation, string responseKey, string mediaType, JsonNode? body)
    {
        string pointer = "/paths/" + Escape(operation.Path) + "/" + operation.Method.Method.ToLowerInvariant() +
                         "/responses/" + Escape(responseKey) + "/content/" + Escape(mediaType) + "/schema";
        return Validate(pointer, body);
    }

    /// <summary>Validates a body against a component schema, e.g. Error.</summary>
    public IReadOnlyList<string> ValidateComponent(string name, JsonNode? body) => Validate("/components/schemas/" + Escape(name), body);

    private IReadOnlyList<string> Validate(string pointer, JsonNode? body)
    {
        var options = new EvaluationOptions { OutputFormat = OutputFormat.List };
        options.SchemaRegistry.Register(new JsonNodeBaseDocument(_serialized, DocumentUri));
        JsonSchema schema = new JsonSchemaBuilder()
            .Schema(MetaSchemas.Draft202012Id)
            .Ref(new Uri(DocumentUri + "#" + pointer))
            .Build();
        EvaluationResults results = schema.Evaluate(body, options);
        if (results.IsValid) { return Array.Empty<string>(); }
        return results.Details.Where(d => d.HasErrors && d.Errors is not null)
            .SelectMany(d => d.Errors!.Select(e => $"{d.InstanceLocation}: {e.Key}"))
            .Distinct().ToList();
    }

    /// <summary>A JSON pointer segment (RFC 6901) as a URI fragment allows it.</summary>
    private static string Escape(string segment) => Uri.EscapeDataString(segment.Replace("~", "~0", StringComparison.Ordinal).Replace("/", "~1", StringComparison.Ordinal));
}
