// Lease tokens: 12 random bytes, base64url. Drawn from a pool so the CSPRNG is called once per 256
// leases, not once per lease (the hot path grants thousands a second).
import { randomBytes } from "node:crypto";

const tokenBytes = 12;
let tokenPool = Buffer.alloc(0);
let tokenOffset = 0;

export function newLeaseToken(): string {
  if (tokenOffset + tokenBytes > tokenPool.length) {
    tokenPool = randomBytes(tokenBytes * 256);
    tokenOffset = 0;
  }
  const token = tokenPool.toString("base64url", tokenOffset, tokenOffset + tokenBytes);
  tokenOffset += tokenBytes;
  return token;
}

