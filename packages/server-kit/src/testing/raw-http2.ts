// Raw HTTP/2 requests for tests that compare two servers' answers byte for byte (the fast paths
// against connect-node): one POST on its own session, the answer as plain values.
import http2 from "node:http2";

export interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  /** The body, base64. */
  body: string;
  trailers: Record<string, string>;
}

/** Headers that differ between two answers by nature (a clock, a random id); a request id shows as "(set)". */
export const volatileHeaders = new Set(["date", "x-request-id"]);

export function sendRawHttp2(url: string, path: string, headers: Record<string, string>, body: Uint8Array): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(url);
    session.on("error", reject);
    const req = session.request({ ":method": "POST", ":path": path, ...headers });
    const answer: RawAnswer = { status: 0, headers: {}, body: "", trailers: {} };
    const chunks: Buffer[] = [];
    req.on("response", (h) => {
      answer.status = Number(h[":status"]);
      for (const [k, v] of Object.entries(h)) if (!k.startsWith(":") && !volatileHeaders.has(k)) answer.headers[k] = String(v);
      if (h["x-request-id"] !== undefined) answer.headers["x-request-id"] = "(set)";
    });
    req.on("trailers", (t) => {
      for (const [k, v] of Object.entries(t)) answer.trailers[k] = String(v);
    });
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      answer.body = Buffer.concat(chunks).toString("base64");
      session.close();
      resolve(answer);
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** A gRPC or Connect envelope: flags, the length as four bytes, the message. */
export function envelope(bytes: Uint8Array, flags = 0): Buffer {
  const out = Buffer.alloc(5 + bytes.length);
  out[0] = flags;
  out.writeUInt32BE(bytes.length, 1);
  out.set(bytes, 5);
  return out;
}
