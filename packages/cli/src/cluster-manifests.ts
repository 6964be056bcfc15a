// `corral cluster manifests`: the Kubernetes path of a provisioned cluster. Renders a runner
// Deployment and a KEDA ScaledObject (in the style of deploy/k8s/base/runner.yaml) from the
// cluster's spec: replicas from runner_count, requests and limits from CPUs, memory and GPUs,
// minReplicaCount 0 when the spec has an idle timeout. KEDA scales on the cluster's backlog as the
// broker counts it (TaskBrokerService.GetClusterBacklog: every band, subtasks and gated tasks, and
// the tasks runners hold), read with the runners' key. Pure: cluster in, YAML text out.
import type { Cluster } from "@corral/proto";

export interface ManifestOptions {
  /** The runner image (default "corral"). */
  image?: string;
  /** Where runners reach the broker (default http://task-broker:7703). */
  brokerUrl?: string;
  /** Where KEDA's operator (in its own namespace) reaches the broker (default http://task-broker.corral.svc.cluster.local:7703). */
  scalerBrokerUrl?: string;
  /** The Secret and key holding the runners' API key. */
  apiKeySecret?: { name: string; key: string };
  /** The most replicas KEDA may scale to (default: 10 × the spec's runner count). */
  maxReplicas?: number;
}

type Yaml = string | number | boolean | null | Yaml[] | { [key: string]: Yaml | undefined };

/** The name of the TriggerAuthentication (deploy/k8s/base/runner.yaml) that gives KEDA the runners' key. */
export const SCALER_AUTH = "corral-runner-key";

/**
 * The URL KEDA's metrics-api trigger GETs for a cluster's backlog: GetClusterBacklog in Connect's
 * GET form, the request as JSON in the query. Its answer's `total` is the value to scale on.
 */
export function backlogUrl(brokerUrl: string, clusterSlug: string): string {
  const message = encodeURIComponent(JSON.stringify({ cluster: clusterSlug }));
  return `${brokerUrl.replace(/\/+$/, "")}/corral.broker.v1.TaskBrokerService/GetClusterBacklog?connect=v1&encoding=json&message=${message}`;
}

/** Kubernetes quantity of bytes: whole MiB (Kubernetes rounds anyway). */
function memoryQuantity(bytes: bigint): string {
  const mib = (bytes + 1024n * 1024n - 1n) / (1024n * 1024n);
  return `${mib}Mi`;
}

/** The Deployment and ScaledObject of a cluster's runners, as Kubernetes objects. */
export function clusterManifestObjects(cluster: Cluster, options: ManifestOptions = {}): Array<Record<string, Yaml>> {
  const spec = cluster.spec;
  const name = `corral-runner-${cluster.slug.toLowerCase()}`.slice(0, 63).replace(/-+$/, "");
  const replicas = spec?.runnerCount ?? 1;
  const cpus = spec?.runnerCpuCores ?? 1;
  const gpus = spec?.runnerGpuCount ?? 0;
  const memory = spec?.runnerMemoryBytes;
  const labels = {
    "app.kubernetes.io/name": name,
    "app.kubernetes.io/part-of": "corral",
    "app.kubernetes.io/component": "runner",
  };
  const requests: Record<string, Yaml> = { cpu: String(cpus) };
  const limits: Record<string, Yaml> = { cpu: String(cpus) };
  if (memory !== undefined && memory > 0n) {
    requests.memory = memoryQuantity(memory);
    limits.memory = memoryQuantity(memory);
  }
  if (gpus > 0) limits["nvidia.com/gpu"] = String(gpus);
  const secret = options.apiKeySecret ?? { name: "corral-secrets", key: "runner-api-key" };
  const deployment: Record<string, Yaml> = {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: {
      name,
      labels,
      annotations: { "corral.dev/cluster-slug": cluster.slug, "corral.dev/cluster-id": cluster.id },
    },
    spec: {
      // KEDA owns the replica count once the ScaledObject is applied; this is the spec's count.
      replicas,
      selector: { matchLabels: { "app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "corral" } },
      template: {
        metadata: { labels },
        spec: {
          // A runner finishes its running tasks on SIGTERM (30 s by default) before it exits.
          terminationGracePeriodSeconds: 60,
          securityContext: { runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, seccompProfile: { type: "RuntimeDefault" } },
          containers: [
            {
              name: "runner",
              image: options.image ?? "corral",
              args: ["runner", "start", "--cluster", cluster.slug, "--builtins", "--concurrency", String(Math.max(1, cpus))],
              env: [
                { name: "CORRAL_URL", value: options.brokerUrl ?? "http://task-broker:7703" },
                { name: "CORRAL_API_KEY", valueFrom: { secretKeyRef: { name: secret.name, key: secret.key } } },
              ],
              resources: { requests, limits },
              securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } },
              volumeMounts: [{ name: "tmp", mountPath: "/tmp" }],
            },
          ],
          volumes: [{ name: "tmp", emptyDir: { sizeLimit: "1Gi" } }],
        },
      },
    },
  };
  const triggers: Yaml[] = [
    {
      type: "metrics-api",
      metadata: {
        url: backlogUrl(options.scalerBrokerUrl ?? "http://task-broker.corral.svc.cluster.local:7703", cluster.slug),
        valueLocation: "total",
        // Waiting and running tasks per runner replica: twice its concurrency.
        targetValue: String(Math.max(1, cpus) * 2),
        activationTargetValue: "0",
        authMode: "bearer",
      },
      authenticationRef: { name: SCALER_AUTH },
    },
  ];
  const idle = spec?.idleTimeoutSeconds;
  const scaledObject: Record<string, Yaml> = {
    apiVersion: "keda.sh/v1alpha1",
    kind: "ScaledObject",
    metadata: { name, labels: { "app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "corral" } },
    spec: {
      scaleTargetRef: { name },
      // An idle timeout means the cluster may stop: scale to zero and let queued work wake it.
      minReplicaCount: idle ? 0 : replicas,
      maxReplicaCount: options.maxReplicas ?? Math.max(replicas, 1) * 10,
      pollingInterval: 10,
      cooldownPeriod: idle ? Math.max(30, idle) : 300,
      triggers,
    },
  };
  return [deployment, scaledObject];
}

/** The same objects as YAML documents. */
export function renderClusterManifests(cluster: Cluster, options: ManifestOptions = {}): string {
  const header = [
    `# Runners of Corral cluster ${cluster.slug} (${cluster.id}), rendered from its spec by \`corral cluster manifests\`.`,
    `# Needs the corral-secrets Secret (runner-api-key: a key of the cluster's team) and KEDA's ${SCALER_AUTH}`,
    "# TriggerAuthentication of deploy/k8s/base/runner.yaml.",
  ].join("\n");
  return `${header}\n${clusterManifestObjects(cluster, options).map((o) => toYaml(o, 0).trimEnd()).join("\n---\n")}\n`;
}

/** A small YAML writer for plain data: strings double-quoted (JSON strings are valid YAML). */
function toYaml(value: Yaml | undefined, indent: number): string {
  const pad = " ".repeat(indent);
  if (Array.isArray(value)) {
    if (value.length === 0) return "[]\n";
    return value
      .map((v) => {
        const inner = toYaml(v, indent + 2);
        return isScalar(v) ? `${pad}- ${inner}` : `${pad}- ${inner.slice(indent + 2)}`;
      })
      .join("");
  }
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined);
    if (entries.length === 0) return "{}\n";
    return entries
      .map(([k, v]) => {
        const key = /^[A-Za-z0-9_./-]+$/.test(k) ? k : JSON.stringify(k);
        if (isScalar(v)) return `${pad}${key}: ${toYaml(v, 0)}`;
        if (Array.isArray(v) && v.length === 0) return `${pad}${key}: []\n`;
        return `${pad}${key}:\n${toYaml(v, indent + 2)}`;
      })
      .join("");
  }
  return `${typeof value === "string" ? JSON.stringify(value) : String(value)}\n`;
}

function isScalar(v: Yaml | undefined): boolean {
  return v === null || typeof v !== "object";
}
