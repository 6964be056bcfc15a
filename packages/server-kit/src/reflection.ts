// gRPC server reflection, v1 and v1alpha, built from the descriptors of the mounted services so
// grpcurl and `buf curl` work without proto files.
import { create, toBinary, type DescFile, type DescService } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import { reflectionV1, reflectionV1alpha } from "@corral/proto/grpc";

type V1 = typeof reflectionV1;

function collectFiles(services: DescService[]): Map<string, DescFile> {
  const files = new Map<string, DescFile>();
  const visit = (f: DescFile) => {
    if (files.has(f.proto.name)) return;
    files.set(f.proto.name, f);
    for (const d of f.dependencies) visit(d);
  };
  for (const s of services) visit(s.file);
  return files;
}

function symbolsOf(file: DescFile): string[] {
  const out: string[] = [];
  for (const s of file.services) {
    out.push(s.typeName);
    for (const m of s.methods) out.push(`${s.typeName}.${m.name}`);
  }
  const visitMessage = (m: DescFile["messages"][number]) => {
    out.push(m.typeName);
    for (const n of m.nestedMessages) visitMessage(n);
    for (const e of m.nestedEnums) out.push(e.typeName);
    for (const x of m.nestedExtensions) out.push(x.typeName);
  };
  for (const m of file.messages) visitMessage(m);
  for (const e of file.enums) out.push(e.typeName);
  for (const x of file.extensions) out.push(x.typeName);
  return out;
}

/** Builds the reflection implementation for one of the two versions (their messages are the same). */
function createImpl(ns: V1, services: DescService[]) {
  const files = collectFiles(services);
  const bySymbol = new Map<string, DescFile>();
  for (const f of files.values()) for (const s of symbolsOf(f)) bySymbol.set(s, f);
  const encoded = new Map<string, Uint8Array>();
  const encode = (f: DescFile) => {
    let bytes = encoded.get(f.proto.name);
    if (!bytes) {
      bytes = toBinary(FileDescriptorProtoSchema, f.proto);
      encoded.set(f.proto.name, bytes);
    }
    return bytes;
  };
  const withDeps = (f: DescFile) => {
    const out: DescFile[] = [];
    const seen = new Set<string>();
    const visit = (x: DescFile) => {
      if (seen.has(x.proto.name)) return;
      seen.add(x.proto.name);
      out.push(x);
      for (const d of x.dependencies) visit(d);
    };
    visit(f);
    return out.map(encode);
  };
  const serviceNames = services.map((s) => s.typeName);

  const answer = (req: reflectionV1.ServerReflectionRequest): reflectionV1.ServerReflectionResponse["messageResponse"] => {
    const notFound = (what: string) => ({
      case: "errorResponse" as const,
      value: create(ns.ErrorResponseSchema, { errorCode: 5, errorMessage: `${what} not found` }),
    });
    const r = req.messageRequest;
    switch (r.case) {
      case "listServices":
        return {
          case: "listServicesResponse",
          value: create(ns.ListServiceResponseSchema, {
            service: serviceNames.map((name) => create(ns.ServiceResponseSchema, { name })),
          }),
        };
      case "fileByFilename": {
        const f = files.get(r.value);
        return f
          ? { case: "fileDescriptorResponse", value: create(ns.FileDescriptorResponseSchema, { fileDescriptorProto: withDeps(f) }) }
          : notFound(`file ${r.value}`);
      }
      case "fileContainingSymbol": {
        const f = bySymbol.get(r.value.replace(/^\./, ""));
        return f
          ? { case: "fileDescriptorResponse", value: create(ns.FileDescriptorResponseSchema, { fileDescriptorProto: withDeps(f) }) }
          : notFound(`symbol ${r.value}`);
      }
      case "fileContainingExtension":
        return notFound(`extension ${r.value.extensionNumber} of ${r.value.containingType}`);
      case "allExtensionNumbersOfType":
        return {
          case: "allExtensionNumbersResponse",
          value: create(ns.ExtensionNumberResponseSchema, { baseTypeName: r.value, extensionNumber: [] }),
        };
      default:
        return {
          case: "errorResponse",
          value: create(ns.ErrorResponseSchema, { errorCode: 3, errorMessage: "empty reflection request" }),
        };
    }
  };

  return {
    async *serverReflectionInfo(requests: AsyncIterable<reflectionV1.ServerReflectionRequest>) {
      for await (const req of requests) {
        yield create(ns.ServerReflectionResponseSchema, {
          validHost: req.host,
          originalRequest: req,
          messageResponse: answer(req),
        });
      }
    },
  };
}

export interface ReflectionMounts {
  v1: { service: DescService; impl: Partial<ServiceImpl<typeof reflectionV1.ServerReflection>> };
  v1alpha: { service: DescService; impl: Partial<ServiceImpl<typeof reflectionV1alpha.ServerReflection>> };
}

/** `services` are the mounted services; health and reflection are added here. */
export function createReflection(services: DescService[]): ReflectionMounts {
  const all = [...services, reflectionV1.ServerReflection, reflectionV1alpha.ServerReflection];
  return {
    v1: { service: reflectionV1.ServerReflection, impl: createImpl(reflectionV1, all) as never },
    v1alpha: { service: reflectionV1alpha.ServerReflection, impl: createImpl(reflectionV1alpha as unknown as V1, all) as never },
  };
}
