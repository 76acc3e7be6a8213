using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;

namespace KfmRollback.Engine.Adapters.BlobStorage;

/// <summary>
/// An Azure Blob Storage container through Azure.Storage.Blobs (the Blob service REST API: Put Blob with
/// <c>If-None-Match: *</c>, Get Blob, List Blobs). Works with a connection string or with a SAS for the
/// container; least privilege is a SAS with read, create and list only (no write: nothing is overwritten,
/// no delete).
/// </summary>
public sealed class AzureBlobContainer : IBlobContainer
{
    private readonly BlobContainerClient _client;

    private AzureBlobContainer(BlobContainerClient client)
    {
        _client = client;
        Description = $"blob container {client.Name} at {new UriBuilder(client.Uri) { Query = string.Empty }.Uri.GetLeftPart(UriPartial.Authority)}";
    }

    public string Description { get; }

    /// <summary>A container reached with an account connection string (account key, or a SAS with its endpoints).</summary>
    public static AzureBlobContainer FromConnectionString(string connectionString, string container) =>
        Create(() => new BlobContainerClient(connectionString, container, Options()));

    /// <summary>A container under <paramref name="serviceUrl"/> (https://&lt;account&gt;.blob.core.windows.net) reached with a SAS token.</summary>
    public static AzureBlobContainer FromSas(Uri serviceUrl, string sasToken, string container) =>
        Create(() => new BlobContainerClient(new Uri(serviceUrl.GetLeftPart(UriPartial.Path).TrimEnd('/') + "/" + container),
            new AzureSasCredential(sasToken.TrimStart('?')), Options()));

    private static AzureBlobContainer Create(Func<BlobContainerClient> client)
    {
        try
        {
            return new AzureBlobContainer(client());
        }
        catch (Exception e) when (e is FormatException or ArgumentException or UriFormatException)
        {
            // The SDK's parse errors may quote the connection string; say only what is wrong with it.
            throw new BlobStorageException(BlobFailure.Denied, "connect", "the connection string or SAS is not in a form the Blob service client accepts", null);
        }
    }

    // Few, short retries: a receipt save is interactive and has its own retry for races.
    private static BlobClientOptions Options()
    {
        var options = new BlobClientOptions();
        options.Retry.MaxRetries = 2;
        options.Retry.Delay = TimeSpan.FromMilliseconds(200);
        options.Retry.NetworkTimeout = TimeSpan.FromSeconds(30);
        options.Diagnostics.IsLoggingEnabled = false;
        options.Diagnostics.IsTelemetryEnabled = false;
        return options;
    }

    public bool TryCreate(string name, byte[] content, CancellationToken cancellationToken)
    {
        var upload = new BlobUploadOptions { Conditions = new BlobRequestConditions { IfNoneMatch = ETag.All } };
        try
        {
            Call("create", () => _client.GetBlobClient(name).Upload(new BinaryData(content), upload, cancellationToken));
            return true;
        }
        catch (BlobStorageException e) when (e.InnerException is RequestFailedException { Status: 409 or 412 } taken
            && taken.ErrorCode is "BlobAlreadyExists" or "ConditionNotMet")
        {
            return false;
        }
    }

    public byte[]? Read(string name, CancellationToken cancellationToken)
    {
        try
        {
            return Call("read", () => _client.GetBlobClient(name).DownloadContent(cancellationToken).Value.Content.ToArray());
        }
        catch (BlobStorageException e) when (e.InnerException is RequestFailedException { Status: 404, ErrorCode: "BlobNotFound" })
        {
            return null;
        }
    }

    public IReadOnlyList<BlobListing> List(string prefix, CancellationToken cancellationToken) =>
        Call("list", () => _client.GetBlobs(BlobTraits.None, BlobStates.None, prefix, cancellationToken)
            .Select(b => new BlobListing(b.Name, b.Properties.ContentHash, b.Properties.ContentLength ?? 0))
            .OrderBy(b => b.Name, StringComparer.Ordinal)
            .ToList());

    private T Call<T>(string operation, Func<T> call)
    {
        try
        {
            return call();
        }
        catch (RequestFailedException e)
        {
            var failure = e.Status is 401 or 403 ? BlobFailure.Denied
                : e.Status == 404 && e.ErrorCode == "ContainerNotFound" ? BlobFailure.ContainerNotFound
                : BlobFailure.Unavailable;
            var detail = e.Status == 0 ? "the service did not answer" : $"HTTP {e.Status}{(e.ErrorCode is null ? string.Empty : " " + e.ErrorCode)}";
            throw new BlobStorageException(failure, operation, detail, e);
        }
        catch (AggregateException e) when (e.InnerExceptions.All(i => i is RequestFailedException or HttpRequestException or TaskCanceledException))
        {
            throw new BlobStorageException(BlobFailure.Unavailable, operation, "the service did not answer", e);
        }
    }
}
