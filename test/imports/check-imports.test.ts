// scripts/check-imports.mjs (run by `npm run check`): the real tree passes, and each rule, planted
// as a violation in a small fixture tree of workspaces, fails naming the file, the import and the rule.
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { checkImports, formatViolation, importsOf } from "../../scripts/check-imports.mjs";

const repo = join(dirname(fileURLToPath(import.meta.url)), "../..");
const script = join(repo, "scripts/check-imports.mjs");

const workspaces: Record<string, { name: string; dependencies?: Record<string, string>; devDependencies?: Record<string, string> }> = {
  "packages/proto": { name: "@corral/proto", dependencies: { "@bufbuild/protobuf": "2.16.0" } },
  "packages/wire": { name: "@corral/wire", dependencies: { "@corral/proto": "0.1.0" }, devDependencies: { "@corral/server-kit": "0.1.0" } },
  "packages/sdk": { name: "@corral/sdk", dependencies: { "@corral/proto": "0.1.0", "@corral/wire": "0.1.0" } },
  "packages/server-kit": { name: "@corral/server-kit", dependencies: { "@corral/wire": "0.1.0", pino: "10.4.0" }, devDependencies: { vitest: "4.1.12" } },
  "packages/cli": { name: "@corral/cli", dependencies: { "@corral/sdk": "0.1.0", "@corral/job-service": "0.1.0" } },
  "services/job-service": { name: "@corral/job-service", dependencies: { "@corral/server-kit": "0.1.0", "@corral/task-broker": "0.1.0" } },
  "services/task-broker": { name: "@corral/task-broker", dependencies: { "@corral/server-kit": "0.1.0" } },
};

let roots: string[] = [];
afterEach(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
  roots = [];
});

/** A fixture tree whose every file follows the rules, plus `files` (path → text). */
function fixture(files: Record<string, string> = {}): string {
  const root = mkdtempSync(join(tmpdir(), "corral-imports-"));
  roots.push(root);
  const write = (path: string, text: string) => {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  };
  write("package.json", JSON.stringify({ name: "fixture", private: true, workspaces: ["packages/*", "services/*"] }));
  for (const [dir, pkg] of Object.entries(workspaces)) {
    write(`${dir}/package.json`, JSON.stringify({ version: "0.1.0", ...pkg }));
    write(`${dir}/src/index.ts`, "export {};\n");
  }
  write("packages/proto/src/gen/corral/v1/a_pb.ts", "export const A = 1;\n");
  write("packages/proto/src/index.ts", 'export * from "./gen/corral/v1/a_pb.js";\nimport "@bufbuild/protobuf";\n');
  write("packages/wire/src/index.ts", 'import { A } from "@corral/proto";\nimport "node:http2";\nimport "events";\nexport { A };\n');
  write("packages/sdk/src/client.ts", 'import { A } from "@corral/proto";\nimport type { X } from "@corral/wire";\nexport { A, type X };\n');
  write("packages/server-kit/src/log.ts", 'import pino from "pino";\nexport const log = pino;\n');
  write("packages/server-kit/src/log.test.ts", 'import { it } from "vitest";\nimport "./log.js";\nit("", () => {});\n');
  write("packages/wire/src/index.test.ts", 'import { mount } from "@corral/server-kit";\nexport { mount };\n');
  write("packages/cli/src/dev.ts", 'import "@corral/job-service";\nimport "@corral/sdk";\n');
  write("services/task-broker/src/broker.ts", 'import { log } from "@corral/server-kit";\nexport { log };\n');
  for (const [path, text] of Object.entries(files)) write(path, text);
  return root;
}

describe("check-imports", () => {
  it("passes the real tree", () => {
    expect(checkImports(repo).map(formatViolation)).toEqual([]);
    expect(execFileSync("node", [script], { encoding: "utf8" })).toContain("every import follows the workspace rules");
  });

  it("passes a fixture that follows every rule", () => {
    expect(checkImports(fixture())).toEqual([]);
  });

  it("reads imports, re-exports, type imports, side-effect imports and dynamic import()", () => {
    const text = [
      'import a from "a";',
      'import type { B } from "b";',
      'export { c } from "c";',
      'export * from "d";',
      'import "e";',
      'const f = await import("f");',
      '// import "not-me";',
      'const s = "import x from \'not-me-either\'";',
    ].join("\n");
    expect(importsOf(text).sort()).toEqual(["a", "b", "c", "d", "e", "f"]);
  });

  const planted: Array<[string, string, string, string, RegExp]> = [
    ["a service imports another service", "services/job-service/src/jobs.ts", 'import { x } from "@corral/task-broker";', "@corral/task-broker", /a service never imports another service/],
    [
      "a service reaches into another service by a relative path",
      "services/job-service/src/jobs.ts",
      'import { x } from "../../task-broker/src/broker.js";',
      "../../task-broker/src/broker.js",
      /a service never imports another service \(not even by a relative path\)/,
    ],
    ["a service imports the SDK", "services/task-broker/src/queue.ts", 'import { Client } from "@corral/sdk";', "@corral/sdk", /never the SDK or another service/],
    ["the SDK imports server-kit", "packages/sdk/src/jobs.ts", 'export { mount } from "@corral/server-kit";', "@corral/server-kit", /the SDK never imports a service or @corral\/server-kit/],
    ["the SDK imports a service", "packages/sdk/src/jobs.ts", 'const m = await import("@corral/job-service");', "@corral/job-service", /the SDK never imports a service/],
    ["server-kit imports the SDK", "packages/server-kit/src/client.ts", 'import type { Client } from "@corral/sdk";', "@corral/sdk", /server-kit never imports the SDK or a service/],
    ["the contracts import something of ours", "packages/proto/src/extra.ts", 'import { q } from "@corral/wire";', "@corral/wire", /@corral\/proto \(the contracts\) imports nothing of ours/],
    ["wire imports server-kit in production code", "packages/wire/src/h2.ts", 'import { log } from "@corral/server-kit";', "@corral/server-kit", /@corral\/wire imports only @corral\/proto/],
    [
      "a relative path into src/gen from outside the proto package",
      "packages/sdk/src/raw.ts",
      'import { A } from "../../proto/src/gen/corral/v1/a_pb.js";',
      "../../proto/src/gen/corral/v1/a_pb.js",
      /generated code is imported only through @corral\/proto's public entry/,
    ],
    ["a test reaches into src/gen", "test/e2e/raw.test.ts", 'import { A } from "../../packages/proto/src/gen/corral/v1/a_pb.js";', "../../packages/proto/src/gen/corral/v1/a_pb.js", /generated code is imported only through @corral\/proto's public entry/],
    ["an undeclared package", "packages/sdk/src/store.ts", 'import Redis from "ioredis";', "ioredis", /ioredis is not declared in packages\/sdk\/package.json \(dependencies\)/],
    ["production code imports a devDependency", "packages/server-kit/src/run.ts", 'import { it } from "vitest";', "vitest", /vitest is only a devDependency of packages\/server-kit\/package.json, but production code imports it/],
    ["an undeclared package in a test", "services/task-broker/src/broker.test.ts", 'import { it } from "vitest";', "vitest", /vitest is not declared in services\/task-broker\/package.json \(devDependencies, for a test\)/],
  ];

  it.each(planted)("fails when %s, naming the file, the import and the rule", (_what, file, line, specifier, rule) => {
    const violations = checkImports(fixture({ [file]: `${line}\nexport {};\n` }));
    expect(violations).toHaveLength(1);
    expect(violations[0]).toMatchObject({ file, specifier });
    expect(violations[0]!.rule).toMatch(rule);
  });

  it("exits 1 from the command line, one line per violation", () => {
    const root = fixture({ "services/job-service/src/jobs.ts": 'import { x } from "@corral/task-broker";\n' });
    let out = "";
    let status = 0;
    try {
      execFileSync("node", [script, root], { encoding: "utf8", stdio: "pipe" });
    } catch (err) {
      ({ status, stderr: out } = err as { status: number; stderr: string });
    }
    expect(status).toBe(1);
    expect(out).toContain(
      'services/job-service/src/jobs.ts: imports "@corral/task-broker": a service never imports another service: services meet over RPC',
    );
  });
});
