// Draws a task graph (tasks or summary groups as boxes coloured by state, parent and dependency
// edges) as SVG, Mermaid and DOT. Pure: no I/O, so it is tested directly.

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

export function stateLabel(state: number): string {
  return (stateStyle[state] ?? unknownStyle).name.toUpperCase();
}

const BOX_W = 200;
const BOX_H = 48;
const GAP_X = 30;
const GAP_Y = 50;
const MARGIN = 20;
const MAX_COLUMNS = 10;

export function renderGraph(nodes: GraphNode[], edges: GraphEdge[]): RenderedGraph {
  return { svg: renderSvg(nodes, edges), mermaid: renderMermaid(nodes, edges), dot: renderDot(nodes, edges) };
}

/** Rows by longest path from a root (nodes come in creation order, so predecessors come first). */
function layout(nodes: GraphNode[], edges: GraphEdge[]): Map<string, { x: number; y: number }> {
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
    row.forEach((id, i) =>
      pos.set(id, {
        x: MARGIN + (i % MAX_COLUMNS) * (BOX_W + GAP_X),
        y: MARGIN + (line + Math.floor(i / MAX_COLUMNS)) * (BOX_H + GAP_Y),
      }),
    );
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

function renderSvg(nodes: GraphNode[], edges: GraphEdge[]): string {
  const pos = layout(nodes, edges);
  let width = MARGIN * 2 + BOX_W;
  let height = MARGIN * 2 + BOX_H;
  for (const p of pos.values()) {
    width = Math.max(width, p.x + BOX_W + MARGIN);
    height = Math.max(height, p.y + BOX_H + MARGIN);
  }
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#374151"/></marker></defs>`,
  ];
  for (const e of edges) {
    const a = pos.get(e.from);
    const b = pos.get(e.to);
    if (!a || !b) continue;
    const x1 = a.x + BOX_W / 2;
    const y1 = a.y + BOX_H;
    const x2 = b.x + BOX_W / 2;
    const y2 = b.y;
    const style =
      e.kind === "parent" ? `stroke="#6b7280"` : `stroke="#2563eb" stroke-dasharray="5,4"`;
    parts.push(
      `<line class="edge ${e.kind}" x1="${x1}" y1="${y1}" x2="${x2}" y2="${y2}" ${style} marker-end="url(#arrow)"/>`,
    );
    if (e.label) parts.push(`<text x="${(x1 + x2) / 2 + 4}" y="${(y1 + y2) / 2}" fill="#374151">${xml(e.label)}</text>`);
  }
  for (const n of nodes) {
    const p = pos.get(n.id)!;
    const s = stateStyle[n.state] ?? unknownStyle;
    parts.push(
      `<g class="task ${s.name}" data-id="${xml(n.id)}"><title>${xml(`${n.label}\n${n.detail}`)}</title>` +
        `<rect x="${p.x}" y="${p.y}" width="${BOX_W}" height="${BOX_H}" rx="6" fill="${s.fill}" stroke="${s.stroke}"/>` +
        `<text x="${p.x + 8}" y="${p.y + 19}" font-weight="bold">${xml(clip(n.label))}</text>` +
        `<text x="${p.x + 8}" y="${p.y + 37}" fill="#374151">${xml(clip(n.detail, 32))}</text></g>`,
    );
  }
  parts.push("</svg>");
  return parts.join("\n");
}

function mermaidText(text: string): string {
  return clip(text, 60).replace(/"/g, "#quot;");
}

function renderMermaid(nodes: GraphNode[], edges: GraphEdge[]): string {
  const ids = new Map(nodes.map((n, i) => [n.id, `n${i}`]));
  const lines = ["flowchart TD"];
  for (const [state, s] of Object.entries(stateStyle)) {
    if (nodes.some((n) => n.state === Number(state))) lines.push(`  classDef ${s.name} fill:${s.fill},stroke:${s.stroke}`);
  }
  for (const n of nodes) {
    lines.push(`  ${ids.get(n.id)}["${mermaidText(n.label)}<br/>${mermaidText(n.detail)}"]:::${(stateStyle[n.state] ?? unknownStyle).name}`);
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

function renderDot(nodes: GraphNode[], edges: GraphEdge[]): string {
  const ids = new Map(nodes.map((n, i) => [n.id, `n${i}`]));
  const lines = ["digraph job {", '  node [shape=box, style="rounded,filled", fontname="sans-serif"];'];
  for (const n of nodes) {
    const s = stateStyle[n.state] ?? unknownStyle;
    lines.push(`  ${ids.get(n.id)} [label="${dotText(n.label)}\\n${dotText(n.detail)}", fillcolor="${s.fill}", color="${s.stroke}"];`);
  }
  for (const e of edges) {
    const a = ids.get(e.from);
    const b = ids.get(e.to);
    if (!a || !b) continue;
    const attrs = [e.kind === "dependency" ? 'style=dashed, color="#2563eb"' : "", e.label ? `label="${dotText(e.label)}"` : ""]
      .filter((x) => x !== "")
      .join(", ");
    lines.push(attrs ? `  ${a} -> ${b} [${attrs}];` : `  ${a} -> ${b};`);
  }
  lines.push("}");
  return lines.join("\n");
}
