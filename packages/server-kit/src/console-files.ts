// Serves the web console (packages/console's built dist/) at / on the suite's port: its files from
// memory with their content types, hashed assets cached for good, index.html for the console's
// own routes (/jobs/<id>, /clusters/<slug>, ...), and a strict Content-Security-Policy. Only GET
// and HEAD; every other path (RPCs, /healthz, /metrics) is left to the caller.
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import type http from "node:http";
import type http2 from "node:http2";
import { extname, join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";

type Request = http.IncomingMessage | http2.Http2ServerRequest;
/** What is used of a Node HTTP/1.1 or HTTP/2 response (connect-node's fallback narrows `write`). */
interface Response {
  writeHead(statusCode: number, headers: Record<string, string>): unknown;
  end(): unknown;
  end(chunk: Buffer | string): unknown;
}

/** Where `npm install` builds the console in this repository (and in the image). */
export const defaultConsoleDir = fileURLToPath(new URL("../../console/dist", import.meta.url));

/**
 * Scripts and styles only from this origin (no inline script, no eval), calls only to this origin
 * (the console talks Connect to the port that served it), no framing, no plugins.
 */
export const consoleContentSecurityPolicy = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "worker-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

/** The console's client-side routes: each answers index.html, and the app draws the page. */
const clientRoutes = /^\/(?:$|(?:jobs|clusters|keys|hosts|releases|sign-in)(?:\/[^/]*)?$)/;

const contentTypes: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".woff2": "font/woff2",
  ".txt": "text/plain; charset=utf-8",
  ".wasm": "application/wasm",
};

interface StaticFile {
  body: Buffer;
  type: string;
  etag: string;
  cacheControl: string;
}

export interface ConsoleFiles {
  /** How many files are served (0: no console built). */
  readonly size: number;
  /** Answers the request (true) when it is the console's, or returns false without touching it. */
  handle(req: Request, res: Response): boolean;
}

function listFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? listFiles(path) : [path];
  });
}

/**
 * Loads the built console from `dir` once (it is small and immutable while the process runs).
 * A missing directory serves nothing: every request goes on to the caller.
 */
export function loadConsoleFiles(dir: string | undefined): ConsoleFiles {
  const files = new Map<string, StaticFile>();
  if (dir && existsSync(join(dir, "index.html"))) {
    for (const path of listFiles(dir)) {
      const url = "/" + relative(dir, path).split(sep).join("/");
      if (url.split("/").some((part) => part.startsWith("."))) continue; // .build-stamp and the like
      const body = readFileSync(path);
      const hashed = url.startsWith("/assets/");
      files.set(url, {
        body,
        type: contentTypes[extname(path)] ?? "application/octet-stream",
        etag: `"${createHash("sha256").update(body).digest("base64url").slice(0, 22)}"`,
        // Vite puts a content hash in every file name under assets/: a new build is a new name.
        cacheControl: hashed ? "public, max-age=31536000, immutable" : "no-cache",
      });
    }
  }
  const index = files.get("/index.html");

  return {
    size: files.size,
    handle(req, res) {
      if (!index) return false;
      const path = (req.url ?? "/").split("?")[0]!;
      const file = files.get(path) ?? (clientRoutes.test(path) ? index : undefined);
      if (!file) return false;
      if (req.method !== "GET" && req.method !== "HEAD") {
        res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain" });
        res.end("method not allowed\n");
        return true;
      }
      const headers: Record<string, string> = {
        "content-type": file.type,
        "cache-control": file.cacheControl,
        etag: file.etag,
        "x-content-type-options": "nosniff",
        "referrer-policy": "no-referrer",
        // On every file, not only index.html: a worker script runs under its own response's policy.
        "content-security-policy": consoleContentSecurityPolicy,
        "x-frame-options": "DENY",
      };
      if (req.headers["if-none-match"] === file.etag) {
        res.writeHead(304, headers);
        res.end();
        return true;
      }
      headers["content-length"] = String(file.body.length);
      res.writeHead(200, headers);
      if (req.method === "HEAD") res.end();
      else res.end(file.body);
      return true;
    },
  };
}
