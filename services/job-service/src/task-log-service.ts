// corral.jobs.v1.TaskLogService (a team's reads of its jobs' task logs) and the internal
// TaskLogIngestService (brokers forwarding the lines runners send): translate proto to the
// task-log domain and back.
import { create } from "@bufbuild/protobuf";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import {
  AppendTaskLogsResponseSchema,
  FollowJobLogsResponseSchema,
  ListTaskLogsResponseSchema,
  LogEntrySchema,
  TaskLogLineSchema,
  type TaskLogIngestService,
  type TaskLogLine,
  type TaskLogService,
} from "@corral/proto";
import { keyRevocation, requireService, requireTeam } from "@corral/server-kit";
import { appendTaskLogs, followJobLogs, listTaskLogs, type TaskLogContext } from "./domain/task-logs/task-logs.js";
import type { TaskLogRow } from "./store/task-log-repository.js";
import type { TaskMetrics } from "./task-metrics.js";

function toLine(r: TaskLogRow): TaskLogLine {
  return create(TaskLogLineSchema, {
    cursor: r.seq,
    taskId: r.task_id,
    attempt: r.attempt,
    taskName: r.task_name,
    droppedCount: r.dropped,
    line: create(LogEntrySchema, { time: timestampFromDate(r.time), level: r.level, message: r.message, fieldsJson: r.fields }),
  });
}

export function createTaskLogServiceImpl(ctx: TaskLogContext): ServiceImpl<typeof TaskLogService> {
  return {
    async listTaskLogs(req, c) {
      const page = await listTaskLogs(ctx, requireTeam(c), {
        jobId: req.jobId,
        taskId: req.taskId,
        attempt: req.attempt,
        afterCursor: req.afterCursor,
        limit: req.limit,
      });
      return create(ListTaskLogsResponseSchema, { lines: page.lines.map(toLine), nextCursor: page.nextCursor, more: page.more });
    },

    async *followJobLogs(req, c) {
      const teamId = requireTeam(c);
      // A revoked key ends the stream at once, as WatchJob does.
      const revoked = keyRevocation(c);
      const signal = revoked ? AbortSignal.any([c.signal, revoked]) : c.signal;
      for await (const rows of followJobLogs(ctx, teamId, { jobId: req.jobId, taskId: req.taskId, afterCursor: req.afterCursor }, signal)) {
        yield create(FollowJobLogsResponseSchema, { lines: rows.map(toLine) });
      }
      if (revoked?.aborted) throw revoked.reason;
    },
  };
}

export function createTaskLogIngestServiceImpl(ctx: TaskLogContext, metrics?: Pick<TaskMetrics, "logLines">): ServiceImpl<typeof TaskLogIngestService> {
  return {
    async appendTaskLogs(req, c) {
      requireService(c);
      const out = await appendTaskLogs(
        ctx,
        req.attempts.map((a) => ({
          taskId: a.taskId,
          attempt: a.attempt,
          clusterId: a.clusterId,
          dropped: a.droppedCount,
          lines: a.lines.map((l) => ({
            time: l.time ? timestampDate(l.time) : new Date(),
            level: l.level,
            message: l.message,
            fields: l.fieldsJson,
          })),
        })),
      );
      metrics?.logLines(out);
      return create(AppendTaskLogsResponseSchema, { storedCount: out.stored, refused: out.refused });
    },
  };
}
