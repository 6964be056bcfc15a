// Method definitions for plain @grpc/grpc-js clients, serialised with the generated schemas, so
// tests prove a client that knows nothing of Connect works.
import { fromBinary, toBinary, type DescMessage } from "@bufbuild/protobuf";

export function grpcMethod<I extends DescMessage, O extends DescMessage>(path: string, input: I, output: O, stream = false) {
  return {
    path,
    requestStream: stream,
    responseStream: stream,
    requestSerialize: (m: unknown) => Buffer.from(toBinary(input, m as never)),
    requestDeserialize: (b: Buffer) => fromBinary(input, b),
    responseSerialize: (m: unknown) => Buffer.from(toBinary(output, m as never)),
    responseDeserialize: (b: Buffer) => fromBinary(output, b),
  };
}
