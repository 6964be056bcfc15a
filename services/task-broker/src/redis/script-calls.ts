// One typed call per Lua script of `lua/`: each builds its script's KEYS and ARGV (in the order the
// script's header documents) and parses its reply, so no other module knows an argument position.
// Batch scripts are built item by item (`add`) straight into the argument list: no object per item.
import type { ChainableCommander } from "ioredis";
import { runScript, type Arg, type Target } from "./scripts.js";

/** What a claim script answers per entry (claimEntry in lua/includes/claim-entry.lua). */
export type ClaimStatus = "leased" | "revoked" | "duplicate" | "inflight";

/** enqueueTasks-1: adds attempts to their streams once; per item 1 (added) or 0 (known). */
export class EnqueueTasksCall {
  readonly #key: string;
  readonly #args: Arg[];

  constructor(queuesKey: string, group: string, recordTtlSec: number, nowMs: number) {
    this.#key = queuesKey;
    this.#args = [group, recordTtlSec, nowMs];
  }

  /** `timeoutMs`: the attempt's execution timeout, 0 for none. */
  add(stream: string, record: string, jobId: string, teamId: string, envelope: string, queue: string, member: string, timeoutMs: number): void {
    this.#args.push(stream, record, jobId, teamId, envelope, queue, member, timeoutMs);
  }

  queue(pipe: ChainableCommander): void {
    void runScript(pipe, "enqueueTasks-1", [this.#key], this.#args);
  }

  static parse(reply: unknown): number[] {
    return reply as number[];
  }
}

/** claimTasks-1: turns entries read earlier into leases, or drops them; a ClaimStatus per item. */
export class ClaimTasksCall {
  readonly #key: string;
  readonly #args: Arg[];

  constructor(leasesKey: string, group: string, recordTtlSec: number, brokerId: string, clusterKeyBase: string) {
    this.#key = leasesKey;
    this.#args = [group, recordTtlSec, brokerId, clusterKeyBase];
  }

  add(
    record: string,
    stream: string,
    entryId: string,
    token: string,
    expiryMs: number,
    sessionId: string,
    member: string,
    jobId: string,
    enqueuedAtMs: number,
  ): void {
    this.#args.push(record, stream, entryId, token, expiryMs, sessionId, member, jobId, enqueuedAtMs);
  }

  queue(pipe: ChainableCommander): void {
    void runScript(pipe, "claimTasks-1", [this.#key], this.#args);
  }

  static parse(reply: unknown): ClaimStatus[] {
    return reply as ClaimStatus[];
  }
}

/**
 * Receives each entry readClaimTasks-1 read: the index of its stream in the call (0-based), its id
 * and fields, its status and its slot (0-based, -1 when it got none).
 */
export type ReadClaimRow = (stream: number, id: string, fields: string[], status: ClaimStatus | "unclaimed", slot: number) => void;

export interface ReadClaimInput {
  leasesKey: string;
  group: string;
  consumer: string;
  countPerStream: number;
  recordTtlSec: number;
  expiryMs: number;
  clusterKeyBase: string;
  /** Stream keys with the key prefix applied. */
  streams: readonly string[];
  tokenBase: string;
  /** Distinct session ids, and per slot the 1-based index of its session, four hex digits each. */
  sessions: Iterable<string>;
  sessionCount: number;
  slotMap: string;
}

/**
 * readClaimTasks-1: reads new entries of a group's streams and leases them into slots; answers how
 * many it read. With `inOrder`, readClaimBands-1: the streams are read one after the other, in the
 * order given, for only the slots left (priority bands).
 */
export async function readClaimTasks(target: Target, input: ReadClaimInput, each: ReadClaimRow, inOrder = false): Promise<number> {
  const args: Arg[] = [
    input.group,
    input.consumer,
    input.countPerStream,
    input.recordTtlSec,
    input.expiryMs,
    input.clusterKeyBase,
    input.streams.length,
    ...input.streams,
    input.tokenBase,
    input.sessionCount,
    ...input.sessions,
    input.slotMap,
  ];
  const reply = (await runScript(target, inOrder ? "readClaimBands-1" : "readClaimTasks-1", [input.leasesKey], args)) as Array<
    [number, string, string, string, string, string, ClaimStatus | "unclaimed", number]
  >;
  for (const [stream, id, task, t, m, j, status, slot] of reply) {
    const fields = ["task", task, "t", t];
    if (m !== "") fields.push("m", m, "j", j);
    each(stream - 1, id, fields, status, slot - 1);
  }
  return reply.length;
}

/** extendLeases-1: the heartbeat; answers the members the session no longer holds. */
export async function extendLeases(
  target: Target,
  input: { leasesKey: string; recordPrefix: string; sessionId: string; expiryMs: number; nowMs: number; members: readonly string[] },
): Promise<string[]> {
  const args: Arg[] = [input.recordPrefix, input.sessionId, input.expiryMs, input.nowMs, ...input.members];
  return (await runScript(target, "extendLeases-1", [input.leasesKey], args)) as string[];
}

/** A lease resumeLeases re-bound: its job and the stream it was read from. */
export interface ResumedLease {
  jobId: string;
  /** The stream key as stored in the record (with the key prefix); '' when the record has none. */
  stream: string;
}

/** resumeLeases-1: re-binds leases to a new session; answers member → job and stream of those resumed. */
export async function resumeLeases(
  target: Target,
  input: {
    leasesKey: string;
    recordPrefix: string;
    sessionId: string;
    brokerId: string;
    expiryMs: number;
    nowMs: number;
    leases: ReadonlyArray<{ member: string; token: string }>;
  },
): Promise<Map<string, ResumedLease>> {
  const args: Arg[] = [input.recordPrefix, input.sessionId, input.brokerId, input.expiryMs, input.nowMs];
  for (const l of input.leases) args.push(l.member, l.token);
  const flat = (await runScript(target, "resumeLeases-1", [input.leasesKey], args)) as string[];
  const out = new Map<string, ResumedLease>();
  for (let i = 0; i + 2 < flat.length; i += 3) out.set(flat[i]!, { jobId: flat[i + 1]!, stream: flat[i + 2]! });
  return out;
}

/** completeLeases-1: releases leases whose results are durable; per item true when the token matched. */
export class CompleteLeasesCall {
  readonly #key: string;
  readonly #args: Arg[];

  /** `clusterKeyBase` (key prefix applied) and `wakeChannel`: where a gated attempt's slot frees. */
  constructor(leasesKey: string, group: string, doneTtlSec: number, clusterKeyBase: string, wakeChannel: string) {
    this.#key = leasesKey;
    this.#args = [group, doneTtlSec, clusterKeyBase, wakeChannel];
  }

  add(record: string, token: string, member: string): void {
    this.#args.push(record, token, member);
  }

  queue(pipe: ChainableCommander): void {
    void runScript(pipe, "completeLeases-1", [this.#key], this.#args);
  }

  static parse(reply: unknown): boolean[] {
    return (reply as number[]).map((v) => v === 1);
  }
}

/** One lease expireLeases-2 took out of the lease set (or handed out again after a stalled report). */
export interface ExpiredRow {
  member: string;
  jobId: string;
  sessionId: string;
  brokerId: string;
  timedOut: boolean;
}

/** expireLeases-2: the reaper step of one cluster. */
export function queueExpireLeases(
  pipe: ChainableCommander,
  input: {
    leasesKey: string;
    expiringKey: string;
    nowMs: number;
    limit: number;
    reportDeadlineMs: number;
    group: string;
    expiredTtlSec: number;
    recordPrefix: string;
    /** Key prefix applied; with `wakeChannel`, where a gated attempt's slot frees. */
    clusterKeyBase: string;
    wakeChannel: string;
  },
): void {
  const args: Arg[] = [
    input.nowMs,
    input.limit,
    input.reportDeadlineMs,
    input.group,
    input.expiredTtlSec,
    input.recordPrefix,
    input.clusterKeyBase,
    input.wakeChannel,
  ];
  void runScript(pipe, "expireLeases-2", [input.leasesKey, input.expiringKey], args);
}

export function parseExpireLeases(reply: unknown): ExpiredRow[] {
  const list = reply as string[];
  const out: ExpiredRow[] = [];
  for (let j = 0; j + 4 < list.length; j += 5) {
    out.push({ member: list[j]!, jobId: list[j + 1]!, sessionId: list[j + 2]!, brokerId: list[j + 3]!, timedOut: list[j + 4] === "1" });
  }
  return out;
}

/** requeueEntry-3: puts an entry back at the end of its stream (dropping a just-granted lease with `token`). */
export function queueRequeueEntry(
  pipe: ChainableCommander,
  input: {
    stream: string;
    record: string;
    leasesKey: string;
    group: string;
    entryId: string;
    envelope: string;
    enqueuedAtMs: number;
    wakeChannel: string;
    queue: string;
    member: string;
    jobId: string;
    token: string | undefined;
  },
): void {
  const args: Arg[] = [
    input.group,
    input.entryId,
    input.envelope,
    input.enqueuedAtMs,
    input.wakeChannel,
    input.queue,
    input.member,
    input.jobId,
  ];
  if (input.token) args.push(input.token);
  void runScript(pipe, "requeueEntry-3", [input.stream, input.record, input.leasesKey], args);
}

/** dropEntries-1: deletes the entries of queued attempts; answers how many were deleted. */
export class DropEntriesCall {
  readonly #key: string;
  readonly #args: Arg[];

  constructor(queuesKey: string, group: string, recordTtlSec: number) {
    this.#key = queuesKey;
    this.#args = [group, recordTtlSec];
  }

  add(record: string): void {
    this.#args.push(record);
  }

  queue(pipe: ChainableCommander): void {
    void runScript(pipe, "dropEntries-1", [this.#key], this.#args);
  }

  static parse(reply: unknown): number {
    return Number(reply);
  }
}

/** A gated attempt's concurrency key and rate limit, as enqueueGated-1 stores them. */
export interface GateSpec {
  /** '' for none. */
  concurrencyKey: string;
  concurrencyLimit: number;
  /** '' for none. */
  rateLimitName: string;
  rateLimit: number;
  ratePeriodMs: number;
}

/** enqueueGated-1: adds gated attempts to their keys' waiting lists once; per item 1 (added) or 0 (known). */
export class EnqueueGatedCall {
  readonly #key: string;
  readonly #args: Arg[];

  constructor(queuesKey: string, clusterKeyBase: string, nowMs: number) {
    this.#key = queuesKey;
    this.#args = [clusterKeyBase, nowMs];
  }

  add(member: string, jobId: string, teamId: string, envelope: string, bandQueue: string, timeoutMs: number, gate: GateSpec): void {
    this.#args.push(
      member,
      jobId,
      teamId,
      envelope,
      bandQueue,
      timeoutMs,
      gate.concurrencyKey,
      gate.concurrencyLimit,
      gate.rateLimitName,
      gate.rateLimit,
      gate.ratePeriodMs,
    );
  }

  queue(pipe: ChainableCommander): void {
    void runScript(pipe, "enqueueGated-1", [this.#key], this.#args);
  }

  static parse(reply: unknown): number[] {
    return reply as number[];
  }
}

export interface ClaimGatedInput {
  leasesKey: string;
  /** Key prefix applied. */
  clusterKeyBase: string;
  brokerId: string;
  recordTtlSec: number;
  expiryMs: number;
  /** Concurrency slots whose lease expired before this (ms) are lost: dropped. */
  holderCutoffMs: number;
  wakeChannel: string;
  /** Band queues in reading order. */
  bands: readonly string[];
  tokenBase: string;
  sessions: Iterable<string>;
  sessionCount: number;
  slotMap: string;
}

/** One attempt claimGated-1 leased: its band (index into the call's), member, envelope and slot (0-based). */
export interface GatedClaim {
  band: number;
  member: string;
  task: string;
  enqueuedAtMs: number;
  jobId: string;
  slot: number;
}

export interface ClaimGatedReply {
  /** Redis' clock when the call ran: the start time of every attempt it leased. */
  nowMs: number;
  /** When (Redis' clock) a rate limit lets the next held-back attempt start; 0: none was held back. */
  retryAtMs: number;
  claims: GatedClaim[];
}

/** claimGated-1: leases waiting gated attempts into slots, keys taking turns. */
export async function claimGated(target: Target, input: ClaimGatedInput): Promise<ClaimGatedReply> {
  const args: Arg[] = [
    input.clusterKeyBase,
    input.brokerId,
    input.recordTtlSec,
    input.expiryMs,
    input.holderCutoffMs,
    input.wakeChannel,
    input.bands.length,
    ...input.bands,
    input.tokenBase,
    input.sessionCount,
    ...input.sessions,
    input.slotMap,
  ];
  const [nowMs, retryAtMs, rows] = (await runScript(target, "claimGated-1", [input.leasesKey], args)) as [
    number,
    number,
    Array<[number, string, string, string, string, number]>,
  ];
  return {
    nowMs: Number(nowMs),
    retryAtMs: Number(retryAtMs),
    claims: rows.map(([band, member, task, t, jobId, slot]) => ({ band: band - 1, member, task, enqueuedAtMs: Number(t), jobId, slot: slot - 1 })),
  };
}

/** requeueGated-1: gives back gated leases of a closed session; answers how many. */
export async function requeueGated(
  target: Target,
  input: { leasesKey: string; clusterKeyBase: string; wakeChannel: string; leases: ReadonlyArray<{ member: string; token: string }> },
): Promise<number> {
  const args: Arg[] = [input.clusterKeyBase, input.wakeChannel];
  for (const l of input.leases) args.push(l.member, l.token);
  return Number(await runScript(target, "requeueGated-1", [input.leasesKey], args));
}
