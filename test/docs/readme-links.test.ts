// The documents hold together: every relative link in README.md and docs/*.md reaches an existing
// file (and heading), the README stays a five-minute read, and its example is the type-checked
// examples/quickstart.ts, with identifiers and clusters of its own that run on a `corral dev` stack.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { builtinTasks, taskIdentifier } from "@corral/sdk";

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "../..");
const readmePath = join(repoRoot, "README.md");
const docsDir = join(repoRoot, "docs");
const documents = [readmePath, ...readdirSync(docsDir).filter((n) => n.endsWith(".md")).map((n) => join(docsDir, n))];

/** The README is read in five minutes: at most 12 KB. */
const README_MAX_BYTES = 12 * 1024;

const fencedBlock = /^```[^\n]*\n[\s\S]*?^```$/gm;

/** Markdown without fenced blocks and inline code, where a `[text](target)` is not a link. */
function prose(markdown: string): string {
  return markdown.replace(fencedBlock, "").replace(/`[^`\n]*`/g, "");
}

/** The targets of the inline links `[text](target)` of a document. */
function linkTargets(markdown: string): string[] {
  return [...prose(markdown).matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)].map((m) => m[1]!);
}

/** The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens. */
function headingAnchor(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, "")
    .replace(/\s/g, "-");
}

function anchorsOf(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const m of markdown.replace(fencedBlock, "").matchAll(/^#{1,6}\s+(.+)$/gm)) {
    const base = headingAnchor(m[1]!);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  return anchors;
}

const isExternal = (target: string) => /^[a-z][a-z0-9+.-]*:/i.test(target);

/** What is wrong with one relative link of `document`, or undefined when it reaches its target. */
function brokenLink(document: string, target: string): string | undefined {
  const [path = "", anchor] = target.split("#", 2);
  const file = path === "" ? document : resolve(dirname(document), decodeURIComponent(path));
  if (!existsSync(file)) return `${target}: no such file`;
  if (anchor === undefined || statSync(file).isDirectory() || !file.endsWith(".md")) return undefined;
  if (!anchorsOf(readFileSync(file, "utf8")).has(anchor)) return `${target}: no heading #${anchor} in ${relative(repoRoot, file)}`;
  return undefined;
}

describe("headingAnchor", () => {
  it("makes GitHub's anchors", () => {
    expect(headingAnchor("Scaling out")).toBe("scaling-out");
    expect(headingAnchor("`corral dev` (what `npm start` runs)")).toBe("corral-dev-what-npm-start-runs");
    expect(headingAnchor("1. One process: `npm start`")).toBe("1-one-process-npm-start");
    expect(headingAnchor("The runner stream, as a runner sees it")).toBe("the-runner-stream-as-a-runner-sees-it");
  });
});

describe("links", () => {
  it("finds the links of every document", () => {
    // Guard against a check that passes because it found nothing to check.
    expect(documents.length).toBeGreaterThan(1);
    expect(linkTargets(readFileSync(readmePath, "utf8")).filter((t) => !isExternal(t)).length).toBeGreaterThan(0);
    expect(linkTargets("see [a](b.md) and `[c](d.md)`\n```\n[e](f.md)\n```\n")).toEqual(["b.md"]);
  });

  for (const document of documents) {
    it(`every relative link in ${relative(repoRoot, document)} reaches an existing file and heading`, () => {
      const targets = linkTargets(readFileSync(document, "utf8")).filter((t) => !isExternal(t));
      const broken = targets.map((t) => brokenLink(document, t)).filter((b) => b !== undefined);
      expect(broken).toEqual([]);
    });
  }

  it("every document under docs/ is linked from the README", () => {
    const linked = new Set(
      linkTargets(readFileSync(readmePath, "utf8"))
        .filter((t) => !isExternal(t))
        .map((t) => resolve(repoRoot, t.split("#")[0]!)),
    );
    const unlinked = documents.filter((d) => d !== readmePath && !linked.has(d)).map((d) => relative(repoRoot, d));
    expect(unlinked).toEqual([]);
  });
});

describe("README.md", () => {
  const readme = readFileSync(readmePath, "utf8");

  it(`is at most ${README_MAX_BYTES} bytes`, () => {
    expect(Buffer.byteLength(readme, "utf8")).toBeLessThanOrEqual(README_MAX_BYTES);
  });

  it("has only code blocks one can run: shell commands or TypeScript", () => {
    const languages = [...readme.matchAll(/^```([^\n]*)\n[\s\S]*?^```$/gm)].map((m) => m[1]);
    expect(languages.length).toBeGreaterThan(0);
    expect(languages.filter((l) => l !== "sh" && l !== "ts")).toEqual([]);
  });

  it("shows examples/quickstart.ts as its TypeScript example, so the type check covers what it shows", () => {
    const blocks = [...readme.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m) => m[1]);
    expect(blocks).toEqual([readFileSync(join(repoRoot, "examples/quickstart.ts"), "utf8")]);
  });

  it("uses task identifiers that corral dev's sample runners do not serve", () => {
    const example = readFileSync(join(repoRoot, "examples/quickstart.ts"), "utf8");
    const demo = readFileSync(join(repoRoot, "packages/cli/src/demo/mandelbrot.ts"), "utf8");
    const identifierNames = (source: string) => [...source.matchAll(/identifier = \{ name: "([^"]+)"/g)].map((m) => m[1]!);
    const served = new Set([...identifierNames(demo), ...builtinTasks.map((t) => taskIdentifier(t).name)]);
    const own = identifierNames(example);
    expect(own.length).toBeGreaterThan(0);
    expect(served.size).toBeGreaterThan(builtinTasks.length);
    expect(own.filter((name) => served.has(name))).toEqual([]);
  });

  it("names no cluster slug in its code that a fresh stack would not have", () => {
    // A generated slug is the slugified name, '-', and 14 random base62 characters: it exists only
    // on the stack that made it.
    const code = [...readme.matchAll(fencedBlock)].map((m) => m[0]).join("\n");
    expect(code.match(/\b[a-z0-9-]+-[A-Za-z0-9]{14}\b/g) ?? []).toEqual([]);
  });
});
