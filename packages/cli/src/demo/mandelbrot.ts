// The demo workflow: a map-reduce that renders the Mandelbrot set. `demo/Render` (on the default
// cluster) fans out one `demo/Tile` per band of rows on a second cluster, and a `demo/Assemble`
// task that depends on every tile and runs back on the first cluster, where it writes the picture.
import { mkdir, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { Task, type ExecutionContext } from "@corral/sdk";

export const DEMO_TILES_CLUSTER = "demo-tiles";

export interface RenderInput {
  width: number;
  height: number;
  tiles: number;
  maxIterations: number;
  /** Slug of the cluster the tiles run on. */
  tilesCluster: string;
  /** Folder the picture is written to; empty: the runner's demo folder (see setDemoOutputDir). */
  outDir: string;
}

export interface TileInput {
  index: number;
  width: number;
  height: number;
  rowStart: number;
  rowEnd: number;
  maxIterations: number;
}

export interface AssembleInput {
  tiles: number;
  outDir: string;
}

const palette = " .:-=+*#%@";

let demoOutputDir: string | undefined;

/**
 * Where Assemble writes when its input names no folder: `corral dev` sets its data dir's `demo/`,
 * so the picture lands beside the runner that made it, not where the job was submitted from.
 * Default: `.corral/demo` under the runner's working directory.
 */
export function setDemoOutputDir(dir: string): void {
  demoOutputDir = dir;
}

function tileKey(jobId: string, index: number): string {
  return `demo/tile/${jobId}/${index}`;
}

export class Render extends Task<RenderInput> {
  static override identifier = { name: "demo/Render", version: "v1.0" };

  override execute(ctx: ExecutionContext): void {
    const { width, height, tiles, maxIterations, tilesCluster, outDir } = this.input;
    const rowsPerTile = Math.ceil(height / tiles);
    const handles = [];
    for (let i = 0; i < tiles; i++) {
      const rowStart = i * rowsPerTile;
      const rowEnd = Math.min(height, rowStart + rowsPerTile);
      if (rowStart >= rowEnd) break;
      handles.push(
        ctx.submitSubtask(new Tile({ index: i, width, height, rowStart, rowEnd, maxIterations }), {
          cluster: tilesCluster,
          maxRetries: 2,
        }),
      );
    }
    ctx.progress("tiles").add(handles.length);
    ctx.submitSubtask(new Assemble({ tiles: handles.length, outDir }), { dependsOn: handles });
    ctx.setDisplay(`Render ${width}x${height} in ${handles.length} tiles`);
  }
}

export class Tile extends Task<TileInput> {
  static override identifier = { name: "demo/Tile", version: "v1.0" };

  override async execute(ctx: ExecutionContext): Promise<void> {
    const { index, width, height, rowStart, rowEnd, maxIterations } = this.input;
    const rows: string[] = [];
    for (let y = rowStart; y < rowEnd; y++) {
      if (ctx.signal.aborted) throw new Error("canceled");
      let line = "";
      for (let x = 0; x < width; x++) {
        const cr = -2.2 + (3.2 * x) / width;
        const ci = -1.2 + (2.4 * y) / height;
        let zr = 0;
        let zi = 0;
        let n = 0;
        while (n < maxIterations && zr * zr + zi * zi < 4) {
          const t = zr * zr - zi * zi + cr;
          zi = 2 * zr * zi + ci;
          zr = t;
          n++;
        }
        line += n === maxIterations ? "@" : palette[Math.floor((n / maxIterations) * (palette.length - 1))];
      }
      rows.push(line);
    }
    await ctx.cache.put(tileKey(ctx.job.id, index), rows.join("\n"));
    ctx.progress("tiles").done(1);
    ctx.setDisplay(`rows ${rowStart}-${rowEnd - 1} (tile ${index})`);
  }
}

export class Assemble extends Task<AssembleInput> {
  static override identifier = { name: "demo/Assemble", version: "v1.0" };

  override async execute(ctx: ExecutionContext): Promise<void> {
    const { tiles } = this.input;
    const outDir = this.input.outDir || (demoOutputDir ?? resolve(".corral/demo"));
    const parts: string[] = [];
    for (let i = 0; i < tiles; i++) {
      const text = await ctx.cache.getText(tileKey(ctx.job.id, i));
      // The tiles ran elsewhere; without a shared cache backend their rows are not here.
      if (text === undefined) throw new Error(`tile ${i} is not in the job cache: runners need a shared cache`);
      parts.push(text);
    }
    await mkdir(outDir, { recursive: true });
    const file = join(outDir, `mandelbrot-${ctx.job.id}.txt`);
    await writeFile(file, parts.join("\n") + "\n");
    ctx.setDisplay(`wrote ${file}`);
    ctx.logger.info({ file }, "picture written");
  }
}

export const demoTasks = [Render, Tile, Assemble];
