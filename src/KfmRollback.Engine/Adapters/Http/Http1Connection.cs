using System.Buffers.Text;
using System.Globalization;
using System.Net.Http.Headers;
using System.Net.Security;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Text;

namespace KfmRollback.Engine.Adapters.Http;

/// <summary>What one HTTP/1.1 exchange returned, as much as a probe needs.</summary>
internal readonly record struct Http1Answer(int Status, string? MediaType, RetryConditionHeaderValue? RetryAfter, byte[] Body,
    IReadOnlyList<KeyValuePair<string, string>>? ComparedHeaders = null);

/// <summary>The server broke HTTP/1.1 framing, or answered with more than a probe accepts.</summary>
internal sealed class Http1ProtocolException(string message) : IOException(message);

/// <summary>
/// One persistent HTTP/1.1 connection (RFC 9112) owned by one probe worker: requests go out as
/// prepared bytes and answers are framed by Content-Length, chunked coding or connection close.
/// It exists because bulk policy probing is dominated by per-request client cost, and HttpClient's
/// general-purpose pipeline (handlers, header collections, pooling) costs more than the exchange
/// needs; a probe worker never shares its connection, so none of that is needed here.
/// Kept on measurement (bench/probes.ps1, 2026-12-03): a tuned HttpClient (SocketsHttpHandler,
/// HTTP/1.1 exact, pooled, no cookies, ResponseHeadersRead) ran at 0.76 of these lanes' rate
/// (35.9k vs 47.2k req/s median of 7 runs), under the 0.8 at which this class would be removed.
/// </summary>
internal sealed class Http1Connection : IAsyncDisposable
{
    internal const int MaxHeaderBytes = 64 * 1024;
    internal const int MaxBodyBytes = 8 * 1024 * 1024;

    private readonly Stream _stream;
    private byte[] _buffer = new byte[16 * 1024];
    private int _start, _end;
    private bool _reusable = true;
    private MemoryStream? _chunks;
    // An API answers with one or two media types; their strings are made once per connection.
    private byte[]? _lastMediaTypeBytes;
    private string? _lastMediaType;

    private readonly byte[][] _comparedNames;
    private readonly string[] _comparedHeaders;

    private Http1Connection(Stream stream, string[] comparedHeaders)
    {
        _stream = stream;
        _comparedHeaders = comparedHeaders;
        _comparedNames = comparedHeaders.Select(Encoding.ASCII.GetBytes).ToArray();
    }

    /// <summary>True while the server has not asked to close and framing is intact.</summary>
    public bool Reusable => _reusable;

    /// <summary>True once a request has been answered on this connection (a failure before that is not a stale-connection failure).</summary>
    public bool HasAnswered { get; private set; }

    /// <summary>True once any byte of the current exchange's answer has arrived; before that a failure may be retried on a new connection.</summary>
    public bool ReceivedAny { get; private set; }

    /// <param name="comparedHeaders">Lower-case names of the response headers to keep (see ProbePlan.ComparedHeaders).</param>
    public static async Task<Http1Connection> OpenAsync(Uri server, string[] comparedHeaders, RemoteCertificateValidationCallback? certificateValidation, CancellationToken cancellationToken)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(server.IdnHost, server.Port, cancellationToken).ConfigureAwait(false);
            Stream stream = new NetworkStream(socket, ownsSocket: true);
            if (server.Scheme == Uri.UriSchemeHttps)
            {
                var tls = new SslStream(stream, leaveInnerStreamOpen: false);
                await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
                {
                    TargetHost = server.IdnHost,
                    ApplicationProtocols = new List<SslApplicationProtocol> { SslApplicationProtocol.Http11 },
                    RemoteCertificateValidationCallback = certificateValidation,
                }, cancellationToken).ConfigureAwait(false);
                stream = tls;
            }
            return new Http1Connection(stream, comparedHeaders);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Sends one request and reads its final answer (1xx interim answers are skipped).</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<Http1Answer> ExchangeAsync(ReadOnlyMemory<byte> request, bool isHead, CancellationToken cancellationToken)
    {
        ReceivedAny = _end > _start;
        await _stream.WriteAsync(request, cancellationToken).ConfigureAwait(false);
        while (true)
        {
            (int status, string? mediaType, RetryConditionHeaderValue? retryAfter, long contentLength, bool chunked, bool close, List<KeyValuePair<string, string>>? compared) =
                await ReadHeadAsync(cancellationToken).ConfigureAwait(false);
            if (status is >= 100 and < 200 && status != 101) { continue; }
            byte[] body;
            if (isHead || status is 204 or 304 || (status is >= 100 and < 200))
            {
                body = Array.Empty<byte>();
            }
            else if (chunked)
            {
                body = await ReadChunkedAsync(cancellationToken).ConfigureAwait(false);
            }
            else if (contentLength >= 0)
            {
                if (contentLength > MaxBodyBytes) { throw TooLarge(); }
                await FillAsync((int)contentLength, cancellationToken).ConfigureAwait(false);
                body = _buffer.AsSpan(_start, (int)contentLength).ToArray();
                _start += (int)contentLength;
            }
            else
            {
                body = await ReadToCloseAsync(cancellationToken).ConfigureAwait(false);
                close = true;
            }
            if (close || status == 101) { _reusable = false; }
            HasAnswered = true;
            return new Http1Answer(status, mediaType, retryAfter, body, compared);
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<(int Status, string? MediaType, RetryConditionHeaderValue? RetryAfter, long ContentLength, bool Chunked, bool Close, List<KeyValuePair<string, string>>? Compared)> ReadHeadAsync(CancellationToken cancellationToken)
    {
        int headLength;
        while ((headLength = _buffer.AsSpan(_start, _end - _start).IndexOf("\r\n\r\n"u8)) < 0)
        {
            if (_end - _start >= MaxHeaderBytes) { throw new Http1ProtocolException($"the response header is larger than {MaxHeaderBytes / 1024} KiB"); }
            await FillAsync(_end - _start + 1, cancellationToken).ConfigureAwait(false);
        }
        ReadOnlySpan<byte> head = _buffer.AsSpan(_start, headLength);
        _start += headLength + 4;

        int lineEnd = head.IndexOf("\r\n"u8);
        ReadOnlySpan<byte> statusLine = lineEnd < 0 ? head : head[..lineEnd];
        // HTTP-version SP 3DIGIT [SP reason] (RFC 9112 section 4)
        if (statusLine.Length < 12 || !statusLine.StartsWith("HTTP/1."u8) || statusLine[8] != (byte)' ' ||
            !Utf8Parser.TryParse(statusLine.Slice(9, 3), out int status, out int consumed) || consumed != 3 || status < 100)
        {
            throw new Http1ProtocolException("the server did not answer with an HTTP/1.1 status line");
        }
        bool close = statusLine[7] == (byte)'0';   // HTTP/1.0 closes unless told otherwise
        string? mediaType = null;
        RetryConditionHeaderValue? retryAfter = null;
        long contentLength = -1;
        bool chunked = false;
        List<KeyValuePair<string, string>>? compared = null;
        ReadOnlySpan<byte> rest = lineEnd < 0 ? ReadOnlySpan<byte>.Empty : head[(lineEnd + 2)..];
        while (!rest.IsEmpty)
        {
            int end = rest.IndexOf("\r\n"u8);
            ReadOnlySpan<byte> line = end < 0 ? rest : rest[..end];
            rest = end < 0 ? ReadOnlySpan<byte>.Empty : rest[(end + 2)..];
            int colon = line.IndexOf((byte)':');
            if (colon <= 0) { throw new Http1ProtocolException("the response has a malformed header line"); }
            ReadOnlySpan<byte> name = line[..colon];
            ReadOnlySpan<byte> value = line[(colon + 1)..].Trim((byte)' ').Trim((byte)'\t');
            if (name.EqualsIgnoreCase("content-length"u8))
            {
                if (!Utf8Parser.TryParse(value, out long length, out int used) || used != value.Length || length < 0 || (contentLength >= 0 && contentLength != length))
                {
                    throw new Http1ProtocolException("the response has an invalid Content-Length");
                }
                contentLength = length;
            }
            else if (name.EqualsIgnoreCase("transfer-encoding"u8))
            {
                // chunked must be the final coding (RFC 9112 section 6.1); anything else is not ours to decode.
                if (!value.TrimEnd((byte)' ').EndsWithIgnoreCase("chunked"u8) || value.IndexOf((byte)',') >= 0)
                {
                    throw new Http1ProtocolException("the response uses a transfer coding other than chunked");
                }
                chunked = true;
            }
            else if (name.EqualsIgnoreCase("content-type"u8))
            {
                int semicolon = value.IndexOf((byte)';');
                ReadOnlySpan<byte> type = (semicolon < 0 ? value : value[..semicolon]).TrimEnd((byte)' ');
                if (_lastMediaTypeBytes is null || !type.SequenceEqual(_lastMediaTypeBytes))
                {
                    _lastMediaTypeBytes = type.ToArray();
                    _lastMediaType = Encoding.ASCII.GetString(type).ToLowerInvariant();
                }
                mediaType = _lastMediaType;
            }
            else if (name.EqualsIgnoreCase("retry-after"u8))
            {
                RetryConditionHeaderValue.TryParse(Encoding.ASCII.GetString(value), out retryAfter);
            }
            else if (name.EqualsIgnoreCase("connection"u8))
            {
                if (value.ContainsIgnoreCase("close"u8)) { close = true; }
                else if (value.ContainsIgnoreCase("keep-alive"u8)) { close = false; }
            }
            for (int i = 0; i < _comparedNames.Length; i++)
            {
                if (name.EqualsIgnoreCase(_comparedNames[i]))
                {
                    (compared ??= new List<KeyValuePair<string, string>>()).Add(new(_comparedHeaders[i], Encoding.Latin1.GetString(value)));
                }
            }
        }
        return (status, mediaType, retryAfter, chunked ? -1 : contentLength, chunked, close, ProbeHeaders.Normalise(compared));
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<byte[]> ReadChunkedAsync(CancellationToken cancellationToken)
    {
        MemoryStream body = _chunks ??= new MemoryStream();
        body.SetLength(0);
        while (true)
        {
            int lineLength = await ReadLineAsync(cancellationToken).ConfigureAwait(false);
            ReadOnlySpan<byte> line = _buffer.AsSpan(_start, lineLength);
            int extension = line.IndexOf((byte)';');
            ReadOnlySpan<byte> sizeText = (extension < 0 ? line : line[..extension]).Trim((byte)' ');
            if (!Utf8Parser.TryParse(sizeText, out long size, out int used, 'X') || used != sizeText.Length || size < 0)
            {
                throw new Http1ProtocolException("the response has a malformed chunk size");
            }
            _start += lineLength + 2;
            if (size == 0)
            {
                // Trailer fields until an empty line; a probe reads none of them.
                while ((lineLength = await ReadLineAsync(cancellationToken).ConfigureAwait(false)) > 0) { _start += lineLength + 2; }
                _start += 2;
                return body.ToArray();
            }
            if (body.Length + size > MaxBodyBytes) { throw TooLarge(); }
            await FillAsync((int)size + 2, cancellationToken).ConfigureAwait(false);
            body.Write(_buffer, _start, (int)size);
            if (_buffer[_start + (int)size] != (byte)'\r' || _buffer[_start + (int)size + 1] != (byte)'\n')
            {
                throw new Http1ProtocolException("a response chunk is not followed by CRLF");
            }
            _start += (int)size + 2;
        }
    }

    /// <summary>Length of the next CRLF-terminated line, which stays in the buffer at _start.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<int> ReadLineAsync(CancellationToken cancellationToken)
    {
        int length;
        while ((length = _buffer.AsSpan(_start, _end - _start).IndexOf("\r\n"u8)) < 0)
        {
            if (_end - _start >= MaxHeaderBytes) { throw new Http1ProtocolException("a chunk header or trailer line is too long"); }
            await FillAsync(_end - _start + 1, cancellationToken).ConfigureAwait(false);
        }
        return length;
    }

    private async Task<byte[]> ReadToCloseAsync(CancellationToken cancellationToken)
    {
        using var body = new MemoryStream();
        body.Write(_buffer, _start, _end - _start);
        _start = _end = 0;
        while (true)
        {
            int read = await _stream.ReadAsync(_buffer, cancellationToken).ConfigureAwait(false);
            if (read == 0) { return body.ToArray(); }
            if (body.Length + read > MaxBodyBytes) { throw TooLarge(); }
            body.Write(_buffer, 0, read);
        }
    }

    /// <summary>Reads until at least <paramref name="count"/> unread bytes are buffered.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask FillAsync(int count, CancellationToken cancellationToken)
    {
        if (_end - _start >= count) { return; }
        if (count > _buffer.Length)
        {
            var larger = new byte[Math.Max(count, _buffer.Length * 2)];
            Buffer.BlockCopy(_buffer, _start, larger, 0, _end - _start);
            _end -= _start;
            _start = 0;
            _buffer = larger;
        }
        else if (_start + count > _buffer.Length)
        {
            Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
            _end -= _start;
            _start = 0;
        }
        while (_end - _start < count)
        {
            int read = await _stream.ReadAsync(_buffer.AsMemory(_end), cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                _reusable = false;
                throw new Http1ProtocolException("the server closed the connection in the middle of a response");
            }
            _end += read;
            ReceivedAny = true;
        }
    }

    private Http1ProtocolException TooLarge()
    {
        _reusable = false;
        return new Http1ProtocolException($"the response body is larger than {MaxBodyBytes / (1024 * 1024)} MiB");
    }

    public ValueTask DisposeAsync() => _stream.DisposeAsync();
}

/// <summary>Compared headers in one canonical form: by name, repeated fields joined as RFC 9110 5.3 allows.</summary>
internal static class ProbeHeaders
{
    public static List<KeyValuePair<string, string>>? Normalise(List<KeyValuePair<string, string>>? headers)
    {
        if (headers is null || headers.Count < 2) { return headers; }
        return headers.GroupBy(h => h.Key, StringComparer.Ordinal)
            .OrderBy(g => g.Key, StringComparer.Ordinal)
            .Select(g => new KeyValuePair<string, string>(g.Key, string.Join(", ", g.Select(h => h.Value))))
            .ToList();
    }
}

internal static class Utf8SpanExtensions
{
    public static bool EqualsIgnoreCase(this ReadOnlySpan<byte> span, ReadOnlySpan<byte> ascii) => Ascii.EqualsIgnoreCase(span, ascii);

    public static bool EndsWithIgnoreCase(this ReadOnlySpan<byte> span, ReadOnlySpan<byte> ascii) =>
        span.Length >= ascii.Length && Ascii.EqualsIgnoreCase(span[^ascii.Length..], ascii);

    public static bool ContainsIgnoreCase(this ReadOnlySpan<byte> span, ReadOnlySpan<byte> ascii)
    {
        for (int i = 0; i + ascii.Length <= span.Length; i++)
        {
            if (Ascii.EqualsIgnoreCase(span.Slice(i, ascii.Length), ascii)) { return true; }
        }
        return false;
    }
}
