// The wake channels this replica listens on: one per cluster it dispatches for, subscribed while a
// dispatch group of the cluster exists. A message on one (a queue got entries, published by the
// enqueue script of any replica) goes to Wakeups.
import type { RedisClient } from "../redis/connection.js";
import { wakeChannel } from "../redis/keys.js";
import type { Wakeups } from "./wakeups.js";

export interface WakeSubscriptions {
  /** Listens on the wake channel of `clusterId` (resolves once subscribed). */
  subscribe(clusterId: string): Promise<void>;
  unsubscribe(clusterId: string): void;
}

export function createWakeSubscriptions(subscriber: RedisClient, channelPrefix: string, wakeups: Wakeups): WakeSubscriptions {
  /** wake channel → cluster id, for the clusters this replica dispatches. */
  const wakeChannels = new Map<string, string>();
  subscriber.on("message", (channel: string, queue: string) => {
    const clusterId = wakeChannels.get(channel);
    if (clusterId !== undefined) wakeups.queued(clusterId, queue);
  });
  return {
    async subscribe(clusterId) {
      const channel = wakeChannel(channelPrefix, clusterId);
      if (wakeChannels.has(channel)) return;
      wakeChannels.set(channel, clusterId);
      await subscriber.subscribe(channel);
    },
    unsubscribe(clusterId) {
      const channel = wakeChannel(channelPrefix, clusterId);
      if (!wakeChannels.delete(channel)) return;
      subscriber.unsubscribe(channel).catch(() => {});
    },
  };
}
