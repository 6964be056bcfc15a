// GetJobSpans: a page of a job's tasks with every attempt as a span, for the team that owns it.
import { NotFoundError } from "@corral/server-kit";
import type { JobRow } from "../../store/database.js";
import { decodePageToken, encodePageToken } from "../page-token.js";
import type { JobsStore } from "../ports.js";
import { jobTraceId, spansOfTasks, type AttemptSpan } from "./attempt-spans.js";

export const DEFAULT_SPAN_PAGE_TASKS = 1000;

export interface JobSpansPage {
  job: JobRow;
  traceId: string;
  spans: AttemptSpan[];
  nextPageToken: string;
}

const isTaskToken = (v: Record<string, unknown>): v is { task: string } => typeof v.task === "string";

export async function getJobSpans(store: JobsStore, teamId: string, jobId: string, pageSize: number, pageToken: string): Promise<JobSpansPage> {
  const limit = pageSize === 0 ? DEFAULT_SPAN_PAGE_TASKS : pageSize;
  const after = decodePageToken(pageToken, isTaskToken)?.task ?? "";
  const job = await store.jobs.findJob(teamId, jobId);
  if (!job) throw new NotFoundError("job", jobId);
  const tasks = await store.spans.spanTasksPage(jobId, after, limit + 1);
  const page = tasks.slice(0, limit);
  const superseded = await store.spans.supersededSpans(
    jobId,
    page.filter((t) => t.attempt > 1).map((t) => t.id),
  );
  const last = page.at(-1);
  return {
    job,
    traceId: jobTraceId(job),
    spans: spansOfTasks(job, page, superseded),
    nextPageToken: tasks.length > limit && last ? encodePageToken({ task: last.id }) : "",
  };
}
