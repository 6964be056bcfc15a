// corral.jobs.v1.AutomationService handlers: translate proto to the automation commands and back;
// the caller's team scopes everything. Secret references are shown as given, never resolved.
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import {
  AutomationFireSchema,
  AutomationSchema,
  type AutomationService,
  CreateAutomationResponseSchema,
  CronTriggerSchema,
  DeleteAutomationResponseSchema,
  DirectoryTriggerSchema,
  GetAutomationResponseSchema,
  ListAutomationsResponseSchema,
  PauseAutomationResponseSchema,
  ResumeAutomationResponseSchema,
  S3TriggerSchema,
  TaskIdentifierSchema,
  TaskPrototypeSchema,
  TriggerSchema,
  UpdateAutomationResponseSchema,
  type Automation,
  type Trigger,
} from "@corral/proto";
import { requireTeam } from "@corral/server-kit";
import {
  createAutomation,
  deleteAutomation,
  getAutomation,
  listAutomations,
  setPaused,
  updateAutomation,
  type AutomationContext,
  type AutomationView,
} from "./domain/automations/automation-commands.js";
import type { TriggerRow } from "./store/database.js";

export function createAutomationServiceImpl(ctx: AutomationContext, onChange: () => void = () => {}): ServiceImpl<typeof AutomationService> {
  return {
    async createAutomation(req, c) {
      const view = await createAutomation(ctx, requireTeam(c), req);
      onChange();
      return create(CreateAutomationResponseSchema, { automation: toAutomation(view) });
    },
    async getAutomation(req, c) {
      const view = await getAutomation(ctx, requireTeam(c), req.automationId, req.nextFireCount || 5, req.recentFireCount || 20);
      return create(GetAutomationResponseSchema, { automation: toAutomation(view) });
    },
    async listAutomations(req, c) {
      const page = await listAutomations(ctx, requireTeam(c), req.pageSize, req.pageToken);
      return create(ListAutomationsResponseSchema, { automations: page.items.map(toAutomation), nextPageToken: page.nextPageToken });
    },
    async updateAutomation(req, c) {
      const view = await updateAutomation(ctx, requireTeam(c), req);
      onChange();
      return create(UpdateAutomationResponseSchema, { automation: toAutomation(view) });
    },
    async pauseAutomation(req, c) {
      return create(PauseAutomationResponseSchema, { automation: toAutomation(await setPaused(ctx, requireTeam(c), req.automationId, true)) });
    },
    async resumeAutomation(req, c) {
      const view = await setPaused(ctx, requireTeam(c), req.automationId, false);
      onChange();
      return create(ResumeAutomationResponseSchema, { automation: toAutomation(view) });
    },
    async deleteAutomation(req, c) {
      await deleteAutomation(ctx, requireTeam(c), req.automationId);
      return create(DeleteAutomationResponseSchema, {});
    },
  };
}

function toAutomation(v: AutomationView): Automation {
  const a = v.automation;
  return create(AutomationSchema, {
    id: a.id,
    name: a.name,
    prototype: create(TaskPrototypeSchema, {
      identifier: create(TaskIdentifierSchema, { name: a.identifier_name, version: a.identifier_version }),
      input: new Uint8Array(a.input),
      display: a.display,
      maxRetries: a.max_retries,
    }),
    clusterSlug: a.cluster_slug,
    triggers: v.triggers.map(toTrigger),
    paused: a.paused,
    overlap: a.overlap,
    catchUp: a.catch_up,
    createTime: timestampFromDate(a.create_time),
    updateTime: timestampFromDate(a.update_time),
    nextFireTimes: v.nextFires.map(timestampFromDate),
    recentFires: v.fires.map((f) =>
      create(AutomationFireSchema, {
        triggerId: f.trigger_id,
        fireTime: timestampFromDate(f.fire_time),
        object: f.object,
        jobId: f.job_id ?? "",
        jobState: f.job_state ?? 0,
        skippedReason: f.skipped_reason,
        createTime: timestampFromDate(f.create_time),
      }),
    ),
  });
}

function toTrigger(t: TriggerRow): Trigger {
  const s = t.spec;
  const kind: Trigger["kind"] =
    s.kind === "cron"
      ? { case: "cron", value: create(CronTriggerSchema, { schedule: s.schedule, timeZone: s.timeZone }) }
      : s.kind === "directory"
        ? { case: "directory", value: create(DirectoryTriggerSchema, { path: s.path }) }
        : {
            case: "s3",
            value: create(S3TriggerSchema, {
              bucket: s.bucket,
              prefix: s.prefix,
              endpoint: s.endpoint,
              region: s.region,
              accessKeyId: s.accessKeyId,
              secretAccessKeyRef: s.secretAccessKeyRef,
            }),
          };
  return create(TriggerSchema, { id: t.id, kind });
}
