// corral.registry.v1.RuntimeService: what the server a client talks to is and allows.
import { hostname as osHostname } from "node:os";
import { create } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import {
  GetHostnameResponseSchema,
  GetRuntimeConfigResponseSchema,
  LeaseSettingsSchema,
  LimitsSchema,
  MAX_SUBTASKS_PER_RESULT,
  MAX_TASKS_PER_SUBMISSION,
  ProvisioningSettingsSchema,
  RuntimeService,
} from "@corral/proto";
import { getCaller } from "@corral/server-kit";

export interface RuntimeLimits {
  maxTaskInputBytes: number;
  maxTasksPerSubmission: number;
  maxSubtasksPerResult: number;
  maxDisplayBytes: number;
  maxProgressIndicators: number;
  maxMessageBytes: number;
}

export interface RuntimeLeaseSettings {
  leaseDurationMs: number;
  heartbeatIntervalMs: number;
  maxLeaseExpiries: number;
}

/** What GetRuntimeConfig and GetHostname report; whoever wires the services passes their real settings. */
export interface RuntimeOptions {
  serverVersion?: string;
  /** The URL clients should use (CORRAL_URL), e.g. behind an ingress. */
  publicEndpoint?: string;
  /** Defaults to the machine's host name. */
  hostname?: string;
  /** Full names of the services reachable at the endpoint; defaults to the registry's own. */
  services?: string[];
  /** Counts the contracts fix (tasks per submission, subtasks per result) are not settable here. */
  limits?: Partial<Omit<RuntimeLimits, "maxTasksPerSubmission" | "maxSubtasksPerResult">>;
  lease?: Partial<RuntimeLeaseSettings>;
  /** What this registry uses for hosts and provisioned clusters (milliseconds). */
  provisioning?: { hostGraceMs: number; agentHeartbeatMs: number; reconcileIntervalMs: number; stopGraceMs: number };
}

export const DEFAULT_LIMITS: RuntimeLimits = {
  maxTaskInputBytes: 1024 * 1024,
  // What the contracts' validation rules enforce: advertised and enforced are one figure.
  maxTasksPerSubmission: MAX_TASKS_PER_SUBMISSION,
  maxSubtasksPerResult: MAX_SUBTASKS_PER_RESULT,
  maxDisplayBytes: 1024,
  maxProgressIndicators: 100,
  maxMessageBytes: 8 * 1024 * 1024,
};

export const DEFAULT_LEASE: RuntimeLeaseSettings = {
  leaseDurationMs: 60_000,
  heartbeatIntervalMs: 20_000,
  maxLeaseExpiries: 10,
};

export function createRuntimeService(options: RuntimeOptions, ownServices: string[]): ServiceImpl<typeof RuntimeService> {
  const limits = { ...DEFAULT_LIMITS, ...options.limits, maxTasksPerSubmission: MAX_TASKS_PER_SUBMISSION, maxSubtasksPerResult: MAX_SUBTASKS_PER_RESULT };
  const lease = { ...DEFAULT_LEASE, ...options.lease };
  const response = create(GetRuntimeConfigResponseSchema, {
    serverVersion: options.serverVersion ?? "0.1.0",
    limits: create(LimitsSchema, { ...limits, maxTaskInputBytes: BigInt(limits.maxTaskInputBytes) }),
    lease: create(LeaseSettingsSchema, {
      leaseDuration: durationFromMs(lease.leaseDurationMs),
      heartbeatInterval: durationFromMs(lease.heartbeatIntervalMs),
      maxLeaseExpiries: lease.maxLeaseExpiries,
    }),
    publicEndpoint: options.publicEndpoint ?? "",
    ...(options.provisioning
      ? {
          provisioning: create(ProvisioningSettingsSchema, {
            hostGrace: durationFromMs(options.provisioning.hostGraceMs),
            agentHeartbeatInterval: durationFromMs(options.provisioning.agentHeartbeatMs),
            reconcileInterval: durationFromMs(options.provisioning.reconcileIntervalMs),
            runnerStopGrace: durationFromMs(options.provisioning.stopGraceMs),
          }),
        }
      : {}),
    services: options.services ?? ownServices,
  });
  const hostname = options.hostname ?? osHostname();

  return {
    getRuntimeConfig(_req, ctx) {
      getCaller(ctx);
      return response;
    },
    getHostname(_req, ctx) {
      getCaller(ctx);
      return create(GetHostnameResponseSchema, { hostname });
    },
  };
}
