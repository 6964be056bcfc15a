// `corral cluster manifests`: the runner Deployment and KEDA ScaledObject rendered from a cluster's
// spec parse as Kubernetes objects, follow deploy/k8s/base/runner.yaml (security context, env, the
// KEDA TriggerAuthentication it defines), size resources and replicas from the spec, and scale on
// the cluster's backlog as the broker answers it (GetClusterBacklog).
import { describe, expect, it } from "vitest";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { create } from "@bufbuild/protobuf";
import { ClusterSchema, type Cluster } from "@corral/proto";
import { createProgram } from "../../packages/cli/src/program.js";
import { backlogUrl, renderClusterManifests } from "../../packages/cli/src/cluster-manifests.js";
import { containersOf, podSpec, readYamlDocuments, type JsonObject, type K8sObject } from "./kustomize.js";
import { repoRoot } from "./repo-facts.js";

const base = readYamlDocuments(join(repoRoot, "deploy/k8s/base/runner.yaml")) as K8sObject[];
const baseDeployment = base.find((o) => o.kind === "Deployment")!;
const baseAuth = base.find((o) => o.kind === "TriggerAuthentication")!;

function cluster(spec: Partial<Cluster["spec"]> & object): Cluster {
  return create(ClusterSchema, { id: "0190aaaa-0000-7000-8000-00000000beef", slug: "etl-CvufcSxcC9SKfe", name: "etl", spec: spec as never });
}

function render(c: Cluster, scalerBrokerUrl?: string): K8sObject[] {
  const text = renderClusterManifests(c, scalerBrokerUrl === undefined ? {} : { scalerBrokerUrl });
  return parseAllDocuments(text).map((d) => {
    expect(d.errors).toEqual([]);
    return d.toJS() as K8sObject;
  });
}

function runnerStartOptions(): Set<string> {
  const program = createProgram({ io: { out: () => undefined, err: () => undefined, isTTY: false } });
  const start = program.commands.find((c) => c.name() === "runner")!.commands.find((c) => c.name() === "start")!;
  return new Set(start.options.map((o) => o.long!));
}

describe("corral cluster manifests", () => {
  const spec = { runnerCount: 3, runnerCpuCores: 2, runnerMemoryBytes: 4n * 1024n ** 3n, runnerGpuCount: 1 };

  it("renders a Deployment and a ScaledObject that scales it", () => {
    const [d, so] = render(cluster(spec));
    expect([d!.kind, so!.kind]).toEqual(["Deployment", "ScaledObject"]);
    expect(((so!.spec as JsonObject).scaleTargetRef as JsonObject).name).toBe(d!.metadata.name);
    expect(d!.metadata.name).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
    const selector = ((d!.spec as JsonObject).selector as JsonObject).matchLabels as Record<string, string>;
    const podLabels = (((d!.spec as JsonObject).template as JsonObject).metadata as JsonObject).labels as Record<string, string>;
    for (const [k, v] of Object.entries(selector)) expect(podLabels[k]).toBe(v);
  });

  it("sizes replicas, requests and limits from the spec", () => {
    const [d] = render(cluster(spec));
    expect((d!.spec as JsonObject).replicas).toBe(3);
    const resources = containersOf(d!)[0]!.resources as { requests: Record<string, string>; limits: Record<string, string> };
    expect(resources.requests).toEqual({ cpu: "2", memory: "4096Mi" });
    expect(resources.limits).toEqual({ cpu: "2", memory: "4096Mi", "nvidia.com/gpu": "1" });
  });

  it("starts runners of the cluster with flags `corral runner start` has, like deploy/k8s/base/runner.yaml", () => {
    const [d] = render(cluster(spec));
    const c = containersOf(d!)[0]!;
    const args = c.args as string[];
    expect(args.slice(0, 2)).toEqual(["runner", "start"]);
    expect(args[args.indexOf("--cluster") + 1]).toBe("etl-CvufcSxcC9SKfe");
    expect(args[args.indexOf("--concurrency") + 1]).toBe("2");
    const known = runnerStartOptions();
    for (const flag of args.filter((a) => a.startsWith("--"))) expect(known, flag).toContain(flag);
    const annotations = d!.metadata.annotations as Record<string, string>;
    expect(annotations["corral.dev/cluster-slug"]).toBe("etl-CvufcSxcC9SKfe");
    expect(annotations["corral.dev/cluster-id"]).toBe("0190aaaa-0000-7000-8000-00000000beef");
    // The same hardening and variables as the base runner.
    const baseContainer = containersOf(baseDeployment)[0]!;
    expect(c.securityContext).toEqual(baseContainer.securityContext);
    expect(podSpec(d!)!.securityContext).toEqual(podSpec(baseDeployment)!.securityContext);
    expect((c.env as Array<{ name: string }>).map((e) => e.name)).toEqual((baseContainer.env as Array<{ name: string }>).map((e) => e.name));
  });

  it("scales on the cluster's backlog from the broker, with the base's TriggerAuthentication", () => {
    for (const [url, expected] of [
      [undefined, "http://task-broker.corral.svc.cluster.local:7703"],
      ["https://broker.example.com/", "https://broker.example.com"],
    ] as const) {
      const [, so] = render(cluster(spec), url);
      const triggers = (so!.spec as JsonObject).triggers as Array<{ type: string; metadata: Record<string, string>; authenticationRef: { name: string } }>;
      expect(triggers).toEqual([
        {
          type: "metrics-api",
          metadata: {
            url: backlogUrl(expected, "etl-CvufcSxcC9SKfe"),
            valueLocation: "total",
            targetValue: "4",
            activationTargetValue: "0",
            authMode: "bearer",
          },
          authenticationRef: { name: baseAuth.metadata.name },
        },
      ]);
    }
    expect(backlogUrl("http://b:7703", "etl-x")).toBe(
      "http://b:7703/corral.broker.v1.TaskBrokerService/GetClusterBacklog?connect=v1&encoding=json&message=%7B%22cluster%22%3A%22etl-x%22%7D",
    );
  });

  it("keeps the spec's runner count as the floor, or scales to zero when the cluster has an idle timeout", () => {
    const [, always] = render(cluster(spec));
    expect((always!.spec as JsonObject).minReplicaCount).toBe(3);
    const [, idle] = render(cluster({ ...spec, idleTimeoutSeconds: 600 }));
    expect((idle!.spec as JsonObject).minReplicaCount).toBe(0);
    expect(Number((idle!.spec as JsonObject).maxReplicaCount)).toBeGreaterThanOrEqual(3);
  });

  it("leaves out memory and GPUs the spec does not ask for", () => {
    const [d] = render(cluster({ runnerCount: 1, runnerCpuCores: 1 }));
    const resources = containersOf(d!)[0]!.resources as { requests: Record<string, string>; limits: Record<string, string> };
    expect(resources.limits).toEqual({ cpu: "1" });
  });
});
