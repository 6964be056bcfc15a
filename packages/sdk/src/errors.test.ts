import { describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { ViolationsSchema } from "@bufbuild/protovalidate/gen/buf/validate/validate_pb.js";
import {
  ApiError,
  AuthenticationError,
  ClusterNotFoundError,
  JobNotFoundError,
  LocationNotFoundError,
  NotFoundError,
  ResourceError,
  UnavailableError,
  ValidationError,
  notFoundKindHeader,
  notFoundIdHeader,
  toApiError,
} from "./errors.js";

describe("toApiError", () => {
  it("maps NOT_FOUND by the kind the server's message names", () => {
    const c = toApiError(new ConnectError('cluster "testing-abc" not found', Code.NotFound));
    expect(c).toBeInstanceOf(ClusterNotFoundError);
    expect((c as ClusterNotFoundError).id).toBe("testing-abc");
    expect((c as ClusterNotFoundError).code).toBe(Code.NotFound);
    expect(toApiError(new ConnectError('job "0192" not found', Code.NotFound))).toBeInstanceOf(JobNotFoundError);
    expect(toApiError(new ConnectError('location "eu" not found', Code.NotFound))).toBeInstanceOf(LocationNotFoundError);
    const other = toApiError(new ConnectError('hardware profile "x" not found', Code.NotFound));
    expect(other).toBeInstanceOf(NotFoundError);
    expect(other).not.toBeInstanceOf(ClusterNotFoundError);
    expect((other as NotFoundError).kind).toBe("hardware profile");
  });

  it("prefers the structured not-found headers", () => {
    const meta = new Headers({ [notFoundKindHeader]: "job", [notFoundIdHeader]: "j1" });
    const e = toApiError(new ConnectError("no such thing", Code.NotFound, meta));
    expect(e).toBeInstanceOf(JobNotFoundError);
    expect((e as JobNotFoundError).id).toBe("j1");
  });

  it("maps the other codes to their classes", () => {
    const r = toApiError(new ConnectError("too big", Code.ResourceExhausted, new Headers({ "retry-after-ms": "250" })));
    expect(r).toBeInstanceOf(ResourceError);
    expect((r as ResourceError).retryAfterMs).toBe(250);
    expect(toApiError(new ConnectError("no key", Code.Unauthenticated))).toBeInstanceOf(AuthenticationError);
    expect(toApiError(new ConnectError("down", Code.Unavailable))).toBeInstanceOf(UnavailableError);
    const internal = toApiError(new ConnectError("boom", Code.Internal));
    expect(internal).toBeInstanceOf(ApiError);
    expect((internal as ApiError).code).toBe(Code.Internal);
    expect((internal as ApiError).codeName).toBe("internal");
    expect((internal as ApiError).rawMessage).toBe("boom");
  });

  it("reads protovalidate field violations from the details", () => {
    const violations = create(ViolationsSchema, {
      violations: [
        {
          message: "value length must be at least 1 characters",
          field: { elements: [{ fieldName: "tasks", subscript: { case: "index", value: 2n } }, { fieldName: "name" }] },
        },
      ],
    });
    const err = new ConnectError("tasks[2].name: too short", Code.InvalidArgument, undefined, [
      { desc: ViolationsSchema, value: violations },
    ]);
    const v = toApiError(err) as ValidationError;
    expect(v).toBeInstanceOf(ValidationError);
    expect(v.violations).toEqual([{ field: "tasks[2].name", description: "value length must be at least 1 characters" }]);
  });

  it("passes other errors through", () => {
    const e = new Error("plain");
    expect(toApiError(e)).toBe(e);
  });
});
