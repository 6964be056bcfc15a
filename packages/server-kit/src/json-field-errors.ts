// Names the field a JSON request broke when protobuf-es refused it: its errors name a message type
// or an enum ("cannot decode enum corral.jobs.v1.JobState from JSON"), not where in the request the
// bad key or enum name sits. Only run on a request already refused, so it may be slow.
import { ScalarType, type DescEnum, type DescField, type DescMessage } from "@bufbuild/protobuf";

/** `path: problem` for the first unknown field or unknown enum name in `json`, or undefined. */
export function locateJsonError(schema: DescMessage, json: unknown): string | undefined {
  return inMessage(schema, json, "");
}

function inMessage(desc: DescMessage, json: unknown, at: string): string | undefined {
  // Well-known types have their own JSON forms (a Timestamp is a string); protobuf-es names those.
  if (desc.typeName.startsWith("google.protobuf.")) return undefined;
  if (typeof json !== "object" || json === null || Array.isArray(json)) return undefined;
  for (const [key, value] of Object.entries(json)) {
    const field = desc.fields.find((f) => f.jsonName === key || f.name === key);
    const path = `${at}${at ? "." : ""}${field?.name ?? key}`;
    if (!field) return `${path}: unknown field of ${desc.typeName}`;
    const found = inField(field, value, path);
    if (found) return found;
  }
  return undefined;
}

function inField(f: DescField, json: unknown, path: string): string | undefined {
  if (json === null) return undefined;
  switch (f.fieldKind) {
    case "scalar":
      return undefined;
    case "enum":
      return inEnum(f.enum, json, path);
    case "message":
      return inMessage(f.message, json, path);
    case "list": {
      if (!Array.isArray(json)) return undefined;
      for (let i = 0; i < json.length; i++) {
        const p = `${path}[${i}]`;
        const found = f.listKind === "enum" ? inEnum(f.enum, json[i], p) : f.listKind === "message" ? inMessage(f.message, json[i], p) : undefined;
        if (found) return found;
      }
      return undefined;
    }
    case "map": {
      if (typeof json !== "object" || Array.isArray(json)) return undefined;
      for (const [k, v] of Object.entries(json as Record<string, unknown>)) {
        const p = `${path}[${f.mapKey === ScalarType.STRING ? JSON.stringify(k) : k}]`;
        const found = f.mapKind === "enum" ? inEnum(f.enum, v, p) : f.mapKind === "message" ? inMessage(f.message, v, p) : undefined;
        if (found) return found;
      }
      return undefined;
    }
  }
}

function inEnum(desc: DescEnum, json: unknown, path: string): string | undefined {
  if (typeof json !== "string" || desc.values.some((v) => v.name === json)) return undefined;
  return `${path}: unknown value ${JSON.stringify(json)} of enum ${desc.typeName}`;
}
