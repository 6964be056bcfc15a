// grpc.health.v1.Health for every mounted service (and "" for the whole server). A service reports
// NOT_SERVING until its stores answer and the process marks it serving.
import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  Health,
  HealthCheckResponseSchema,
  HealthCheckResponse_ServingStatus as Status,
  type HealthCheckResponse,
} from "@corral/proto/grpc";

export { Status as HealthStatus };

export interface HealthState {
  set(service: string, status: Status): void;
  /** Marks every known service (and the server) SERVING or NOT_SERVING. */
  setAll(status: Status): void;
  get(service: string): Status | undefined;
  impl: Partial<ServiceImpl<typeof Health>>;
}

export function createHealthState(services: string[]): HealthState {
  const statuses = new Map<string, Status>([["", Status.NOT_SERVING]]);
  for (const s of services) statuses.set(s, Status.NOT_SERVING);
  const watchers = new Set<() => void>();
  const notify = () => {
    for (const w of [...watchers]) w();
  };
  const state: HealthState = {
    set(service, status) {
      statuses.set(service, status);
      notify();
    },
    setAll(status) {
      for (const key of statuses.keys()) statuses.set(key, status);
      notify();
    },
    get(service) {
      return statuses.get(service);
    },
    impl: {
      check(req) {
        const status = statuses.get(req.service);
        if (status === undefined) throw new ConnectError(`unknown service ${req.service}`, Code.NotFound);
        return create(HealthCheckResponseSchema, { status });
      },
      async *watch(req, ctx): AsyncIterable<HealthCheckResponse> {
        let last: Status | undefined;
        while (!ctx.signal.aborted) {
          const status = statuses.get(req.service) ?? Status.SERVICE_UNKNOWN;
          if (status !== last) {
            last = status;
            yield create(HealthCheckResponseSchema, { status });
          }
          await new Promise<void>((resolve) => {
            const wake = () => {
              watchers.delete(wake);
              ctx.signal.removeEventListener("abort", wake);
              resolve();
            };
            watchers.add(wake);
            ctx.signal.addEventListener("abort", wake);
          });
        }
      },
    },
  };
  return state;
}
