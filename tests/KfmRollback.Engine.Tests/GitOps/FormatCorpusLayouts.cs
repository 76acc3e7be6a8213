using KfmRollback.Engine.Adapters.GitOpsFiles;
using KfmRollback.Engine.Configuration;
using static KfmRollback.Engine.Tests.GitOps.FormatCorpus;

namespace KfmRollback.Engine.Tests.GitOps;

/// <summary>
/// Pin locations chosen by configuration (issue 11): Renovate's tag@digest, one image in two
/// containers, list indices in Helm paths, Argo CD Applications and Flux Kustomizations/HelmReleases.
/// </summary>
public static class FormatCorpusLayouts
{
    public static IEnumerable<CorpusFile> All()
    {
        yield return new("helm-tag-at-digest", GitOpsKind.Helm, null, $"""
            # Renovate pins the digest inside the tag
            image:
              repository: registry.example.test/kfm/api
              tag: "1.2.3@{Old}" # renovate: datasource=docker
              pullPolicy: IfNotPresent
            """, 4);
        yield return new("helm-list-index", GitOpsKind.Helm, null, $"""
            api:
              containers:
                - name: api
                  image:
                    repository: registry.example.test/kfm/api
                    digest: {Old}
                - name: metrics
                  image:
                    repository: registry.example.test/kfm/exporter
                    digest: {Old}
            """, 6, new HelmValuePaths { Repository = "api.containers[0].image.repository", Tag = "api.containers[0].image.tag", Digest = "api.containers[0].image.digest" });
        yield return new("raw-one-image-two-containers", GitOpsKind.Raw, "kfm/api", $$"""
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: kfm-api}
            spec:
              template:
                spec:
                  initContainers:
                    - name: migrate
                      image: registry.example.test/kfm/api@{{Old}}
                      args: [migrate]
                  containers:
                    - name: api
                      image: registry.example.test/kfm/api@{{Old}}   # the API
            """, 13, Select: new PinSelection { Container = ["api"] });
        yield return new("argocd-kustomize-images-alias", GitOpsKind.Kustomize, "kfm-api", $$"""
            apiVersion: argoproj.io/v1alpha1
            kind: Application
            metadata:
              name: kfm-api-prod
              namespace: argocd
            spec:
              source:
                repoURL: https://git.example.test/kfm/deploy.git
                path: apps/kfm-api/overlays/prod
                kustomize:
                  images:
                    - kfm-ui=registry.example.test/kfm/ui:3.1.0
                    - kfm-api=registry.example.test/kfm/api@{{Old}} # pinned
              destination: {server: "https://kubernetes.default.svc", namespace: kfm}
            """, 13, Select: new PinSelection { ImagesPath = "spec.source.kustomize.images" });
        yield return new("argocd-kustomize-images-tag", GitOpsKind.Kustomize, "kfm/api", """
            apiVersion: argoproj.io/v1alpha1
            kind: Application
            metadata: {name: kfm-api}
            spec:
              source:
                kustomize:
                  images: ['registry.example.test/kfm/api:1.9.0', 'registry.example.test/kfm/worker:1.9.0']
            """, 7, Select: new PinSelection { ImagesPath = "spec.source.kustomize.images" });
        yield return new("argocd-helm-parameters", GitOpsKind.Helm, null, $"""
            apiVersion: argoproj.io/v1alpha1
            kind: Application
            metadata:
              name: kfm-api
            spec:
              source:
                chart: kfm-api
                targetRevision: 4.2.0
                helm:
                  parameters:
                    - name: image.repository
                      value: registry.example.test/kfm/api
                    - name: image.digest
                      value: "{Old}"
                    - name: replicaCount
                      value: "3"
            """, 14, new HelmValuePaths { Parameters = "spec.source.helm.parameters" });
        yield return new("argocd-helm-values-object", GitOpsKind.Helm, null, $"""
            apiVersion: argoproj.io/v1alpha1
            kind: Application
            metadata:
              name: kfm-api
            spec:
              source:
                helm:
                  valuesObject:
                    image:
                      repository: registry.example.test/kfm/api
                      tag: 1.9.0 # informational
                      digest: {Old}
            """, 12, new HelmValuePaths { Repository = "spec.source.helm.valuesObject.image.repository", Tag = "spec.source.helm.valuesObject.image.tag", Digest = "spec.source.helm.valuesObject.image.digest" });
        yield return new("argocd-two-applications-resource", GitOpsKind.Kustomize, "kfm-api", $"""
            apiVersion: argoproj.io/v1alpha1
            kind: Application
            metadata:
              name: kfm-api-staging
            spec:
              source:
                kustomize:
                  images: ["kfm-api=registry.example.test/kfm/api@{Old}"]
            ---
            apiVersion: argoproj.io/v1alpha1
            kind: Application
            metadata:
              name: kfm-api-prod
            spec:
              source:
                kustomize:
                  images: ["kfm-api=registry.example.test/kfm/api@{Old}"]
            """, 17, Select: new PinSelection { ImagesPath = "spec.source.kustomize.images", Resource = "Application/kfm-api-prod" });
        yield return new("flux-kustomization-images", GitOpsKind.Kustomize, "kfm-api", $$"""
            ---
            apiVersion: kustomize.toolkit.fluxcd.io/v1
            kind: Kustomization
            metadata:
              name: kfm-api
              namespace: flux-system
            spec:
              interval: 5m
              path: ./apps/kfm-api
              prune: true
              sourceRef: {kind: GitRepository, name: deploy}
              images:
                - name: kfm-api
                  newName: registry.example.test/kfm/api
                  digest: {{Old}}
            """, 15, Select: new PinSelection { ImagesPath = "spec.images" });
        yield return new("flux-kustomization-tag-only", GitOpsKind.Kustomize, "kfm-api", Crlf("""
            apiVersion: kustomize.toolkit.fluxcd.io/v1
            kind: Kustomization
            metadata: {name: kfm-api}
            spec:
              images:
                - name: kfm-api
                  newTag: 1.9.0   # release bot
            """), 7, Select: new PinSelection { ImagesPath = "spec.images" });
        yield return new("flux-helmrelease-values", GitOpsKind.Helm, null, $$"""
            apiVersion: source.toolkit.fluxcd.io/v1
            kind: HelmRepository
            metadata: {name: kfm}
            spec: {url: "https://charts.example.test"}
            ---
            apiVersion: helm.toolkit.fluxcd.io/v2
            kind: HelmRelease
            metadata:
              name: kfm-api
            spec:
              chart:
                spec: {chart: kfm-api, version: 4.2.0}
              values:
                image:
                  repository: registry.example.test/kfm/api
                  digest: '{{Old}}'
            """, 16, new HelmValuePaths { Repository = "spec.values.image.repository", Tag = "spec.values.image.tag", Digest = "spec.values.image.digest" });
        yield return new("flux-helmrelease-values-tag-at-digest", GitOpsKind.Helm, null, "\uFEFF" + Crlf($"""
            apiVersion: helm.toolkit.fluxcd.io/v2
            kind: HelmRelease
            metadata: {"{"}name: kfm-api{"}"}
            spec:
              values:
                image:
                  repository: registry.example.test/kfm/api
                  tag: 1.9.0@{Old}
            """), 8, new HelmValuePaths { Repository = "spec.values.image.repository", Tag = "spec.values.image.tag", Digest = "spec.values.image.digest" });
        yield return new("flux-helmrelease-post-renderer", GitOpsKind.Kustomize, "kfm-api", $$"""
            apiVersion: helm.toolkit.fluxcd.io/v2
            kind: HelmRelease
            metadata:
              name: kfm-api
            spec:
              postRenderers:
                - kustomize:
                    patches:
                      - target: {kind: Deployment}
                        patch: |
                          - op: add
                            path: /metadata/labels/team
                            value: kfm
                - kustomize:
                    images:
                      - name: kfm-ui
                        newTag: "3"
                      - name: kfm-api
                        newName: registry.example.test/kfm/api
                        digest: {{Old}}
            """, 20, Select: new PinSelection { ImagesPath = "spec.postRenderers[].kustomize.images" });
        yield return new("argocd-values-object-list-index", GitOpsKind.Helm, null, $"""
            apiVersion: argoproj.io/v1alpha1
            kind: Application
            metadata: {"{"}name: kfm-api{"}"}
            spec:
              source:
                helm:
                  valuesObject:
                    api:
                      containers:
                        - name: proxy
                          image: {"{"}repository: registry.example.test/kfm/proxy, digest: "{Old}"{"}"}
                        - name: api
                          image: {"{"}repository: registry.example.test/kfm/api, digest: "{Old}"{"}"}
            """, 13, new HelmValuePaths { Repository = "spec.source.helm.valuesObject.api.containers[1].image.repository", Tag = "spec.source.helm.valuesObject.api.containers[1].image.tag", Digest = "spec.source.helm.valuesObject.api.containers[1].image.digest" });
    }
}
