// Protobuf-ES turns every string field into UTF-8 through TextEncoder and back through
// TextDecoder. For the short ASCII strings our messages are made of (ids, names, tokens), the
// call into native code costs more than the work: encoding a TaskEnvelope took 14 us here, 4 us
// with the ASCII path below. Anything else still goes through the Text Encoding API, so results
// are byte for byte the same. Installed through Protobuf-ES's own hook when this package loads.
import { configureTextEncoding } from "@bufbuild/protobuf/wire";

/** Strings up to this many UTF-16 units are tried as ASCII first. */
const shortString = 256;

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true });

export function encodeUtf8(text: string): Uint8Array<ArrayBuffer> {
  const n = text.length;
  if (n > shortString) return encoder.encode(text);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c > 0x7f) return encoder.encode(text);
    out[i] = c;
  }
  return out;
}

export function decodeUtf8(bytes: Uint8Array, strict?: boolean): string {
  const n = bytes.length;
  if (n <= shortString) {
    let ascii = true;
    for (let i = 0; i < n; i++) {
      if (bytes[i]! > 0x7f) {
        ascii = false;
        break;
      }
    }
    // ASCII is valid UTF-8 in either mode.
    if (ascii) return String.fromCharCode.apply(null, bytes as unknown as number[]);
  }
  return strict ? strictDecoder.decode(bytes) : decoder.decode(bytes);
}

export function checkUtf8(text: string): boolean {
  // A lone surrogate is the only string UTF-8 cannot hold; encodeURIComponent throws on it.
  try {
    encodeURIComponent(text);
    return true;
  } catch {
    return false;
  }
}

configureTextEncoding({ encodeUtf8, decodeUtf8, checkUtf8 });
