using KfmRollback.Engine.Configuration;

namespace KfmRollback.Engine.Tests.GitOps;

/// <summary>One realistic GitOps file and the single line a rollback may change in it.</summary>
public sealed record CorpusFile(string Name, GitOpsKind Kind, string? ImageName, string Text, int RefLine, HelmValuePaths? Helm = null, KfmRollback.Engine.Adapters.GitOpsFiles.PinSelection? Select = null)
{
    public override string ToString() => Name;
}

/// <summary>Realistic files: comments everywhere, multi-document, anchors, flow style, quoting, several images.</summary>
public static class FormatCorpus
{
    public const string Old = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    public const string New = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    public static IEnumerable<CorpusFile> All()
    {
        yield return new("kustomize-digest", GitOpsKind.Kustomize, "kfm-api", $"""
            # prod overlay
            apiVersion: kustomize.config.k8s.io/v1beta1
            kind: Kustomization
            resources:
              - ../../base   # shared base
            images:
              # the API
              - name: kfm-api
                newName: registry.example.test/kfm/api
                digest: {Old}  # pinned by CI
              - name: kfm-ui
                newName: registry.example.test/kfm/ui
                newTag: "1.4.2"
            """, 10);
        yield return new("kustomize-tag-only", GitOpsKind.Kustomize, "kfm-api", """
            images:
            - name: kfm-web
              newTag: v2
            - name: kfm-api
              newName: registry.example.test/kfm/api
              newTag: v1.9.0 # bumped by release bot
            """, 6);
        yield return new("kustomize-flow-entries", GitOpsKind.Kustomize, "kfm-api", $$"""
            resources: [deployment.yaml, service.yaml]
            images:
              - {name: kfm-ui, newTag: "3"}
              - {name: kfm-api, newName: registry.example.test/kfm/api, digest: {{Old}}}
            """, 4);
        yield return new("kustomize-double-quoted", GitOpsKind.Kustomize, "kfm-api", $"""
            images:
              - name: "kfm-api"
                digest: "{Old}"
            """, 3);
        yield return new("kustomize-single-quoted", GitOpsKind.Kustomize, "kfm-api", $"""
            images:
              - name: 'kfm-api'
                newName: 'registry.example.test/kfm/api'
                digest: '{Old}'
            # trailing comment
            """, 4);
        yield return new("kustomize-crlf", GitOpsKind.Kustomize, "kfm-api", Crlf($"""
            # windows checkout
            images:
              - name: kfm-api
                digest: {Old}
              - name: kfm-worker
                digest: {Old}
            """), 4);
        yield return new("kustomize-bom", GitOpsKind.Kustomize, "kfm-api", "\uFEFF" + $"""
            images:
              - name: kfm-api
                digest: {Old}
            """, 3);
        yield return new("kustomize-four-space-indent", GitOpsKind.Kustomize, "kfm-api", $"""
            namespace: kfm
            images:
                -   name: kfm-api
                    newName: registry.example.test/kfm/api

                    digest: {Old}
            patches:
                - path: replicas.yaml
            """, 6);
        yield return new("kustomize-many-entries", GitOpsKind.Kustomize, "kfm-api", $"""
            images:
              - name: a
                newTag: "1"
              - name: b
                digest: {Old}
              - name: kfm-api # ours
                digest: {Old}
              - name: c
                newTag: latest
            """, 7);
        yield return new("helm-default-paths", GitOpsKind.Helm, null, $"""
            # values-prod.yaml
            replicaCount: 3
            image:
              repository: registry.example.test/kfm/api   # API
              tag: "1.9.0"
              digest: {Old}
              pullPolicy: IfNotPresent
            """, 6);
        yield return new("helm-several-images", GitOpsKind.Helm, null, $"""
            image:
              repository: registry.example.test/kfm/api
              digest: "{Old}"
            sidecar:
              image:
                repository: registry.example.test/envoy
                digest: "{Old}"
            migrations:
              image:
                repository: registry.example.test/kfm/migrate
                tag: 1.0.0
            """, 3);
        yield return new("helm-custom-paths", GitOpsKind.Helm, null, $"""
            api:
              container:
                image: registry.example.test/kfm/api
                sha: '{Old}'
                version: "2"
            ui:
              container:
                image: registry.example.test/kfm/ui
                sha: '{Old}'
            """, 4, new HelmValuePaths { Repository = "api.container.image", Digest = "api.container.sha", Tag = "api.container.version" });
        yield return new("helm-anchors", GitOpsKind.Helm, null, $"""
            defaults: &defaults
              pullPolicy: IfNotPresent
            image:
              <<: *defaults
              repository: registry.example.test/kfm/api
              digest: {Old}
            worker:
              image: *defaults
            """, 6);
        yield return new("helm-crlf-bom", GitOpsKind.Helm, null, "\uFEFF" + Crlf($"""
            # crlf + bom
            image:
              repository: registry.example.test/kfm/api
              digest: {Old}   # rollback target
            """), 4);
        yield return new("helm-flow-image", GitOpsKind.Helm, null, $$$"""
            image: {repository: registry.example.test/kfm/api, tag: "1.9.0", digest: "{{{Old}}}"}
            resources: {limits: {cpu: 500m}}
            """, 1);
        yield return new("raw-deployment", GitOpsKind.Raw, "kfm/api", $$"""
            apiVersion: apps/v1
            kind: Deployment
            metadata:
              name: kfm-api   # the PEP
            spec:
              template:
                spec:
                  containers:
                    - name: api
                      image: registry.example.test/kfm/api@{{Old}}
                      ports: [{containerPort: 8080}]
                    - name: proxy
                      image: registry.example.test/envoy@{{Old}}
            """, 10);
        yield return new("raw-multi-document", GitOpsKind.Raw, "kfm/api", $$"""
            ---
            # service first
            apiVersion: v1
            kind: Service
            metadata: {name: kfm-api}
            ---
            apiVersion: apps/v1
            kind: Deployment
            metadata:
              name: kfm-api
            spec:
              template:
                spec:
                  containers:
                  - name: api
                    image: "registry.example.test/kfm/api@{{Old}}"
            ...
            ---
            apiVersion: batch/v1
            kind: Job
            spec:
              template:
                spec:
                  containers:
                  - name: migrate
                    image: registry.example.test/kfm/migrate:1.0
            """, 16);
        yield return new("raw-anchor-alias", GitOpsKind.Raw, "kfm/api", $"""
            x-api: &api
              image: 'registry.example.test/kfm/api@{Old}'
              name: api
            spec:
              containers:
                - *api
            """, 2);
        yield return new("raw-tag-to-digest", GitOpsKind.Raw, "api", """
            spec:
              containers:
                - name: api
                  image: registry.example.test:5000/kfm/api:1.9.0 # tag, to be pinned
                - name: apiproxy
                  image: registry.example.test/kfm/api-proxy:1
            """, 4);
        yield return new("raw-crlf-multi", GitOpsKind.Raw, "kfm/api", Crlf($$"""
            kind: ConfigMap
            data: {a: b}
            ---
            kind: Deployment
            spec:
              template:
                spec:
                  initContainers: []
                  containers:
                    - image: registry.example.test/kfm/api@{{Old}}
                      name: api
            """), 10);
        yield return new("raw-flow-container", GitOpsKind.Raw, "kfm/api", $$$"""
            spec:
              containers: [{name: api, image: registry.example.test/kfm/api@{{{Old}}}}, {name: x, image: busybox}]
            """, 2);
        yield return new("kustomize-comments-everywhere", GitOpsKind.Kustomize, "kfm-api", $"""
            # header
            images: # list
              # before entry
              - # entry start
                name: kfm-api # name
                # between
                digest: {Old} # pinned
                # after
            # footer
            """, 7);
        foreach (var layout in FormatCorpusLayouts.All())
            yield return layout;
        foreach (var real in FormatCorpusReal.All())
            yield return real;
    }

    internal static string Crlf(string text) => text.Replace("\r\n", "\n").Replace("\n", "\r\n");
}
