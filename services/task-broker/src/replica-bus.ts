// Requests to every broker replica over Redis Pub/Sub (Revoke, ListSessions): a request goes out on
// one channel, each replica answers on the requester's own reply channel. PUBLISH returns how many
// replicas listen (on a Redis Cluster: the subscribers of every node), so the requester knows how
// many answers to wait for.
import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import { receiversOf, type RedisClient } from "./redis/connection.js";

export interface ReplicaBus {
  /** Subscribes; resolves once this replica receives requests. */
  start(): Promise<void>;
  /** Sends `body` to every replica (this one included); resolves with the answers that came back within `timeoutMs`. */
  request<T>(body: unknown, timeoutMs: number): Promise<T[]>;
  close(): Promise<void>;
}

export interface ReplicaBusOptions {
  /** The command connection (PUBLISH). */
  redis: RedisClient;
  /** A dedicated subscriber connection. */
  subscriber: RedisClient;
  /** Pub/Sub channels ignore ioredis' keyPrefix: this keeps test prefixes apart. */
  channelPrefix: string;
  brokerId: string;
  logger: Logger;
  handle(body: unknown): Promise<unknown>;
}

interface Pending {
  expected: number;
  answers: unknown[];
  resolve(): void;
}

export function createReplicaBus(options: ReplicaBusOptions): ReplicaBus {
  const { redis, subscriber, logger } = options;
  const busChannel = `${options.channelPrefix}corral:broker:bus`;
  const replyChannel = `${options.channelPrefix}corral:broker:reply:${options.brokerId}`;
  const pending = new Map<string, Pending>();
  let closed = false;

  subscriber.on("message", (channel: string, text: string) => {
    if (channel === busChannel) {
      let message: { id: string; replyTo: string; body: unknown };
      try {
        message = JSON.parse(text) as typeof message;
      } catch {
        return;
      }
      options
        .handle(message.body)
        .then(
          (answer) => answer,
          (err: unknown) => {
            logger.error({ err }, "replica request failed");
            return null;
          },
        )
        .then((answer) => redis.publish(message.replyTo, JSON.stringify({ id: message.id, answer })))
        .catch((err: unknown) => logger.warn({ err }, "could not answer a replica request"));
      return;
    }
    if (channel === replyChannel) {
      try {
        const { id, answer } = JSON.parse(text) as { id: string; answer: unknown };
        const p = pending.get(id);
        if (!p) return;
        p.answers.push(answer);
        if (p.answers.length >= p.expected) p.resolve();
      } catch {
        // a malformed answer is ignored
      }
    }
  });

  return {
    async start() {
      await subscriber.subscribe(busChannel, replyChannel);
    },
    async request<T>(body: unknown, timeoutMs: number): Promise<T[]> {
      if (closed) return [];
      const id = randomUUID();
      const p: Pending = { expected: Number.POSITIVE_INFINITY, answers: [], resolve: () => {} };
      const done = new Promise<void>((resolve) => (p.resolve = resolve));
      pending.set(id, p);
      try {
        const published = await redis.publish(busChannel, JSON.stringify({ id, replyTo: replyChannel, body }));
        const listeners = await receiversOf(redis, busChannel, published);
        p.expected = listeners;
        if (p.answers.length >= listeners) p.resolve();
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([done, new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)))]);
        clearTimeout(timer);
        return p.answers.filter((a) => a !== null) as T[];
      } finally {
        pending.delete(id);
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const p of pending.values()) p.resolve();
      await subscriber.unsubscribe().catch(() => {});
    },
  };
}
