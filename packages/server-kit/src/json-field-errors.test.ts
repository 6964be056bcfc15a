// Naming the field of a JSON request protobuf-es refused.
import { HelloSchema, QueryJobsRequestSchema, SubmitJobRequestSchema } from "@corral/proto";
import { describe, expect, it } from "vitest";
import { locateJsonError } from "./json-field-errors.js";

describe("locateJsonError", () => {
  it("names an unknown enum name in a list by its index", () => {
    expect(locateJsonError(QueryJobsRequestSchema, { states: ["JOB_STATE_RUNNING", "JOB_STATE_BOGUS"] })).toBe(
      'states[1]: unknown value "JOB_STATE_BOGUS" of enum corral.jobs.v1.JobState',
    );
  });

  it("names an unknown field, also inside nested messages", () => {
    expect(locateJsonError(QueryJobsRequestSchema, { bogus: 1 })).toBe("bogus: unknown field of corral.jobs.v1.QueryJobsRequest");
    expect(locateJsonError(SubmitJobRequestSchema, { tasks: [{}, { identifier: { name: "a", colour: "red" } }] })).toBe(
      "tasks[1].identifier.colour: unknown field of corral.common.v1.TaskIdentifier",
    );
  });

  it("takes proto names and JSON names, known enum names and numbers, and map keys of any text", () => {
    expect(locateJsonError(QueryJobsRequestSchema, { task_states: ["TASK_STATE_QUEUED"], clusterSlugs: ["a"], states: [2] })).toBeUndefined();
    expect(locateJsonError(HelloSchema, { labels: { "any key": "v" } })).toBeUndefined();
  });
});
