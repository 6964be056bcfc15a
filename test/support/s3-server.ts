// A minimal S3-compatible server for tests: PutObject and ListObjectsV2 (path-style, prefix,
// start-after, max-keys), in memory, with AWS SigV4 verification written from the specification
// (independent of the aws4 package job-service signs with). No maintained S3 server for Node 20
// installs without a tree of old dependencies (s3rver's last release depends on koa 2 and busboy 0.3).
import { createHash, createHmac } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";

export interface TestS3Server {
  url: string;
  /** Requests refused for a bad signature. */
  refused: number;
  put(bucket: string, key: string, body: string | Buffer): void;
  close(): Promise<void>;
}

interface StoredObject {
  body: Buffer;
  etag: string;
  lastModified: Date;
}

const rfc3986 = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
const hmac = (key: Buffer | string, data: string) => createHmac("sha256", key).update(data).digest();
const sha256 = (data: Buffer | string) => createHash("sha256").update(data).digest("hex");

/** Checks a request's SigV4 Authorization header against the credentials; returns why not, or "". */
export function verifySigV4(req: { method: string; url: string; headers: http.IncomingHttpHeaders }, body: Buffer, credentials: Record<string, string>): string {
  const auth = req.headers.authorization ?? "";
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/s3\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(auth);
  if (!m) return "no SigV4 authorization";
  const [, keyId, day, region, signedHeaders, signature] = m as unknown as [string, string, string, string, string, string];
  const secret = credentials[keyId];
  if (secret === undefined) return "unknown access key";
  const amzDate = String(req.headers["x-amz-date"] ?? "");
  const payloadHash = String(req.headers["x-amz-content-sha256"] ?? sha256(body));
  if (payloadHash !== "UNSIGNED-PAYLOAD" && payloadHash !== sha256(body)) return "payload hash mismatch";
  const url = new URL(req.url, "http://x");
  const query = [...url.searchParams.entries()]
    .map(([k, v]) => [rfc3986(k), rfc3986(v)] as const)
    .sort(([a, av], [b, bv]) => (a < b ? -1 : a > b ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join("&");
  const names = signedHeaders.split(";");
  const headers = names.map((n) => `${n}:${String(req.headers[n] ?? "").trim().replace(/\s+/g, " ")}\n`).join("");
  const canonical = [req.method, url.pathname, query, headers, signedHeaders, payloadHash].join("\n");
  const scope = `${day}/${region}/s3/aws4_request`;
  const toSign = ["AWS4-HMAC-SHA256", amzDate, scope, sha256(canonical)].join("\n");
  const key = hmac(hmac(hmac(hmac(`AWS4${secret}`, day), region), "s3"), "aws4_request");
  return hmac(key, toSign).toString("hex") === signature ? "" : "signature mismatch";
}

const xml = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

export async function startTestS3Server(credentials: Record<string, string>): Promise<TestS3Server> {
  const buckets = new Map<string, Map<string, StoredObject>>();
  const put = (bucket: string, key: string, body: string | Buffer) => {
    const data = Buffer.isBuffer(body) ? body : Buffer.from(body);
    if (!buckets.has(bucket)) buckets.set(bucket, new Map());
    buckets.get(bucket)!.set(key, { body: data, etag: createHash("md5").update(data).digest("hex"), lastModified: new Date() });
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const why = verifySigV4({ method: req.method ?? "GET", url: req.url ?? "/", headers: req.headers }, body, credentials);
      if (why !== "") {
        self.refused += 1;
        res.writeHead(403, { "content-type": "application/xml" }).end(`<Error><Code>SignatureDoesNotMatch</Code><Message>${why}</Message></Error>`);
        return;
      }
      const url = new URL(req.url ?? "/", "http://x");
      const [bucket = "", ...rest] = url.pathname.slice(1).split("/");
      const key = decodeURIComponent(rest.join("/"));
      if (req.method === "PUT" && key !== "") {
        put(decodeURIComponent(bucket), key, body);
        res.writeHead(200, { etag: `"${buckets.get(decodeURIComponent(bucket))!.get(key)!.etag}"` }).end();
        return;
      }
      if (req.method === "GET" && key === "" && url.searchParams.get("list-type") === "2") {
        const prefix = url.searchParams.get("prefix") ?? "";
        const after = url.searchParams.get("start-after") ?? "";
        const max = Number(url.searchParams.get("max-keys") ?? 1000);
        const keys = [...(buckets.get(decodeURIComponent(bucket))?.entries() ?? [])]
          .filter(([k]) => k.startsWith(prefix) && k > after)
          .sort(([a], [b]) => (a < b ? -1 : 1));
        const page = keys.slice(0, max);
        const contents = page
          .map(([k, o]) => `<Contents><Key>${xml(k)}</Key><LastModified>${o.lastModified.toISOString()}</LastModified><ETag>&quot;${o.etag}&quot;</ETag><Size>${o.body.length}</Size></Contents>`)
          .join("");
        res.writeHead(200, { "content-type": "application/xml" }).end(
          `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>${xml(bucket)}</Name><Prefix>${xml(prefix)}</Prefix><KeyCount>${page.length}</KeyCount><IsTruncated>${keys.length > max}</IsTruncated>${contents}</ListBucketResult>`,
        );
        return;
      }
      res.writeHead(400).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const self: TestS3Server = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    refused: 0,
    put,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
  return self;
}
