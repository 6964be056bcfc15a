// One dispatch group: the sessions of one cluster that read the same set of queues. It holds what
// its loop and its leasing share: the members and their credit, the wake signal, the buffer of
// entries read ahead, whether its consumer groups exist, and how many streams are busy.
import { streamKey } from "../redis/keys.js";
import { bandRank, gatedBand } from "../task-identifier.js";
import type { StreamEntry } from "../redis/queue-store.js";
import type { RunnerSession } from "../runner-session.js";
import { createEntryBuffer, type EntryBuffer } from "./entry-buffer.js";
import { createGroupMembers, type GroupMembers } from "./group-members.js";
import { createWakeSignal, type WakeSignal } from "./wake-signal.js";

export interface DispatchGroup {
  /** The cluster and the queue set (see groupKey). */
  readonly key: string;
  readonly clusterId: string;
  readonly queues: readonly string[];
  readonly streams: string[];
  /** Priority band queues (`<queue>!p<N>`) of the group's queues that exist, highest first. */
  readonly bands: readonly string[];
  /** Adds a band queue the group does not read yet; false when it already does. */
  addBand(band: string): boolean;
  /**
   * The streams of the next read and whether they include bands: bands highest first, then the
   * plain queues; every STARVATION_TURN-th read of a group with bands goes lowest first.
   */
  readStreams(): { streams: string[]; banded: boolean };
  /** Every stream the group reads, bands included (recovery of orphaned entries). */
  allStreams(): string[];
  /**
   * Band queues (`<queue>` or `<queue>!p<N>`) of the group's queues that have gated attempts (a
   * concurrency key or a rate limit, waiting in Redis lists), highest priority first.
   */
  readonly gates: readonly string[];
  /** Adds the band of a gated queue (`<band>!g`) the group does not claim from yet; false when it does. */
  addGate(gateQueue: string): boolean;
  /** The gated band queues in claiming order: highest first, every STARVATION_TURN-th claim lowest first. */
  gateOrder(): string[];
  /** A gated attempt may start (enqueued, a slot freed, a rate window opened): claim on the next turn. */
  markGateDirty(): void;
  /**
   * Whether gated attempts may start now; clears it (before each gate claim). A group that has not
   * claimed for `pollMs` looks again (a wake-up can be lost).
   */
  takeGateDirty(pollMs: number): boolean;
  /** A rate limit lets a held-back attempt start in `ms`: claim again then. */
  gateRetryIn(ms: number): void;
  readonly members: GroupMembers;
  readonly signal: WakeSignal;
  readonly buffer: EntryBuffer;
  /** The consumer groups exist and the wake-up channel is subscribed. */
  readonly ready: boolean;
  markReady(): void;
  /** A Redis call failed: when the consumer groups are gone, create them again before the next read. */
  failed(err: unknown): void;
  /** Remembers how many streams a read found entries in (all of them when none). */
  noteRead(read: readonly StreamEntry[]): void;
  /**
   * COUNT of the next read: COUNT applies per stream, so the credit is split over the streams that
   * had entries last time, and a group never holds much more than it can hand out (other groups
   * and replicas could run what sits in its buffer).
   */
  readCount(open: number): number;
}

/** Every this many reads of a group with priority bands, the lowest priority is read first. */
export const STARVATION_TURN = 4;

/** Sessions with the same key read the same streams, so they share one group. */
export function groupKey(session: RunnerSession): string {
  return `${session.cluster.id}\n${session.queues.join("\n")}`;
}

/** Redis answered that a stream's consumer group is gone (Redis lost its data): create it again. */
export function isNoGroup(err: unknown): boolean {
  return String((err as Error).message).includes("NOGROUP");
}

/** The group `session` belongs in, with no members yet. */
export function createDispatchGroup(session: RunnerSession): DispatchGroup {
  const clusterId = session.cluster.id;
  const queues = session.queues;
  const streams = queues.map((q) => streamKey(clusterId, q));
  let ready = false;
  let hotStreams = queues.length;
  const bands: string[] = [];
  let bandReads = 0;
  const bandStreams = () => bands.map((b) => streamKey(clusterId, b));
  const gates: string[] = [];
  let gateClaims = 0;
  let gateDirty = true;
  let lastGateClaimMs = 0;
  let retryTimer: { at: number; timer: NodeJS.Timeout } | undefined;
  const signal = createWakeSignal();
  return {
    key: groupKey(session),
    clusterId,
    queues,
    streams,
    bands,
    addBand(band) {
      if (bands.includes(band)) return false;
      bands.push(band);
      bands.sort((a, b) => bandRank(b) - bandRank(a) || (a < b ? -1 : 1));
      return true;
    },
    readStreams() {
      if (bands.length === 0) return { streams, banded: false };
      const ordered = [...bandStreams(), ...streams];
      bandReads += 1;
      return { streams: bandReads % STARVATION_TURN === 0 ? ordered.reverse() : ordered, banded: true };
    },
    allStreams: () => [...bandStreams(), ...streams],
    gates,
    addGate(gateQueue) {
      const band = gatedBand(gateQueue);
      if (gates.includes(band)) return false;
      gates.push(band);
      gates.sort((a, b) => bandRank(b) - bandRank(a) || (a < b ? -1 : 1));
      return true;
    },
    gateOrder() {
      gateClaims += 1;
      return gateClaims % STARVATION_TURN === 0 ? [...gates].reverse() : [...gates];
    },
    markGateDirty() {
      gateDirty = true;
    },
    takeGateDirty(pollMs) {
      const now = Date.now();
      const due = gateDirty || now - lastGateClaimMs >= pollMs;
      if (due) {
        gateDirty = false;
        lastGateClaimMs = now;
      }
      return due;
    },
    gateRetryIn(ms) {
      const at = Date.now() + ms;
      if (retryTimer && retryTimer.at <= at) return;
      if (retryTimer) clearTimeout(retryTimer.timer);
      const timer = setTimeout(() => {
        retryTimer = undefined;
        gateDirty = true;
        signal.poke();
      }, ms);
      timer.unref();
      retryTimer = { at, timer };
    },
    members: createGroupMembers(),
    signal,
    buffer: createEntryBuffer(),
    get ready() {
      return ready;
    },
    markReady() {
      ready = true;
    },
    failed(err) {
      if (isNoGroup(err)) ready = false;
    },
    noteRead(read) {
      const hot = new Set(read.map((e) => e.stream)).size;
      hotStreams = hot > 0 ? hot : streams.length;
    },
    readCount(open) {
      return Math.max(1, Math.ceil(open / Math.max(1, hotStreams)));
    },
  };
}
