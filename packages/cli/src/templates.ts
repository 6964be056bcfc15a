// Named job templates for `corral job submit <template>` (the lead wires `demo` here).
import type { Task } from "@corral/sdk";
import type { TaskSubmission } from "@corral/proto";

export interface JobTemplate {
  description: string;
  /** The job's name and root tasks; `cluster` is the --cluster flag, when given. */
  build(options: { cluster?: string }): { name: string; tasks: Array<Task<unknown> | TaskSubmission> } | Promise<{ name: string; tasks: Array<Task<unknown> | TaskSubmission> }>;
}

const templates = new Map<string, JobTemplate>();

export function registerJobTemplate(name: string, template: JobTemplate): void {
  templates.set(name, template);
}

export function getJobTemplate(name: string): JobTemplate | undefined {
  return templates.get(name);
}

export function listJobTemplates(): Array<[string, JobTemplate]> {
  return [...templates];
}
