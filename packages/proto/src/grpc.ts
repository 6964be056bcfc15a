// The standard gRPC health and reflection services, generated from the protos their npm
// packages ship. Reflection v1 and v1alpha share message names, hence the namespaces.
export * from "./gen/health/v1/health_pb.js";
export * as reflectionV1 from "./gen/grpc/reflection/v1/reflection_pb.js";
export * as reflectionV1alpha from "./gen/grpc/reflection/v1alpha/reflection_pb.js";
