// Count limits of the contracts, read from their protovalidate annotations: the figure a server
// enforces and the one GetRuntimeConfig advertises come from this one place, the .proto files.
import { getOption, type DescField } from "@bufbuild/protobuf";
import { field as fieldRules } from "@bufbuild/protovalidate/gen/buf/validate/validate_pb.js";
import { CompletedSchema } from "./gen/corral/broker/v1/work_pb.js";
import { SubmitJobRequestSchema } from "./gen/corral/jobs/v1/job_pb.js";
import { TaskCompletedSchema } from "./gen/corral/jobs/v1/ledger_pb.js";

function maxItems(field: DescField): number {
  const rules = getOption(field, fieldRules);
  if (rules.type.case !== "repeated" || rules.type.value.maxItems === undefined) {
    throw new Error(`${field.parent.typeName}.${field.name} has no repeated.max_items rule`);
  }
  return Number(rules.type.value.maxItems);
}

/** Tasks one SubmitJob may carry. */
export const MAX_TASKS_PER_SUBMISSION = maxItems(SubmitJobRequestSchema.field.tasks);

/** Subtasks one result may carry, on the runner stream and towards job-service alike. */
export const MAX_SUBTASKS_PER_RESULT = maxItems(CompletedSchema.field.subtasks);

if (maxItems(TaskCompletedSchema.field.subtasks) !== MAX_SUBTASKS_PER_RESULT) {
  throw new Error("corral.broker.v1.Completed and corral.jobs.v1.TaskCompleted disagree on the subtask limit");
}
