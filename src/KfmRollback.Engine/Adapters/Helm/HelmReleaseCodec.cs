using System.IO.Compression;
using System.Text;
using System.Text.Json.Nodes;
using KfmRollback.Engine.Core;

namespace KfmRollback.Engine.Adapters.Helm;

/// <summary>
/// The <c>release</c> value of a helm v3 release Secret, exactly as helm's storage driver writes it
/// (pkg/storage/driver/util.go): base64(gzip(JSON of the release)). That text is itself the Secret's
/// data bytes, so on the wire it is base64-encoded a second time by the Secret. Releases stored
/// before compression was introduced are plain JSON; they are recognised, as helm does, by the
/// missing gzip magic bytes 1f 8b 08.
/// </summary>
public static class HelmReleaseCodec
{
    private static readonly byte[] GzipMagic = [0x1f, 0x8b, 0x08];

    /// <summary>helm's encodeRelease: JSON, gzip at best compression, standard base64.</summary>
    public static string Encode(JsonObject release)
    {
        byte[] json = Encoding.UTF8.GetBytes(release.ToJsonString());
        using var buffer = new MemoryStream();
        using (var gzip = new GZipStream(buffer, CompressionLevel.SmallestSize, leaveOpen: true))
        {
            gzip.Write(json);
        }
        return Convert.ToBase64String(buffer.ToArray());
    }

    /// <summary>The helm 3.0-era form: base64 of the JSON, no compression (helm still reads it).</summary>
    public static string EncodeUncompressed(JsonObject release) => Convert.ToBase64String(Encoding.UTF8.GetBytes(release.ToJsonString()));

    /// <summary>
    /// The most a release may decompress to. A release Secret holds at most 1 MiB, which gzip can
    /// inflate a thousandfold; real releases (rendered manifests and values) stay far below this.
    /// </summary>
    public const int MaxDecodedBytes = 64 * 1024 * 1024;

    /// <summary>helm's decodeRelease: base64, gunzip when the magic bytes are there (bounded), then JSON.</summary>
    public static JsonObject Decode(string data, string secretName) => Decode(data, secretName, MaxDecodedBytes);

    internal static JsonObject Decode(string data, string secretName, int maxBytes)
    {
        byte[] bytes;
        try
        {
            bytes = Convert.FromBase64String(data);
        }
        catch (FormatException ex)
        {
            throw Undecodable(secretName, "its release value is not base64", ex);
        }
        if (bytes.Length > 3 && bytes.AsSpan(0, 3).SequenceEqual(GzipMagic))
        {
            try
            {
                using var gzip = new GZipStream(new MemoryStream(bytes), CompressionMode.Decompress);
                using var plain = new MemoryStream();
                byte[] buffer = new byte[81920];
                for (int read; (read = gzip.Read(buffer, 0, buffer.Length)) > 0;)
                {
                    if (plain.Length + read > maxBytes)
                        throw Undecodable(secretName, $"its release decompresses to more than {maxBytes / (1024 * 1024)} MiB", null);
                    plain.Write(buffer, 0, read);
                }
                bytes = plain.ToArray();
            }
            catch (InvalidDataException ex)
            {
                throw Undecodable(secretName, "its gzip stream is corrupt", ex);
            }
        }
        try
        {
            return JsonNode.Parse(bytes) as JsonObject ?? throw Undecodable(secretName, "its release is not a JSON object", null);
        }
        catch (System.Text.Json.JsonException ex)
        {
            throw Undecodable(secretName, "its release is not valid JSON", ex);
        }
    }

    /// <summary>True when <paramref name="data"/> holds a gzip-compressed release.</summary>
    public static bool IsCompressed(string data)
    {
        byte[] bytes = Convert.FromBase64String(data);
        return bytes.Length > 3 && bytes.AsSpan(0, 3).SequenceEqual(GzipMagic);
    }

    // The message names the Secret only: its content may hold values, which are never shown.
    private static KfmException Undecodable(string secretName, string why, Exception? inner) =>
        new("HelmReleaseUndecodable", KfmErrorKind.InvalidData,
            $"Helm release Secret {secretName} cannot be read: {why}. It was not written by helm v3's storage driver; check it with 'helm history' before rolling back.", secretName, inner);
}
