using System.Text.Json.Nodes;
using KfmRollback.Lab.Api;
using KfmRollback.Lab.Controllers;

namespace KfmRollback.Lab;

/// <summary>
/// Seeds namespaces, kfm/kfm-api (3 replicas; revisions 1–3 already in history with change-causes, the
/// controller makes revision 4 for the current image), ConfigMap kfm-api-config, the Helm release history of kfm-api (<see cref="HelmSeed"/>) and Argo CD Application
/// argocd/kfm-api with automated selfHeal.
/// </summary>
public static class Seeder
{
    public static readonly string[] History = ["good-1.4.0", "good-1.4.1", "good-1.5.0"];
    public const string Current = "good-1.5.1";
    public static string ChangeCause(string build) => $"deploy kfm-api {build[5..]} (CHG-{1000 + Array.IndexOf([.. History, Current], build) + 1})";

    public static JsonObject Template(string image) => new()
    {
        ["metadata"] = new JsonObject { ["labels"] = new JsonObject { ["app"] = "kfm-api" } },
        ["spec"] = new JsonObject
        {
            ["containers"] = new JsonArray(new JsonObject
            {
                ["name"] = "api", ["image"] = image,
                ["ports"] = new JsonArray(new JsonObject { ["containerPort"] = 8080, ["protocol"] = "TCP" }),
                ["env"] = new JsonArray(new JsonObject { ["name"] = "KFM_CONFIG", ["value"] = "/etc/kfm/config" }),
            }),
        },
    };

    public static void Seed(LabHost lab)
    {
        var s = lab.Store;
        foreach (var ns in new[] { "default", "kube-system", "kfm", "argocd", "flux-system" })
        {
            var o = new JsonObject { ["metadata"] = new JsonObject { ["name"] = ns, ["labels"] = new JsonObject { ["kubernetes.io/metadata.name"] = ns } } };
            Admission.Default(Resources.Namespaces, o);
            s.Create(Resources.Namespaces, o);
        }
        var cur = lab.Images.Get(Current);
        var d = new JsonObject
        {
            ["metadata"] = new JsonObject
            {
                ["name"] = "kfm-api", ["namespace"] = "kfm",
                ["labels"] = new JsonObject { ["app"] = "kfm-api", ["app.kubernetes.io/managed-by"] = "argocd" },
                ["annotations"] = new JsonObject { ["kubernetes.io/change-cause"] = ChangeCause(Current) },
            },
            ["spec"] = new JsonObject
            {
                ["replicas"] = 3,
                ["selector"] = new JsonObject { ["matchLabels"] = new JsonObject { ["app"] = "kfm-api" } },
                ["template"] = Template(cur.Image),
            },
        };
        Admission.Default(Resources.Deployments, d);
        d = s.Create(Resources.Deployments, d);

        // Earlier revisions, scaled down, as the deployment controller would have left them.
        for (int i = 0; i < History.Length; i++)
        {
            var tpl = Template(lab.Images.Get(History[i]).Image);
            var holder = new JsonObject { ["spec"] = new JsonObject { ["template"] = tpl } };
            Admission.Default(Resources.Deployments, holder);
            tpl = (JsonObject)holder.At("spec.template")!.DeepClone();
            var hash = Workloads.TemplateHash(tpl);
            tpl.Obj("metadata").Obj("labels")["pod-template-hash"] = hash;
            var rs = new JsonObject
            {
                ["metadata"] = new JsonObject
                {
                    ["name"] = $"kfm-api-{hash}", ["namespace"] = "kfm",
                    ["labels"] = new JsonObject { ["app"] = "kfm-api", ["pod-template-hash"] = hash },
                    ["annotations"] = new JsonObject
                    {
                        ["kubernetes.io/change-cause"] = ChangeCause(History[i]),
                        ["deployment.kubernetes.io/revision"] = (i + 1).ToString(),
                        ["deployment.kubernetes.io/desired-replicas"] = "3",
                        ["deployment.kubernetes.io/max-replicas"] = "4",
                    },
                    ["ownerReferences"] = new JsonArray(new JsonObject
                    {
                        ["apiVersion"] = "apps/v1", ["kind"] = "Deployment", ["name"] = "kfm-api", ["uid"] = d.Uid(), ["controller"] = true, ["blockOwnerDeletion"] = true,
                    }),
                },
                ["spec"] = new JsonObject
                {
                    ["replicas"] = 0,
                    ["selector"] = new JsonObject { ["matchLabels"] = new JsonObject { ["app"] = "kfm-api", ["pod-template-hash"] = hash } },
                    ["template"] = tpl,
                },
            };
            s.Create(Resources.ReplicaSets, rs);
        }

        HelmSeed.Seed(lab);

        s.Create(Resources.ConfigMaps, new JsonObject
        {
            ["metadata"] = new JsonObject { ["name"] = "kfm-api-config", ["namespace"] = "kfm" },
            ["data"] = new JsonObject { ["maintenance"] = "false", ["log_level"] = "info", ["policy_bundle"] = "kfm-policy@sha256-" + new string('a', 64) },
        });

        s.Create(Resources.AppProjects, new JsonObject
        {
            ["metadata"] = new JsonObject { ["name"] = "default", ["namespace"] = "argocd" },
            ["spec"] = new JsonObject
            {
                ["sourceRepos"] = new JsonArray("*"),
                ["destinations"] = new JsonArray(new JsonObject { ["namespace"] = "*", ["server"] = "https://kubernetes.default.svc" }),
                ["syncWindows"] = new JsonArray(),
            },
        });
        s.Create(Resources.Applications, new JsonObject
        {
            ["metadata"] = new JsonObject
            {
                ["name"] = "kfm-api", ["namespace"] = "argocd",
                ["annotations"] = new JsonObject { [GitOps.ChangeCauseAnn] = ChangeCause(Current) },
            },
            ["spec"] = new JsonObject
            {
                ["project"] = "default",
                ["source"] = new JsonObject
                {
                    ["repoURL"] = "https://git.kfm.local/kfm/infra.git", ["path"] = "infra/gitops/apps/kfm-api/overlays/prod", ["targetRevision"] = "main",
                    ["kustomize"] = new JsonObject { ["images"] = new JsonArray(cur.Image) },
                },
                ["destination"] = new JsonObject { ["server"] = "https://kubernetes.default.svc", ["namespace"] = "kfm" },
                ["syncPolicy"] = new JsonObject { ["automated"] = new JsonObject { ["prune"] = true, ["selfHeal"] = true } },
            },
        });
    }
}
