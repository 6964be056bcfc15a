import { describe, expect, it } from "vitest";
import { UnrecoverableTaskError } from "../errors.js";
import { parseRunScriptInput } from "./run-script-input.js";
import { formatScriptFailure, parseScriptFailure, ScriptFailedError } from "./script-failure.js";

function refusal(input: unknown): string {
  try {
    parseRunScriptInput(input);
  } catch (err) {
    expect(err).toBeInstanceOf(UnrecoverableTaskError);
    return (err as Error).message;
  }
  throw new Error("the input was accepted");
}

describe("RunScript input", () => {
  it("runs a command string through /bin/sh -c", () => {
    const spec = parseRunScriptInput({ command: "echo a | tr a b" });
    expect(spec.argv).toEqual(["/bin/sh", "-c", "echo a | tr a b"]);
    expect(spec.shell).toBe(true);
    expect(spec.tailBytes).toBe(4096);
  });

  it("runs a command with args as argv, without a shell (the input shape of before)", () => {
    const spec = parseRunScriptInput({ command: "sh", args: ["-c", "echo hi"], cwd: "/tmp", env: { A: "1" }, timeoutMs: 5000 });
    expect(spec).toMatchObject({ argv: ["sh", "-c", "echo hi"], shell: false, cwd: "/tmp", env: { A: "1" }, timeoutMs: 5000 });
  });

  it("takes a command array as argv", () => {
    expect(parseRunScriptInput({ command: ["ls", "-la", "a b"] }).argv).toEqual(["ls", "-la", "a b"]);
  });

  it("refuses bad input naming the field", () => {
    expect(refusal(undefined)).toBe("corral/RunScript input: must be an object, not undefined");
    expect(refusal({})).toContain("input.command: must be a string");
    expect(refusal({ command: "" })).toContain("input.command: must not be empty");
    expect(refusal({ command: [] })).toContain("input.command: must name a program first");
    expect(refusal({ command: ["ls"], args: ["-l"] })).toContain("input.args: give the arguments in command or in args");
    expect(refusal({ command: "ls", args: ["ok", 3] })).toContain("input.args[1]: must be a string, not number");
    expect(refusal({ command: "ls", args: ["a\u0000b"] })).toContain("input.args[0]: must not contain a NUL");
    expect(refusal({ command: "ls", env: { "1X": "a" } })).toContain("input.env: \"1X\" is not an environment variable name");
    expect(refusal({ command: "ls", tailBytes: 0 })).toContain("input.tailBytes: must be a whole number from 1 to 65536");
    expect(refusal({ command: "ls", comand: "x" })).toContain("input.comand: unknown field");
    expect(refusal({ command: "ls", environment: { gti: {} } })).toContain("input.environment.gti: unknown field");
    expect(refusal({ command: "ls", environment: { git: { url: "https://h/r.git" } }, cwd: "/tmp" })).toContain(
      "input.cwd: not with an environment: use environment.git.workdir",
    );
    expect(
      refusal({ command: "ls", environment: { git: { url: "https://h/r.git" }, docker: { image: "alpine" } } }),
    ).toContain("input.environment: give git or docker, not both");
  });

  it("allows only https, ssh, git and file repositories, never an option", () => {
    for (const url of ["https://example.com/a.git", "ssh://git@example.com/a.git", "git://example.com/a.git", "file:///srv/a.git"]) {
      expect(parseRunScriptInput({ command: "ls", environment: { git: { url } } }).git!.url).toBe(url);
    }
    expect(refusal({ command: "ls", environment: { git: { url: "--upload-pack=touch /tmp/x" } } })).toContain(
      "input.environment.git.url: must not start with '-'",
    );
    expect(refusal({ command: "ls", environment: { git: { url: "ext::sh -c touch% /tmp/x" } } })).toContain("input.environment.git.url");
    expect(refusal({ command: "ls", environment: { git: { url: "http://example.com/a.git" } } })).toContain(
      'the scheme "http" is not allowed: use https, ssh, git or file',
    );
    expect(refusal({ command: "ls", environment: { git: { url: "git@example.com:a.git" } } })).toContain("input.environment.git.url");
    expect(refusal({ command: "ls", environment: { git: { url: "ssh://-oProxyCommand=x/a" } } })).toContain("must not start with '-'");
  });

  it("checks branch, ref and workdir", () => {
    const git = (g: Record<string, unknown>) => ({ command: "ls", environment: { git: { url: "file:///srv/a.git", ...g } } });
    expect(parseRunScriptInput(git({ branch: "feature/x", workdir: "./sub/dir/" })).git).toEqual({
      url: "file:///srv/a.git",
      ref: { kind: "branch", name: "feature/x" },
      workdir: "sub/dir",
    });
    expect(parseRunScriptInput(git({ ref: "v1.2" })).git!.ref).toEqual({ kind: "ref", name: "v1.2" });
    const sha = "0123456789abcdef0123456789abcdef01234567";
    expect(parseRunScriptInput(git({ ref: sha })).git!.ref).toEqual({ kind: "commit", sha });
    expect(parseRunScriptInput(git({})).git!.ref).toEqual({ kind: "head" });
    expect(refusal(git({ branch: "--orphan" }))).toContain("input.environment.git.branch: \"--orphan\" is not a valid git ref name");
    expect(refusal(git({ branch: "a..b" }))).toContain("input.environment.git.branch");
    expect(refusal(git({ branch: "main", ref: "v1" }))).toContain("input.environment.git.ref: give branch or ref, not both");
    expect(refusal(git({ workdir: "../outside" }))).toContain("input.environment.git.workdir: must stay inside the checkout");
    expect(refusal(git({ workdir: "/etc" }))).toContain("input.environment.git.workdir: must be a path relative to the checkout");
  });

  it("checks the docker environment", () => {
    const docker = (d: Record<string, unknown>) => ({ command: "ls", environment: { docker: { image: "alpine:3", ...d } } });
    expect(parseRunScriptInput(docker({ workdir: "/w", volumes: ["/data:/data:ro"], env: { A: "1" } })).docker).toEqual({
      image: "alpine:3",
      workdir: "/w",
      volumes: ["/data:/data:ro"],
      env: { A: "1" },
    });
    expect(refusal(docker({ image: "--privileged" }))).toContain("input.environment.docker.image");
    expect(refusal(docker({ workdir: "w" }))).toContain("input.environment.docker.workdir: must be an absolute path");
    expect(refusal(docker({ volumes: ["/data"] }))).toContain("input.environment.docker.volumes[0]");
    expect(refusal(docker({ env: { A: 1 } }))).toContain("input.environment.docker.env.A: must be a string");
  });
});

describe("RunScript failure text", () => {
  it("reads back the exit code and the tails it quotes, whatever they contain", () => {
    const output = { exitCode: 3, stdoutTail: "out\n--- stderr (3 chars) ---\nfake", stderrTail: "line 1\nline 2 ünï 🙂\n" };
    const text = formatScriptFailure("make test", output);
    expect(text.split("\n")[0]).toBe("corral/RunScript: exit code 3: make test");
    expect(parseScriptFailure(text)).toEqual(output);
    // As a task's error carries it (the runner records the error's stack, its name first).
    const err = new ScriptFailedError("make test", output);
    expect(err.stack).toBe(`ScriptFailedError: ${text}`);
    expect(parseScriptFailure(err.stack!)).toEqual(output);
    expect(parseScriptFailure("Error: something else")).toBeUndefined();
  });

  it("says a killed command's signal and bounds the tails it quotes", () => {
    const text = formatScriptFailure("sleep 100", { exitCode: null, signal: "SIGTERM", stdoutTail: "o".repeat(60_000), stderrTail: "e".repeat(60_000) });
    expect(text.length).toBeLessThan(12_000);
    const back = parseScriptFailure(text)!;
    expect(back.exitCode).toBeNull();
    expect(back.signal).toBe("SIGTERM");
    expect(back.stderrTail).toBe("e".repeat(8192));
    expect(back.stdoutTail).toBe("o".repeat(2048));
  });
});
