// Draws a task graph (tasks or summary groups as boxes coloured by state, parent and dependency
// edges) as SVG, Mermaid and DOT, flowing down or to the right, in a light or dark palette, with
// an optional title. Pure: no I/O, so it is tested directly.

export interface GraphNode {
  id: string;
  label: string;
  detail: string;
  /** Proto TaskState number. */
  state: number;
}

export interface GraphEdge {
  from: string;
  to: string;
  kind: "parent" | "dependency";
  label?: string;
}

export interface RenderOptions {
  /** "down" (default): levels are rows; "right": levels are columns. */
  direction?: "down" | "right";
  /** Palette for a light (default) or dark background. */
  theme?: "light" | "dark";
  /** Drawn above the graph (the job's name). */
  title?: string;
}

interface Palette {
  states: Record<number, { name: string; fill: string; stroke: string }>;
  unknown: { name: string; fill: string; stroke: string };
  /** Background (none for light: transparent), text, secondary text, parent and dependency edges. */
  background?: string;
  text: string;
  muted: string;
  parentEdge: string;
  dependencyEdge: string;
}

export interface RenderedGraph {
  svg: string;
  mermaid: string;
  dot: string;
}

const stateStyle: Record<number, { name: string; fill: string; stroke: string }> = {
  1: { name: "queued", fill: "#e5e7eb", stroke: "#6b7280" },
  2: { name: "running", fill: "#bfdbfe", stroke: "#2563eb" },
  3: { name: "computed", fill: "#bbf7d0", stroke: "#16a34a" },
  4: { name: "failed", fill: "#fecaca", stroke: "#dc2626" },
  5: { name: "skipped", fill: "#f5f5f4", stroke: "#a8a29e" },
  6: { name: "failed_optional", fill: "#fed7aa", stroke: "#ea580c" },
  7: { name: "canceled", fill: "#e9d5ff", stroke: "#7c3aed" },
};
const unknownStyle = { name: "unspecified", fill: "#ffffff", stroke: "#000000" };

const light: Palette = {
  states: stateStyle,
  unknown: unknownStyle,
  text: "#111827",
  muted: "#374151",
  parentEdge: "#6b7280",
  dependencyEdge: "#2563eb",
};

const dark: Palette = {
  states: {
    1: { name: "queued", fill: "#374151", stroke: "#9ca3af" },
    2: { name: "running", fill: "#1e3a8a", stroke: "#60a5fa" },
    3: { name: "computed", fill: "#14532d", stroke: "#4ade80" },
    4: { name: "failed", fill: "#7f1d1d", stroke: "#f87171" },
    5: { name: "skipped", fill: "#292524", stroke: "#a8a29e" },
    6: { name: "failed_optional", fill: "#7c2d12", stroke: "#fb923c" },
    7: { name: "canceled", fill: "#4c1d95", stroke: "#a78bfa" },
  },
  unknown: { name: "unspecified", fill: "#111827", stroke: "#f9fafb" },
  background: "#111827",
  text: "#f9fafb",
  muted: "#d1d5db",
  parentEdge: "#9ca3af",
  dependencyEdge: "#60a5fa",
};

export function stateLabel(state: number): string {
  return (stateStyle[state] ?? unknownStyle).name.toUpperCase();
}

const BOX_W = 200;
const BOX_H = 48;
const GAP_X = 30;
const GAP_Y = 50;
const MARGIN = 20;
const MAX_COLUMNS = 10;

export function renderGraph(nodes: GraphNode[], edges: GraphEdge[], options: RenderOptions = {}): RenderedGraph {
  const o = { direction: options.direction ?? "down", palette: options.theme === "dark" ? dark : light, title: options.title ?? "" };
  return { svg: renderSvg(nodes, edges, o), mermaid: renderMermaid(nodes, edges, o), dot: renderDot(nodes, edges, o) };
}

interface Resolved {
  direction: "down" | "right";
  palette: Palette;
  title: string;
}

/** Height of the title line in SVG. */
const TITLE_H = 28;

/** Rows by longest path from a root (nodes come in creation order, so predecessors come first). */
function layout(nodes: GraphNode[], edges: GraphEdge[], direction: "down" | "right", top: number): Map<string, { x: number; y: number }> {
  const preds = new Map<string, string[]>();
  for (const e of edges) preds.set(e.to, [...(preds.get(e.to) ?? []), e.from]);
  const level = new Map<string, number>();
  const levelOf = (id: string, seen: Set<string>): number => {
    const known = level.get(id);
    if (known !== undefined) return known;
    if (seen.has(id)) return 0; // summary graphs may have cycles between groups
    seen.add(id);
    let l = 0;
    for (const p of preds.get(id) ?? []) if (p !== id) l = Math.max(l, levelOf(p, seen) + 1);
    level.set(id, l);
    return l;
  };
  const rows: string[][] = [];
  for (const n of nodes) {
    const l = levelOf(n.id, new Set());
    (rows[l] ??= []).push(n.id);
  }
  // Wide levels wrap onto several lines, so a fan-out of hundreds stays readable.
  const pos = new Map<string, { x: number; y: number }>();
  let line = 0;
  for (const row of rows) {
    if (!row) continue;
    row.forEach((id, i) => {
      const across = i % MAX_COLUMNS;
      const along = line + Math.floor(i / MAX_COLUMNS);
      pos.set(
        id,
        direction === "down"
          ? { x: MARGIN + across * (BOX_W + GAP_X), y: top + along * (BOX_H + GAP_Y) }
          : { x: MARGIN + along * (BOX_W + GAP_Y), y: top + across * (BOX_H + GAP_X) },
      );
    });
    line += Math.ceil(row.length / MAX_COLUMNS);
  }
  return pos;
}

function xml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

function clip(text: string, max = 28): string {
  const line = text.split("\n")[0] ?? "";
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

function renderSvg(nodes: GraphNode[], edges: GraphEdge[], o: Resolved): string {
  const top = MARGIN + (o.title ? TITLE_H : 0);
  const pos = layout(nodes, edges, o.direction, top);
  const p = o.palette;
  let width = MARGIN * 2 + BOX_W;
  let height = top + BOX_H + MARGIN;
  for (const q of pos.values()) {
    width = Math.max(width, q.x + BOX_W + MARGIN);
    height = Math.max(height, q.y + BOX_H + MARGIN);
  }
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="${p.muted}"/></marker></defs>`,
  ];
  if (p.background) parts.push(`<rect class="background" width="100%" height="100%" fill="${p.background}"/>`);
  if (o.title) parts.push(`<text class="title" x="${MARGIN}" y="${MARGIN + 16}" font-size="16" font-weight="bold" fill="${p.text}">${xml(clip(o.title, 120))}</text>`);
  for (const e of edges) {
    const a = pos.get(e.from);
    const b = pos.get(e.to);
    if (!a || !b) continue;
    const [x1, y1, x2, y2] =
      o.direction === "down"
        ? [a.x + BOX_W / 2, a.y + BOX_H, b.x + BOX_W / 2, b.y]
        : [a.x + BOX_W, a.y + BOX_H / 2, b.x, b.y + BOX_H / 2];
    const style = e.kind === "parent" ? `stroke="${p.parentEdge}"` : `stroke="${p.dependencyEdge}" stroke-dasharray="5,4"`;
    parts.push(`<line class="edge ${e.kind}" x1="${x1}" y1="${y1}" x2="${x2}" y2="${y2}" ${style} marker-end="url(#arrow)"/>`);
    if (e.label) parts.push(`<text x="${(x1 + x2) / 2 + 4}" y="${(y1 + y2) / 2}" fill="${p.muted}">${xml(e.label)}</text>`);
  }
  for (const n of nodes) {
    const q = pos.get(n.id)!;
    const s = p.states[n.state] ?? p.unknown;
    parts.push(
      `<g class="task ${s.name}" data-id="${xml(n.id)}"><title>${xml(`${n.label}\n${n.detail}`)}</title>` +
        `<rect x="${q.x}" y="${q.y}" width="${BOX_W}" height="${BOX_H}" rx="6" fill="${s.fill}" stroke="${s.stroke}"/>` +
        `<text x="${q.x + 8}" y="${q.y + 19}" font-weight="bold" fill="${p.text}">${xml(clip(n.label))}</text>` +
        `<text x="${q.x + 8}" y="${q.y + 37}" fill="${p.muted}">${xml(clip(n.detail, 32))}</text></g>`,
    );
  }
  parts.push("</svg>");
  return parts.join("\n");
}

function mermaidText(text: string): string {
  return clip(text, 60).replace(/"/g, "#quot;");
}

function renderMermaid(nodes: GraphNode[], edges: GraphEdge[], o: Resolved): string {
  const ids = new Map(nodes.map((n, i) => [n.id, `n${i}`]));
  const lines: string[] = [];
  // Front matter: the title and, for the dark palette, Mermaid's dark theme for text and edges.
  if (o.title || o.palette === dark) {
    lines.push("---");
    if (o.title) lines.push(`title: "${mermaidText(o.title)}"`);
    if (o.palette === dark) lines.push("config:", "  theme: dark");
    lines.push("---");
  }
  lines.push(o.direction === "down" ? "flowchart TD" : "flowchart LR");
  for (const [state, s] of Object.entries(o.palette.states)) {
    if (nodes.some((n) => n.state === Number(state))) lines.push(`  classDef ${s.name} fill:${s.fill},stroke:${s.stroke}`);
  }
  for (const n of nodes) {
    lines.push(`  ${ids.get(n.id)}["${mermaidText(n.label)}<br/>${mermaidText(n.detail)}"]:::${(o.palette.states[n.state] ?? o.palette.unknown).name}`);
  }
  for (const e of edges) {
    const a = ids.get(e.from);
    const b = ids.get(e.to);
    if (!a || !b) continue;
    const arrow = e.kind === "parent" ? "-->" : "-.->";
    lines.push(e.label ? `  ${a} ${arrow}|${mermaidText(e.label)}| ${b}` : `  ${a} ${arrow} ${b}`);
  }
  return lines.join("\n");
}

function dotText(text: string): string {
  return clip(text, 60).replace(/\\/g, "\\\\").replace(/"/g, '\\"');
}

function renderDot(nodes: GraphNode[], edges: GraphEdge[], o: Resolved): string {
  const ids = new Map(nodes.map((n, i) => [n.id, `n${i}`]));
  const p = o.palette;
  const lines = ["digraph job {"];
  if (o.direction === "right") lines.push("  rankdir=LR;");
  if (o.title) lines.push(`  label="${dotText(o.title)}";`, "  labelloc=t;", `  fontname="sans-serif";`);
  if (p.background) lines.push(`  bgcolor="${p.background}";`, `  fontcolor="${p.text}";`);
  lines.push(`  node [shape=box, style="rounded,filled", fontname="sans-serif", fontcolor="${p.text}"];`, `  edge [color="${p.parentEdge}"];`);
  for (const n of nodes) {
    const s = p.states[n.state] ?? p.unknown;
    lines.push(`  ${ids.get(n.id)} [label="${dotText(n.label)}\\n${dotText(n.detail)}", fillcolor="${s.fill}", color="${s.stroke}"];`);
  }
  for (const e of edges) {
    const a = ids.get(e.from);
    const b = ids.get(e.to);
    if (!a || !b) continue;
    const attrs = [e.kind === "dependency" ? `style=dashed, color="${p.dependencyEdge}"` : "", e.label ? `label="${dotText(e.label)}"` : ""]
      .filter((x) => x !== "")
      .join(", ");
    lines.push(attrs ? `  ${a} -> ${b} [${attrs}];` : `  ${a} -> ${b};`);
  }
  lines.push("}");
  return lines.join("\n");
}
