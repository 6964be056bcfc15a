// One LISTEN connection per registry process for deployment changes, fanned out to in-process
// watchers by cluster id. The deployments table's trigger NOTIFYs (channel DEPLOYMENT_CHANGES_CHANNEL,
// payload = cluster id) inside the writing transaction, so a deploy on one replica reaches watchers
// on every replica once it commits. Without a database URL (tests of one process), changes this
// process makes are passed on directly.
import { createPgChannel } from "@corral/server-kit";
import { DEPLOYMENT_CHANGES_CHANNEL } from "./store/database.js";

export interface DeploymentNotifier {
  /** Calls `onChange` whenever the cluster's deployments may have changed (also after a reconnect). */
  subscribe(clusterId: string, onChange: () => void): () => void;
  /** This process changed the cluster's deployments (committed); used when there is no LISTEN connection. */
  changed(clusterId: string): void;
  close(): Promise<void>;
}

export interface DeploymentNotifierOptions {
  /** The registry database; unset: only this process's own changes are seen. */
  url?: string;
  onError?: (err: unknown) => void;
  /** How long to wait before listening again after the connection broke (default 1 s). */
  retryMs?: number;
}

export function createDeploymentNotifier(options: DeploymentNotifierOptions): DeploymentNotifier {
  const channel = createPgChannel({ ...options, channel: DEPLOYMENT_CHANGES_CHANNEL, applicationName: "cluster-registry-listen" });
  return {
    subscribe: (clusterId, onChange) => channel.subscribe(clusterId, onChange),
    changed(clusterId) {
      if (options.url === undefined) channel.fire(clusterId);
    },
    close: () => channel.close(),
  };
}
