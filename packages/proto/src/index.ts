// The public entry of the contracts; import generated code only through this file.
export * from "./gen/corral/broker/v1/dispatch_pb.js";
export * from "./gen/corral/broker/v1/work_pb.js";
export * from "./gen/corral/common/v1/common_pb.js";
export * from "./gen/corral/jobs/v1/automation_pb.js";
export * from "./gen/corral/jobs/v1/job_pb.js";
export * from "./gen/corral/jobs/v1/ledger_pb.js";
export * from "./gen/corral/registry/v1/api_key_pb.js";
export * from "./gen/corral/registry/v1/cluster_pb.js";
export * from "./gen/corral/registry/v1/configuration_pb.js";
export * from "./gen/corral/registry/v1/hardware_pb.js";
export * from "./gen/corral/registry/v1/host_pb.js";
export * from "./gen/corral/registry/v1/location_pb.js";
export * from "./gen/corral/registry/v1/node_pb.js";
export * from "./gen/corral/registry/v1/release_pb.js";
export * from "./gen/corral/registry/v1/route_pb.js";
export * from "./gen/corral/registry/v1/runtime_pb.js";
export * from "./limits.js";
