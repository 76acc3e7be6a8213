using KfmRollback.Engine.Adapters.GitOpsFiles;
using KfmRollback.Engine.Configuration;
using static KfmRollback.Engine.Tests.GitOps.FormatCorpus;

namespace KfmRollback.Engine.Tests.GitOps;

/// <summary>
/// GitOps files as teams write them (issue 19 item 5), copied from public repositories and cited
/// file by file. Where a file pins no image of ours, the one image block a team would add is marked.
/// </summary>
public static class FormatCorpusReal
{
    /// <summary>The Helm paths of the Argo CD values string below (the string's own paths).</summary>
    public static readonly HelmValuePaths ArgoValuesBlock = new() { Block = "spec.source.helm.values" };

    /// <summary>
    /// argoproj/argo-cd docs/user-guide/helm.md: the "Worked examples" Application (ingress-nginx) with
    /// its values as a string, `source.helm.values: |` exactly as the "Values" section writes it; the
    /// `image:` block at its end is the API pin this module edits (added).
    /// </summary>
    public static string ArgoHelmValuesBlock(string digest) => $$"""
        apiVersion: argoproj.io/v1alpha1
        kind: Application
        metadata:
          name: ingress-nginx
          namespace: argocd
        spec:
          project: default
          source:
            repoURL: https://kubernetes.github.io/ingress-nginx
            chart: ingress-nginx
            targetRevision: 4.11.3
            helm:
              releaseName: ingress-nginx
              values: |
                ingress:
                  enabled: true
                  path: /
                  hosts:
                    - mydomain.example.com
                  annotations:
                    kubernetes.io/ingress.class: nginx
                    kubernetes.io/tls-acme: "true"
                  labels: {}
                  tls:
                    - secretName: mydomain-tls
                      hosts:
                        - mydomain.example.com
                image:
                  repository: registry.example.test/kfm/api
                  digest: "{{digest}}"
          destination:
            server: https://kubernetes.default.svc
            namespace: ingress-nginx
          syncPolicy:
            syncOptions:
              - CreateNamespace=true
        """;

    /// <summary>
    /// renovatebot/renovate lib/modules/manager/helm-values/__fixtures__/multi_and_nested_image_values.yaml,
    /// verbatim: Renovate's helm-values manager writes the digest into the tag (<c>tag: 11.5.0-debian-9-r0@sha256:…</c>).
    /// </summary>
    public const string RenovateNestedValues = """
        ---
        inline_image: docker.io/library/nginx:1.18-alpine

        api:
          image:
            image:
              repository: bitnami/postgresql
              tag: 11.6.0-debian-9-r0
              some-non-image-related-key: 'with-some-value'
          # https://github.com/helm/charts/blob/c5838636973a5546196db6e48ae46f99a55900c4/stable/postgresql/values.yaml#L426
          metrics:
            image:
              registry: docker.io
              repository: bitnami/postgres-exporter
              tag: 0.7.0-debian-9-r12
              pullPolicy: IfNotPresent

        someOtherKey:
          - image:
              registry: docker.io
              repository: bitnami/postgresql
              tag: 11.5.0-debian-9-r0@sha256:4762726f1471ef048dd807afdc0e19265e95ffdcc7cb4a34891f680290022809
              some-non-image-related-key: 'with-some-value'

        empty_key:

        # https://github.com/bitnami/charts/blob/eae34fdbf16e2cb6a6f809d72cd22f98f6bceccc/bitnami/harbor/values.yaml#L14-L17
        coreImage:
          registry: docker.io
          repository: bitnami/harbor-core
          version: 2.1.3-debian-10-r38

        """;

    /// <summary>The Renovate file's pin: the list entry's image (the paths a team sets in gitops.helm_values).</summary>
    public static readonly HelmValuePaths RenovatePaths = new()
    {
        Repository = "someOtherKey[0].image.repository", Tag = "someOtherKey[0].image.tag", Digest = "someOtherKey[0].image.digest",
    };

    public static IEnumerable<CorpusFile> All()
    {
        yield return new("argocd-helm-values-block", GitOpsKind.Helm, null, ArgoHelmValuesBlock(Old), 30, ArgoValuesBlock);
        yield return new("argocd-helm-values-block-crlf", GitOpsKind.Helm, null, Crlf(ArgoHelmValuesBlock(Old)), 30, ArgoValuesBlock);
        yield return new("renovate-helm-values-nested", GitOpsKind.Helm, null, RenovateNestedValues, 22, RenovatePaths);
    }
}
