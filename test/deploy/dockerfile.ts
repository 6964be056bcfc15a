// Reads a Dockerfile into stages of instructions, and decides what a .dockerignore file excludes
// from the build context: enough of both formats to check deploy/Dockerfile without a Docker engine.

export interface Instruction {
  op: string;
  /** The arguments as written (continuations joined). */
  args: string;
  /** Flags such as `--from=loader`, `--chmod=0755`. */
  flags: Record<string, string>;
  /** The words after the flags; a JSON array when written as one. */
  words: string[];
}

export interface Stage {
  name: string | undefined;
  base: string;
  instructions: Instruction[];
}

export interface Dockerfile {
  /** ARGs before the first FROM, with their defaults. */
  globalArgs: Record<string, string>;
  stages: Stage[];
}

function splitWords(text: string): string[] {
  const t = text.trim();
  if (t.startsWith("[")) return JSON.parse(t) as string[];
  return t.split(/\s+/).filter((w) => w !== "");
}

export function parseDockerfile(text: string): Dockerfile {
  const lines: string[] = [];
  let current = "";
  for (const raw of text.split("\n")) {
    if (/^\s*#/.test(raw) && current === "") continue;
    if (/^\s*#/.test(raw)) continue; // a comment inside a continuation
    if (raw.endsWith("\\")) {
      current += raw.slice(0, -1) + " ";
      continue;
    }
    current += raw;
    if (current.trim() !== "") lines.push(current.trim());
    current = "";
  }
  const df: Dockerfile = { globalArgs: {}, stages: [] };
  for (const line of lines) {
    const m = /^(\w+)\s+([\s\S]*)$/.exec(line);
    if (!m) throw new Error(`cannot read Dockerfile line: ${line}`);
    const op = m[1]!.toUpperCase();
    let rest = m[2]!;
    const flags: Record<string, string> = {};
    while (op !== "RUN" && op !== "HEALTHCHECK" && /^--[\w-]+(=\S*)?\s/.test(rest)) {
      const f = /^--([\w-]+)(?:=(\S*))?\s+/.exec(rest)!;
      flags[f[1]!] = f[2] ?? "true";
      rest = rest.slice(f[0].length);
    }
    const ins: Instruction = { op, args: rest, flags, words: op === "RUN" ? [] : splitWords(rest) };
    if (op === "ARG" && df.stages.length === 0) {
      const [name, value] = rest.split("=", 2);
      df.globalArgs[name!.trim()] = (value ?? "").trim();
      continue;
    }
    if (op === "FROM") {
      const base = ins.words[0]!.replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a: string, b: string) => df.globalArgs[a ?? b] ?? "");
      const as = ins.words.findIndex((w) => w.toUpperCase() === "AS");
      df.stages.push({ name: as >= 0 ? ins.words[as + 1] : undefined, base, instructions: [] });
      continue;
    }
    const stage = df.stages[df.stages.length - 1];
    if (!stage) throw new Error(`${op} before FROM`);
    stage.instructions.push(ins);
  }
  return df;
}

export function stage(df: Dockerfile, name: string): Stage {
  const s = df.stages.find((x) => x.name === name);
  if (!s) throw new Error(`no stage ${name}`);
  return s;
}

function patternRegex(pattern: string): RegExp {
  let re = "";
  const p = pattern.replace(/^\/+/, "").replace(/\/+$/, "");
  for (let i = 0; i < p.length; i++) {
    const c = p[i]!;
    if (c === "*" && p[i + 1] === "*") {
      i++;
      if (p[i + 1] === "/") {
        re += "(?:.*/)?";
        i++;
      } else re += ".*";
    } else if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else re += c.replace(/[.+^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

/**
 * Whether `.dockerignore` rules exclude `path` (relative to the context). As Docker does: the last
 * matching rule wins, `!` re-includes, and a rule matching a parent folder matches what is inside.
 */
export function dockerIgnored(rules: string, path: string): boolean {
  const parsed = rules
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"))
    .map((l) => ({ negate: l.startsWith("!"), re: patternRegex(l.replace(/^!/, "")) }));
  const parts = path.split("/");
  const prefixes = parts.map((_, i) => parts.slice(0, i + 1).join("/"));
  let ignored = false;
  for (const rule of parsed) {
    if (prefixes.some((p) => rule.re.test(p))) ignored = !rule.negate;
  }
  return ignored;
}
