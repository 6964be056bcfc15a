// The three services as separate processes: health, reflection and authentication answer to a
// plain @grpc/grpc-js client, and a Connect JSON call over HTTP/2 works.
import http2 from "node:http2";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { GetClusterRequestSchema, GetClusterResponseSchema, SubmitJobRequestSchema, SubmitJobResponseSchema } from "@corral/proto";
import {
  HealthCheckRequestSchema,
  HealthCheckResponseSchema,
  HealthCheckResponse_ServingStatus,
  reflectionV1,
} from "@corral/proto/grpc";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { grpcMethod } from "../support/grpc-js.js";
import { startSuite, type Suite } from "../support/suite.js";

function unary<T>(client: grpc.Client, name: string, req: unknown, metadata = new grpc.Metadata()): Promise<T> {
  return new Promise((resolve, reject) =>
    (client as any)[name](req, metadata, (err: grpc.ServiceError | null, res: T) => (err ? reject(err) : resolve(res))),
  );
}

const Clients = grpc.makeGenericClientConstructor(
  {
    check: grpcMethod("/grpc.health.v1.Health/Check", HealthCheckRequestSchema, HealthCheckResponseSchema),
    getCluster: grpcMethod("/corral.registry.v1.ClusterService/GetCluster", GetClusterRequestSchema, GetClusterResponseSchema),
    submitJob: grpcMethod("/corral.jobs.v1.JobService/SubmitJob", SubmitJobRequestSchema, SubmitJobResponseSchema),
    reflect: grpcMethod(
      "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
      reflectionV1.ServerReflectionRequestSchema,
      reflectionV1.ServerReflectionResponseSchema,
      true,
    ),
  },
  "Corral",
);

describe("services as separate processes", () => {
  let suite: Suite;
  beforeAll(async () => {
    suite = await startSuite({ label: "boot" });
  });
  afterAll(async () => {
    await suite?.stop();
  });

  const services = () => [
    { proc: suite.registry, names: ["corral.registry.v1.ClusterService", "corral.registry.v1.ApiKeyService", "corral.registry.v1.NodeService"] },
    { proc: suite.jobs, names: ["corral.jobs.v1.JobService", "corral.jobs.v1.TaskLedgerService"] },
    { proc: suite.broker, names: ["corral.broker.v1.TaskBrokerService", "corral.broker.v1.DispatchService"] },
  ];

  it("reports SERVING for each service name over @grpc/grpc-js", async () => {
    for (const { proc, names } of services()) {
      const client = new Clients(`127.0.0.1:${proc.port}`, grpc.credentials.createInsecure());
      try {
        for (const service of ["", ...names]) {
          const res = await unary<{ status: number }>(client, "check", create(HealthCheckRequestSchema, { service }));
          expect(res.status, `${proc.name} ${service}`).toBe(HealthCheckResponse_ServingStatus.SERVING);
        }
      } finally {
        client.close();
      }
    }
  });

  it("lists the services through reflection", async () => {
    for (const { proc, names } of services()) {
      const client = new Clients(`127.0.0.1:${proc.port}`, grpc.credentials.createInsecure());
      try {
        const call = (client as any).reflect() as grpc.ClientDuplexStream<unknown, reflectionV1.ServerReflectionResponse>;
        const answer = new Promise<reflectionV1.ServerReflectionResponse>((resolve, reject) => {
          call.once("data", resolve);
          call.once("error", reject);
        });
        call.write(create(reflectionV1.ServerReflectionRequestSchema, { messageRequest: { case: "listServices", value: "" } }));
        const res = await answer;
        call.end();
        const listed = res.messageResponse.case === "listServicesResponse" ? res.messageResponse.value.service.map((s) => s.name) : [];
        expect(listed).toEqual(expect.arrayContaining([...names, "grpc.health.v1.Health"]));
      } finally {
        client.close();
      }
    }
  });

  it("answers UNAUTHENTICATED without an API key and accepts the bootstrapped one", async () => {
    const client = new Clients(`127.0.0.1:${suite.registry.port}`, grpc.credentials.createInsecure());
    const jobs = new Clients(`127.0.0.1:${suite.jobs.port}`, grpc.credentials.createInsecure());
    try {
      await expect(unary(client, "getCluster", create(GetClusterRequestSchema, {}))).rejects.toMatchObject({
        code: grpc.status.UNAUTHENTICATED,
      });
      await expect(unary(jobs, "submitJob", create(SubmitJobRequestSchema, {}))).rejects.toMatchObject({
        code: grpc.status.UNAUTHENTICATED,
      });
      const md = new grpc.Metadata();
      md.set("authorization", `Bearer ${suite.apiKey}`);
      const res = await unary<{ cluster?: { isDefault: boolean } }>(client, "getCluster", create(GetClusterRequestSchema, {}), md);
      expect(res.cluster?.isDefault).toBe(true);
    } finally {
      client.close();
      jobs.close();
    }
  });

  it("answers INVALID_ARGUMENT naming a task version that breaks the pattern", async () => {
    const jobs = new Clients(`127.0.0.1:${suite.jobs.port}`, grpc.credentials.createInsecure());
    try {
      const md = new grpc.Metadata();
      md.set("authorization", `Bearer ${suite.apiKey}`);
      const req = create(SubmitJobRequestSchema, {
        name: "bad-version",
        tasks: [{ identifier: { name: "Tile", version: "1.0" } }],
      });
      const err = (await unary(jobs, "submitJob", req, md).catch((e: unknown) => e)) as grpc.ServiceError;
      expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(err.details).toContain("tasks[0].identifier.version");
    } finally {
      jobs.close();
    }
  });

  it("answers a Connect JSON call over HTTP/2", async () => {
    const session = http2.connect(suite.registry.url);
    try {
      const body = await new Promise<string>((resolve, reject) => {
        const req = session.request({
          ":method": "POST",
          ":path": "/corral.registry.v1.ClusterService/GetCluster",
          "content-type": "application/json",
          authorization: `Bearer ${suite.apiKey}`,
        });
        let data = "";
        req.setEncoding("utf8");
        req.on("data", (d: string) => (data += d));
        req.on("end", () => resolve(data));
        req.on("error", reject);
        req.end("{}");
      });
      expect(JSON.parse(body).cluster.isDefault).toBe(true);
    } finally {
      session.close();
    }
  });
});
