// A gateway task: the task's input sent to its route's endpoint, called again after a 5xx answer,
// a timeout or a broken connection as the route's retry policy says (within the one attempt), and
// the answer turned into the task's output (JSON, text as a JSON string, or bytes) or its error.
import { create } from "@bufbuild/protobuf";
import { OutputEncoding, TaskOutputSchema, type TaskOutput } from "@corral/proto";
import type { TaskOutcome } from "../runner/runner-state.js";
import { sleep } from "../transport.js";
import { EgressRefusedError, type EgressPolicy } from "./egress-policy.js";
import { AnswerTooLargeError, HttpConnectionError, HttpTimeoutError, httpCall, type HttpAnswer, type HttpRequest } from "./http-call.js";

/** What a gateway needs of a route (the registry's Route message, flattened). */
export interface GatewayRoute {
  id: string;
  name: string;
  version: string;
  method: string;
  url: string;
  headers: Record<string, string>;
  timeoutMs: number;
  maxAttempts: number;
  initialBackoffMs: number;
  maxBackoffMs: number;
}

/** How many characters of an error answer's body the task's error quotes. */
export const BODY_EXCERPT_CHARS = 512;

/** The wait before call `attempt` + 1 (attempt counts from 1): doubling from the initial backoff, capped. */
export function retryDelay(route: Pick<GatewayRoute, "initialBackoffMs" | "maxBackoffMs">, attempt: number): number {
  return Math.min(route.maxBackoffMs, route.initialBackoffMs * 2 ** Math.min(attempt - 1, 30));
}

/** A 5xx answer, a timeout or a broken connection may go away; a 4xx, 3xx or a refused host will not. */
export function isRetryable(result: HttpAnswer | Error): boolean {
  if (result instanceof Error) return result instanceof HttpTimeoutError || result instanceof HttpConnectionError;
  return result.status >= 500;
}

function isJson(contentType: string): boolean {
  const type = contentType.split(";")[0]!.trim().toLowerCase();
  return type === "application/json" || type.endsWith("+json");
}

/** The start of a body as one line of printable text. */
export function bodyExcerpt(body: Buffer): string {
  const text = body.toString("utf8", 0, Math.min(body.length, BODY_EXCERPT_CHARS * 4)).replace(/[\u0000-\u001f\u007f]+/g, " ").trim();
  return text.length > BODY_EXCERPT_CHARS ? `${text.slice(0, BODY_EXCERPT_CHARS)}…` : text;
}

/** The output of a 2xx answer: JSON as JSON, text as a JSON string, anything else as bytes; none for an empty body. */
export function answerOutput(answer: HttpAnswer): TaskOutput | undefined {
  if (answer.body.length === 0) return undefined;
  if (isJson(answer.contentType)) {
    JSON.parse(answer.body.toString("utf8")); // throws SyntaxError: the endpoint said JSON and sent something else
    return create(TaskOutputSchema, { encoding: OutputEncoding.JSON, data: answer.body });
  }
  if (/^text\//i.test(answer.contentType.trim())) {
    return create(TaskOutputSchema, { encoding: OutputEncoding.JSON, data: Buffer.from(JSON.stringify(answer.body.toString("utf8"))) });
  }
  return create(TaskOutputSchema, { encoding: OutputEncoding.BYTES, data: answer.body });
}

function failed(error: string, unrecoverable: boolean): TaskOutcome {
  return { kind: "failed", error, unrecoverable, countsAsRetry: true, display: "", progress: [] };
}

export interface RouteCallOptions {
  policy: EgressPolicy;
  signal: AbortSignal;
  maxOutputBytes: number;
  /** For tests of the retry loop; default the real HTTP call. */
  call?: (req: HttpRequest) => Promise<HttpAnswer>;
}

/** Executes one task through its route; never rejects for the endpoint's own failures. */
export async function executeRoute(route: GatewayRoute, input: Uint8Array, options: RouteCallOptions): Promise<TaskOutcome> {
  const req: HttpRequest = {
    method: route.method,
    url: route.url,
    headers: route.headers,
    // A task submitted without input sends JSON null, so the body is always JSON.
    body: input.length === 0 ? Buffer.from("null") : input,
    timeoutMs: route.timeoutMs,
  };
  const call = options.call ?? ((r: HttpRequest) => httpCall(r, options.policy, { signal: options.signal, maxBodyBytes: options.maxOutputBytes }));
  const target = `${route.method} ${route.url}`;
  let result: HttpAnswer | Error;
  let attempt = 0;
  for (;;) {
    attempt += 1;
    try {
      result = await call(req);
    } catch (err) {
      if (options.signal.aborted) return failed(`canceled: ${String((options.signal.reason as Error | undefined)?.message ?? options.signal.reason)}`, false);
      result = err instanceof Error ? err : new Error(String(err));
    }
    if (!isRetryable(result) || attempt >= route.maxAttempts) break;
    try {
      await sleep(retryDelay(route, attempt), options.signal);
    } catch {
      return failed(`canceled while waiting to call ${target} again`, false);
    }
  }
  const tries = attempt === 1 ? "" : ` (after ${attempt} calls)`;
  if (result instanceof EgressRefusedError) return failed(`route ${route.name}@${route.version} refused: ${result.message}`, true);
  if (result instanceof AnswerTooLargeError) return failed(`${target}: ${result.message}`, true);
  if (result instanceof Error) return failed(`${target}: ${result.message}${tries}`, false);
  if (result.status < 200 || result.status > 299) {
    const excerpt = bodyExcerpt(result.body);
    const redirect = result.status >= 300 && result.status < 400 ? " (redirects are not followed)" : "";
    return failed(`${target} answered HTTP ${result.status}${redirect}${tries}${excerpt ? `: ${excerpt}` : ""}`, false);
  }
  try {
    return { kind: "completed", display: "", subtasks: [], progress: [], output: answerOutput(result) };
  } catch (err) {
    return failed(`${target} answered Content-Type ${result.contentType} but its body is not JSON: ${(err as Error).message}`, false);
  }
}
