// "A queue of a cluster got entries": raised by this process's enqueues (at once) and by the
// Pub/Sub wake-up messages of every replica; heard by the dispatcher, which wakes the dispatch
// groups reading that queue. Created first, so the queue store and the dispatcher each get it at
// construction and the flow stays one-way: enqueue → wakeups → dispatcher.
export type WakeupListener = (clusterId: string, queue: string) => void;

export interface Wakeups {
  /** Entries were added to `queue` of `clusterId`. */
  queued(clusterId: string, queue: string): void;
  listen(listener: WakeupListener): void;
}

export function createWakeups(): Wakeups {
  const listeners: WakeupListener[] = [];
  return {
    queued(clusterId, queue) {
      for (const l of listeners) l(clusterId, queue);
    },
    listen(listener) {
      listeners.push(listener);
    },
  };
}
