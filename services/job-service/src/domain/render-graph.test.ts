// Drawing options of a task graph (VisualizeJob's direction, theme and title), on a parent with a
// child and a dependency.
import { describe, expect, it } from "vitest";
import { renderGraph, type GraphEdge, type GraphNode } from "./render-graph.js";

const nodes: GraphNode[] = [
  { id: "a", label: "root", detail: "my/Root v1.0 · COMPUTED", state: 3 },
  { id: "b", label: "leaf", detail: "my/Leaf v1.0 · RUNNING", state: 2 },
  { id: "c", label: "after", detail: "my/Leaf v1.0 · QUEUED", state: 1 },
];
const edges: GraphEdge[] = [
  { from: "a", to: "b", kind: "parent" },
  { from: "b", to: "c", kind: "dependency" },
];

/** The SVG's edge lines as [x1, y1, x2, y2]. */
const lines = (svg: string) =>
  [...svg.matchAll(/<line class="edge [a-z]+" x1="([\d.]+)" y1="([\d.]+)" x2="([\d.]+)" y2="([\d.]+)"/g)].map((m) => m.slice(1, 5).map(Number));

describe("renderGraph options", () => {
  it("flows down by default and to the right when asked, in every format", () => {
    const down = renderGraph(nodes, edges);
    expect(down.mermaid.split("\n")[0]).toBe("flowchart TD");
    expect(down.dot).not.toContain("rankdir");
    for (const [x1, y1, x2, y2] of lines(down.svg)) {
      expect(x1).toBe(x2);
      expect(y2).toBeGreaterThan(y1!);
    }
    const right = renderGraph(nodes, edges, { direction: "right" });
    expect(right.mermaid.split("\n")[0]).toBe("flowchart LR");
    expect(right.dot).toContain("rankdir=LR;");
    for (const [x1, y1, x2, y2] of lines(right.svg)) {
      expect(y1).toBe(y2);
      expect(x2).toBeGreaterThan(x1!);
    }
  });

  it("draws on a dark background with the dark palette when the theme is dark", () => {
    const lightGraph = renderGraph(nodes, edges);
    expect(lightGraph.svg).not.toContain('class="background"');
    expect(lightGraph.svg).toContain('fill="#bbf7d0"');
    const darkGraph = renderGraph(nodes, edges, { theme: "dark" });
    expect(darkGraph.svg).toContain('<rect class="background" width="100%" height="100%" fill="#111827"/>');
    expect(darkGraph.svg).toContain('fill="#14532d"');
    expect(darkGraph.svg).not.toContain('fill="#bbf7d0"');
    expect(darkGraph.mermaid).toContain("theme: dark");
    expect(darkGraph.mermaid).toContain("classDef computed fill:#14532d");
    expect(darkGraph.dot).toContain('bgcolor="#111827";');
  });

  it("puts the job's name above the graph when given a title, and nothing otherwise", () => {
    const titled = renderGraph(nodes, edges, { title: 'nightly "tiles"' });
    expect(titled.svg).toContain('<text class="title"');
    expect(titled.svg).toContain("nightly &quot;tiles&quot;");
    expect(titled.mermaid.split("\n").slice(0, 3)).toEqual(["---", 'title: "nightly #quot;tiles#quot;"', "---"]);
    expect(titled.dot).toContain('label="nightly \\"tiles\\"";');
    const plain = renderGraph(nodes, edges);
    expect(plain.svg).not.toContain('class="title"');
    expect(plain.mermaid.startsWith("flowchart")).toBe(true);
  });
});
