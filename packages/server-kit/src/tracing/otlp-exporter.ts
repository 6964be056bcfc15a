// The OTLP/HTTP protobuf span exporter: OpenTelemetry's own HTTP delegate (the OTEL_EXPORTER_OTLP_*
// endpoint, headers, timeout, compression, retries with backoff) with our encoding of the request
// (otlp-encoding.ts) in place of the transformer's.
import { OTLPExporterBase } from "@opentelemetry/otlp-exporter-base";
import { convertLegacyHttpOptions, createOtlpHttpExportDelegate } from "@opentelemetry/otlp-exporter-base/node-http";
import { ProtobufTraceSerializer, TraceExporterMetricsHelper } from "@opentelemetry/otlp-transformer";
import type { ReadableSpan, SpanExporter } from "@opentelemetry/sdk-trace-base";
import { encodeTraceRequest } from "./otlp-encoding.js";

export function createOtlpTraceExporter(): SpanExporter {
  const serializer = {
    serializeRequest: (spans: ReadableSpan[]) => encodeTraceRequest(spans),
    deserializeResponse: (bytes: Uint8Array) => ProtobufTraceSerializer.deserializeResponse(bytes),
  };
  const options = convertLegacyHttpOptions({}, "TRACES", "v1/traces", { "Content-Type": "application/x-protobuf" });
  return new OTLPExporterBase(createOtlpHttpExportDelegate(options, serializer, "otlp_http_span_exporter", TraceExporterMetricsHelper, undefined));
}
