// A process's OpenTelemetry tracing: on when OTEL_EXPORTER_OTLP_ENDPOINT (or the traces-only
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set, exporting over OTLP/HTTP in protobuf; off otherwise,
// and then nothing is registered and no span object is ever made (callers get undefined).
import { propagation, trace, SpanKind, SpanStatusCode, TraceFlags, type Attributes, type HrTime, type SpanContext, type Tracer } from "@opentelemetry/api";
import { W3CTraceContextPropagator, getNumberFromEnv, millisToHrTime, hrTimeDuration } from "@opentelemetry/core";
import { defaultResource, resourceFromAttributes, type Resource } from "@opentelemetry/resources";
import { BasicTracerProvider, BatchSpanProcessor, RandomIdGenerator, type ReadableSpan, type SpanExporter } from "@opentelemetry/sdk-trace-base";
import type { Logger } from "pino";
import { createOtlpTraceExporter } from "./otlp-exporter.js";

/** A span that already happened, recorded with its own ids and times (task attempts, for one). */
export interface SpanRecord {
  traceId: string;
  spanId: string;
  /** Empty or absent: a root span. */
  parentSpanId?: string;
  name: string;
  kind?: SpanKind;
  start: Date;
  end: Date;
  attributes: Attributes;
  /** Set: the span's status is ERROR with this message. */
  error?: string;
  events?: { name: string; time: Date; attributes?: Attributes }[];
  links?: { traceId: string; spanId: string; attributes?: Attributes }[];
}

export interface Tracing {
  /** RPC spans and any live span of the process. */
  tracer: Tracer;
  /** Exports spans that already happened (batched with the live ones). */
  record(spans: readonly SpanRecord[]): void;
  /** A new span id for a record, made as the tracer makes its own. */
  newSpanId(): string;
  /** Sends what is batched now. */
  flush(): Promise<void>;
  /** Flushes and stops exporting. Idempotent. */
  shutdown(): Promise<void>;
}

export interface TracingOptions {
  /** `service.name` of the spans (OTEL_SERVICE_NAME wins when set). */
  serviceName: string;
  /** Where spans go; default: the OTLP/HTTP exporter configured by the OTEL_EXPORTER_OTLP_* variables. */
  exporter?: SpanExporter;
  logger?: Logger;
}

const scope = { name: "corral", version: "0.1.0" };

/** Whether the environment asks for traces to be exported. */
export function tracingEnabled(env: Record<string, string | undefined> = process.env): boolean {
  if ((env.OTEL_SDK_DISABLED ?? "").toLowerCase() === "true") return false;
  if ((env.OTEL_TRACES_EXPORTER ?? "").toLowerCase() === "none") return false;
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
}

/**
 * Sets up tracing and registers it as the process's global tracer provider and W3C propagator. No
 * context manager: an RPC's span travels in its handler context (`rpcSpan`), and an
 * AsyncLocalStorage one would hook every promise the process makes.
 */
export function createTracing(options: TracingOptions): Tracing {
  // The SDK's own attributes (telemetry.sdk.*), with our service name over its default.
  const resource = defaultResource().merge(resourceFromAttributes({ "service.name": process.env.OTEL_SERVICE_NAME || options.serviceName }));
  // The exporter reads OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT, _HEADERS and _TIMEOUT itself; the
  // batch processor the OTEL_BSP_* settings. Two spans a task at thousands of tasks a second would
  // overrun OpenTelemetry's default queue (2,048 spans; over it, spans are dropped) in under a
  // second of a slow collector, so ours holds 16,384 and sends 2,048 a request unless told otherwise.
  const processor = new BatchSpanProcessor(options.exporter ?? createOtlpTraceExporter(), {
    maxQueueSize: getNumberFromEnv("OTEL_BSP_MAX_QUEUE_SIZE") ?? 16_384,
    maxExportBatchSize: getNumberFromEnv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE") ?? 2_048,
  });
  const provider = new BasicTracerProvider({ resource, spanProcessors: [processor] });
  trace.setGlobalTracerProvider(provider);
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  const tracer = provider.getTracer(scope.name, scope.version);
  const ids = new RandomIdGenerator();
  let stopped: Promise<void> | undefined;
  return {
    tracer,
    record(spans) {
      for (const s of spans) processor.onEnd(new RecordedSpan(s, resource));
    },
    newSpanId: () => ids.generateSpanId(),
    flush: () => provider.forceFlush(),
    shutdown() {
      stopped ??= provider.shutdown().catch((err: unknown) => options.logger?.warn({ err }, "stopping the trace exporter failed"));
      return stopped;
    },
  };
}

let processTracing: Tracing | undefined | null = null;

/**
 * The process's tracing, set up on first call when the environment asks for it (one per process:
 * `corral dev` runs every service in one), else undefined.
 */
export function tracingFromEnv(serviceName: string, logger?: Logger, env: Record<string, string | undefined> = process.env): Tracing | undefined {
  if (processTracing === null) processTracing = tracingEnabled(env) ? createTracing({ serviceName, logger }) : undefined;
  return processTracing;
}

const noLinks: ReadableSpan["links"] = [];
const noEvents: ReadableSpan["events"] = [];

/** A recorded span as the batch processor and exporter read it: fields set once, methods on the prototype (two spans a task). */
class RecordedSpan implements ReadableSpan {
  readonly name: string;
  readonly kind: SpanKind;
  readonly parentSpanContext: ReadableSpan["parentSpanContext"];
  readonly startTime: HrTime;
  readonly endTime: HrTime;
  readonly status: ReadableSpan["status"];
  readonly attributes: Attributes;
  readonly links: ReadableSpan["links"];
  readonly events: ReadableSpan["events"];
  readonly ended = true;
  readonly resource: Resource;
  readonly instrumentationScope = scope;
  readonly droppedAttributesCount = 0;
  readonly droppedEventsCount = 0;
  readonly droppedLinksCount = 0;
  readonly #context: SpanContext;

  constructor(s: SpanRecord, resource: Resource) {
    this.name = s.name;
    this.kind = s.kind ?? SpanKind.INTERNAL;
    this.#context = { traceId: s.traceId, spanId: s.spanId, traceFlags: TraceFlags.SAMPLED, isRemote: false };
    this.parentSpanContext = s.parentSpanId ? { traceId: s.traceId, spanId: s.parentSpanId, traceFlags: TraceFlags.SAMPLED, isRemote: true } : undefined;
    this.startTime = millisToHrTime(s.start.getTime());
    this.endTime = millisToHrTime(Math.max(s.start.getTime(), s.end.getTime()));
    this.status = s.error === undefined ? { code: SpanStatusCode.OK } : { code: SpanStatusCode.ERROR, message: s.error };
    this.attributes = s.attributes;
    this.links = s.links?.length ? s.links.map(recordedLink) : noLinks;
    this.events = s.events?.length ? s.events.map(recordedEvent) : noEvents;
    this.resource = resource;
  }

  spanContext(): SpanContext {
    return this.#context;
  }

  get duration(): HrTime {
    return hrTimeDuration(this.startTime, this.endTime);
  }
}

function recordedLink(l: NonNullable<SpanRecord["links"]>[number]): ReadableSpan["links"][number] {
  return { context: { traceId: l.traceId, spanId: l.spanId, traceFlags: TraceFlags.SAMPLED, isRemote: true }, attributes: l.attributes };
}

function recordedEvent(e: NonNullable<SpanRecord["events"]>[number]): ReadableSpan["events"][number] {
  return { name: e.name, time: millisToHrTime(e.time.getTime()), attributes: e.attributes };
}
