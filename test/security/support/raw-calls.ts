// Requests with hand-made bytes: Connect unary calls whose body is any bytes (malformed protobuf,
// invalid UTF-8, oversized), and a raw gRPC stream on which a test writes any frames.
import http2 from "node:http2";

/** Connect unary call with `body` as the binary request; resolves the Connect code ("ok" on success). */
export function connectUnaryRaw(baseUrl: string, path: string, body: Uint8Array, apiKey: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(baseUrl);
    session.on("error", reject);
    const req = session.request({
      ":method": "POST",
      ":path": path,
      "content-type": "application/proto",
      "connect-protocol-version": "1",
      authorization: `Bearer ${apiKey}`,
    });
    let status = 0;
    const chunks: Buffer[] = [];
    req.on("response", (h) => (status = Number(h[":status"])));
    req.on("data", (d: Buffer) => chunks.push(d));
    req.on("error", (err) => {
      session.close();
      reject(err);
    });
    req.on("end", () => {
      session.close();
      if (status === 200) return resolve("ok");
      const text = Buffer.concat(chunks).toString("utf8");
      try {
        resolve(String((JSON.parse(text) as { code?: string }).code ?? `http ${status}`));
      } catch {
        resolve(`http ${status}`);
      }
    });
    req.end(Buffer.from(body));
  });
}

export function grpcFrame(bytes: Uint8Array): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt8(0, 0);
  head.writeUInt32BE(bytes.length, 1);
  return Buffer.concat([head, Buffer.from(bytes)]);
}

export interface RawGrpcStream {
  write(frame: Buffer): void;
  /** Response messages received so far. */
  received(): number;
  /** Half-closes the request. */
  end(): void;
  /** Resolves with grpc-status and the response messages once the server ends the stream. */
  done: Promise<{ status: number; messages: Buffer[] }>;
  close(): void;
}

export function grpcStreamRaw(baseUrl: string, path: string, apiKey: string): RawGrpcStream {
  const session = http2.connect(baseUrl);
  session.on("error", () => {});
  const req = session.request({
    ":method": "POST",
    ":path": path,
    "content-type": "application/grpc",
    te: "trailers",
    authorization: `Bearer ${apiKey}`,
  });
  let buffer = Buffer.alloc(0);
  const messages: Buffer[] = [];
  let status = -1;
  req.on("response", (h) => {
    if (h["grpc-status"] !== undefined) status = Number(h["grpc-status"]);
  });
  req.on("trailers", (t) => (status = Number(t["grpc-status"])));
  req.on("data", (d: Buffer) => {
    buffer = Buffer.concat([buffer, d]);
    while (buffer.length >= 5) {
      const len = buffer.readUInt32BE(1);
      if (buffer.length < 5 + len) break;
      messages.push(buffer.subarray(5, 5 + len));
      buffer = buffer.subarray(5 + len);
    }
  });
  const done = new Promise<{ status: number; messages: Buffer[] }>((resolve) => {
    // The server's side ending is enough: a test's own side may still be open.
    const finish = () => {
      session.close();
      resolve({ status, messages });
    };
    req.on("end", finish);
    req.on("close", finish);
  });
  req.on("error", () => {});
  return {
    write: (frame) => req.write(frame),
    end: () => req.end(),
    received: () => messages.length,
    done,
    close: () => {
      req.close();
      session.close();
    },
  };
}
