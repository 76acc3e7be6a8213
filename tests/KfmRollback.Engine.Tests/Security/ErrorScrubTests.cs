using KfmRollback.Engine.Context;
using KfmRollback.Engine.Adapters.Kubernetes;
using System.Net;
using System.Net.Http.Headers;
using k8s.Autorest;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Rollback;

namespace KfmRollback.Engine.Tests.Security;

/// <summary>
/// Issue 17, item 2: an exception that leaves the engine carries no request, header or body of a lower
/// library. KubernetesClient's HttpOperationException keeps the request with its Authorization header
/// and the body sent: for a failed Secret restore that is the Secret's data.
/// </summary>
public sealed class ErrorScrubTests
{
    private static readonly string BearerCanary = "eyJhbGciOiJSUzI1NiJ9" + ".eyJzdWIiOiJrZm0tcm9sbGJhY2sifQ" + ".c2lnbmF0dXJlQ0FOQVJZ";
    private const string SecretCanary = "Zq7SecretCanaryValue9x";

    private static HttpOperationException FailedSecretWrite()
    {
        var request = new HttpRequestMessage(HttpMethod.Put, "https://127.0.0.1:6443/api/v1/namespaces/kfm/secrets/kfm-api-oidc");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", BearerCanary);
        string body = "{\"kind\":\"Secret\",\"data\":{\"client_secret\":\"" + Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(SecretCanary)) + "\",\"raw\":\"" + SecretCanary + "\"}}";
        request.Content = new StringContent(body);
        var response = new HttpResponseMessage(HttpStatusCode.InternalServerError) { Content = new StringContent("{\"kind\":\"Status\",\"message\":\"etcdserver: request timed out\"}") };
        return new HttpOperationException("Operation returned an invalid status code 'InternalServerError'")
        {
            Request = new HttpRequestMessageWrapper(request, body),
            Response = new HttpResponseMessageWrapper(response, "{\"kind\":\"Status\",\"message\":\"etcdserver: request timed out\"}"),
        };
    }

    private static void AssertNoCanary(object error)
    {
        foreach (string text in ExceptionGraph.Strings(error))
        {
            Assert.DoesNotContain(SecretCanary, text);
            Assert.DoesNotContain(BearerCanary, text);
            Assert.DoesNotContain(Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(SecretCanary)), text);
        }
    }

    [Fact]
    public void A_wrapped_apiserver_failure_keeps_status_and_object_but_no_request_header_or_body()
    {
        HttpOperationException failure = FailedSecretWrite();
        Assert.Contains(ExceptionGraph.Strings(failure), s => s.Contains(BearerCanary)); // the walk does see what the library keeps

        KfmException error = KubernetesErrors.Wrap(failure, "Restoring secret kfm/kfm-api-oidc from kfm-snap-secret-kfm-api-oidc-0123", "kfm-api-oidc");

        AssertNoCanary(error);
        Assert.Equal("ClusterServerError", error.ErrorId);
        Assert.Contains("kfm/kfm-api-oidc", error.Message);
        Assert.Contains("etcdserver: request timed out", error.Message);
        var upstream = Assert.IsType<UpstreamError>(error.InnerException);
        Assert.Equal(500, upstream.StatusCode);
        Assert.Equal(typeof(HttpOperationException).FullName, upstream.OriginalType);
    }

    [Fact]
    public void A_rollback_result_carrying_the_error_carries_no_secret_either()
    {
        var result = new RollbackResult
        {
            Environment = "lab", Method = RollbackMethod.Cluster, Outcome = RollbackOutcome.Failed, StartedAt = DateTimeOffset.UtcNow,
            Error = KubernetesErrors.Wrap(FailedSecretWrite(), "Restoring secret kfm/kfm-api-oidc", "kfm-api-oidc"),
        };
        AssertNoCanary(result);
    }

    [Fact]
    public void An_apiserver_failure_nobody_wrapped_is_worded_at_the_boundary_with_its_status_and_object()
    {
        HttpOperationException failure = FailedSecretWrite();
        failure.Response = new HttpResponseMessageWrapper(new HttpResponseMessage(HttpStatusCode.NotFound), "{\"kind\":\"Status\",\"message\":\"secrets \\\"kfm-api-oidc\\\" not found\"}");

        KfmException error = EngineErrors.FromUnexpected(failure, "Invoke-KfmRollback");

        AssertNoCanary(error);
        Assert.Equal("ClusterObjectNotFound", error.ErrorId);
        Assert.Contains("PUT /api/v1/namespaces/kfm/secrets/kfm-api-oidc", error.Message);
        Assert.Contains("not found", error.Message);
        Assert.Contains("Check the names in the configuration", error.Message);

        KfmException other = EngineErrors.FromUnexpected(new InvalidOperationException($"state with DB_PWD={SecretCanary}"), "Get-KfmApiRef");
        Assert.Equal("UnexpectedError", other.ErrorId);
        AssertNoCanary(other);
    }

    [Fact]
    public void Messages_targets_and_causes_pass_the_one_redaction()
    {
        var cause = new HttpRequestException($"POST https://deployer:{SecretCanary}@git.example.test/x failed: Authorization: Bearer {BearerCanary}", null, HttpStatusCode.Unauthorized);
        var error = new KfmException("Example", KfmErrorKind.ConnectionError, $"calling https://ops:{SecretCanary}@host.test/api with DB_PWD={SecretCanary}",
            new Uri($"https://ops:{SecretCanary}@host.test/api"), cause);

        AssertNoCanary(error);
        Assert.Equal("https://host.test/api", error.Target);
        Assert.Equal(401, Assert.IsType<UpstreamError>(error.InnerException).StatusCode);
    }
}
