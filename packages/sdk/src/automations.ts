// client.automations(): task prototypes that cron schedules and new storage objects submit as jobs.
import { create } from "@bufbuild/protobuf";
import { createClient, type Client as RpcClient, type Transport } from "@connectrpc/connect";
import {
  AutomationService,
  CatchUpPolicy,
  OverlapPolicy,
  TaskIdentifierSchema,
  TaskPrototypeSchema,
  TriggerSchema,
  type Automation,
  type Trigger,
} from "@corral/proto";
import { rpc } from "./errors.js";
import { parseIdentifier } from "./identifier.js";
import { collectPages } from "./paginate.js";

/** A trigger: a cron schedule (with a time zone), a directory, or an S3 prefix. */
export type TriggerInput =
  | { cron: string; timeZone?: string }
  | { directory: string }
  | {
      s3: { bucket: string; prefix?: string; endpoint?: string; region?: string; accessKeyId?: string; secretAccessKeyRef?: string };
    };

export interface AutomationInput {
  name: string;
  /** `name@vMAJOR.MINOR`. */
  task: string;
  /** A JSON object; each fire adds `scheduledTime` (cron) or `object` (storage) to it. */
  input?: Record<string, unknown>;
  /** Empty: the team's default cluster. */
  cluster?: string;
  maxRetries?: number;
  display?: string;
  triggers: TriggerInput[];
  /** "allow" (default) or "skip" while a previous job of the automation runs. */
  overlap?: "allow" | "skip";
  /** "skip" (default) missed fire times after downtime, or run the last one. */
  catchUp?: "skip" | "run-last";
  paused?: boolean;
}

function toTrigger(t: TriggerInput): Trigger {
  if ("cron" in t) return create(TriggerSchema, { kind: { case: "cron", value: { schedule: t.cron, timeZone: t.timeZone ?? "" } } });
  if ("directory" in t) return create(TriggerSchema, { kind: { case: "directory", value: { path: t.directory } } });
  return create(TriggerSchema, { kind: { case: "s3", value: { ...t.s3 } } });
}

function toPrototype(input: Pick<AutomationInput, "task" | "input" | "maxRetries" | "display">) {
  const id = parseIdentifier(input.task);
  return create(TaskPrototypeSchema, {
    identifier: create(TaskIdentifierSchema, id),
    input: new TextEncoder().encode(JSON.stringify(input.input ?? {})),
    maxRetries: input.maxRetries ?? 0,
    display: input.display ?? "",
  });
}

const overlapOf = (o?: "allow" | "skip") => (o === "skip" ? OverlapPolicy.SKIP : o === "allow" ? OverlapPolicy.ALLOW : OverlapPolicy.UNSPECIFIED);
const catchUpOf = (c?: "skip" | "run-last") =>
  c === "run-last" ? CatchUpPolicy.RUN_LAST : c === "skip" ? CatchUpPolicy.SKIP_MISSED : CatchUpPolicy.UNSPECIFIED;

export class AutomationClient {
  readonly #rpc: RpcClient<typeof AutomationService>;

  constructor(transport: Transport) {
    this.#rpc = createClient(AutomationService, transport);
  }

  /**
   * @example
   * await client.automations().create({
   *   name: "nightly", task: "reports/Build@v1.0", cluster: "prod-AbCdEfGhIjKlMn",
   *   triggers: [{ cron: "0 3 * * *", timeZone: "Europe/Zurich" }],
   * });
   */
  async create(input: AutomationInput): Promise<Automation> {
    const res = await rpc(() =>
      this.#rpc.createAutomation({
        name: input.name,
        prototype: toPrototype(input),
        clusterSlug: input.cluster ?? "",
        triggers: input.triggers.map(toTrigger),
        overlap: overlapOf(input.overlap),
        catchUp: catchUpOf(input.catchUp),
        paused: input.paused ?? false,
      }),
    );
    return res.automation!;
  }

  /** With its next fire times and its last fires. Throws NotFoundError when there is none. */
  async find(id: string, options: { nextFires?: number; recentFires?: number } = {}): Promise<Automation> {
    const res = await rpc(() =>
      this.#rpc.getAutomation({ automationId: id, nextFireCount: options.nextFires ?? 0, recentFireCount: options.recentFires ?? 0 }),
    );
    return res.automation!;
  }

  async all(): Promise<Automation[]> {
    return collectPages(async (pageToken) => {
      const res = await rpc(() => this.#rpc.listAutomations({ pageSize: 500, pageToken }));
      return { items: res.automations, nextPageToken: res.nextPageToken };
    });
  }

  /** Changes what is given; `triggers`, when given, replace all triggers. */
  async update(id: string, changes: Partial<AutomationInput>): Promise<Automation> {
    const res = await rpc(() =>
      this.#rpc.updateAutomation({
        automationId: id,
        name: changes.name,
        prototype: changes.task ? toPrototype({ ...changes, task: changes.task }) : undefined,
        clusterSlug: changes.cluster,
        replaceTriggers: changes.triggers !== undefined,
        triggers: (changes.triggers ?? []).map(toTrigger),
        overlap: changes.overlap ? overlapOf(changes.overlap) : undefined,
        catchUp: changes.catchUp ? catchUpOf(changes.catchUp) : undefined,
      }),
    );
    return res.automation!;
  }

  async pause(id: string): Promise<Automation> {
    return (await rpc(() => this.#rpc.pauseAutomation({ automationId: id }))).automation!;
  }

  async resume(id: string): Promise<Automation> {
    return (await rpc(() => this.#rpc.resumeAutomation({ automationId: id }))).automation!;
  }

  /** Jobs it submitted stay. */
  async delete(id: string): Promise<void> {
    await rpc(() => this.#rpc.deleteAutomation({ automationId: id }));
  }
}
