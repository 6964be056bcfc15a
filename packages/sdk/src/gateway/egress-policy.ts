// Which hosts a gateway may call (its operator's `--allow` list) and which addresses are never
// called unless the operator named them: loopback, private, link-local and other non-public
// ranges. Pure: the HTTP call resolves names and asks this module about every address it found,
// so a public name that resolves to 127.0.0.1 is refused like 127.0.0.1 itself.
import { BlockList, isIP } from "node:net";

/** One `--allow` entry: a host (`api.example.com`, `*.example.com`, `*`), an address or a CIDR, with an optional port. */
export type AllowEntry =
  | { kind: "host"; host: string; port?: number }
  | { kind: "suffix"; suffix: string; port?: number }
  | { kind: "any"; port?: number }
  | { kind: "address"; address: string; family: "ipv4" | "ipv6"; prefix: number; port?: number };

export class AllowListError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "AllowListError";
  }
}

/** A call the policy refuses: never retried (the same host is refused again). */
export class EgressRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "EgressRefusedError";
  }
}

const hostPattern = /^(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,62})?(\.[a-z0-9_]([a-z0-9_-]{0,62})?)*\.?$/;

function parsePort(text: string, entry: string): number {
  const port = Number(text);
  if (!/^\d{1,5}$/.test(text) || port < 1 || port > 65535) throw new AllowListError(`--allow ${entry}: ${JSON.stringify(text)} is not a port (1-65535)`);
  return port;
}

/** Parses one entry: `host`, `host:port`, `*.domain[:port]`, `*[:port]`, `1.2.3.4[:port]`, `[::1][:port]`, `10.0.0.0/8`. */
export function parseAllowEntry(text: string): AllowEntry {
  const entry = text.trim();
  if (entry === "") throw new AllowListError("--allow: an empty entry");
  let hostPart = entry;
  let port: number | undefined;
  if (entry.startsWith("[")) {
    const end = entry.indexOf("]");
    if (end < 0) throw new AllowListError(`--allow ${entry}: missing ]`);
    hostPart = entry.slice(1, end);
    const rest = entry.slice(end + 1);
    if (rest !== "") {
      if (!rest.startsWith(":")) throw new AllowListError(`--allow ${entry}: expected :port after ]`);
      port = parsePort(rest.slice(1), entry);
    }
  } else if (isIP(entry.split("/")[0]!) === 6) {
    hostPart = entry; // a bare IPv6 address or CIDR: no port (write [::1]:8080 for one)
  } else {
    const colon = entry.lastIndexOf(":");
    if (colon >= 0) {
      hostPart = entry.slice(0, colon);
      port = parsePort(entry.slice(colon + 1), entry);
    }
  }
  const withPort = <T extends object>(e: T): T & { port?: number } => (port === undefined ? e : { ...e, port });
  const [addr, prefixText, ...extra] = hostPart.split("/");
  const family = isIP(addr!);
  if (family !== 0) {
    const max = family === 4 ? 32 : 128;
    if (extra.length > 0) throw new AllowListError(`--allow ${entry}: not an address or CIDR`);
    const prefix = prefixText === undefined ? max : Number(prefixText);
    if (prefixText !== undefined && (!/^\d{1,3}$/.test(prefixText) || prefix > max)) throw new AllowListError(`--allow ${entry}: the prefix must be 0-${max}`);
    return withPort({ kind: "address" as const, address: addr!.toLowerCase(), family: family === 4 ? ("ipv4" as const) : ("ipv6" as const), prefix });
  }
  if (prefixText !== undefined) throw new AllowListError(`--allow ${entry}: ${JSON.stringify(addr)} is not an address`);
  const host = hostPart.toLowerCase();
  if (host === "*") return withPort({ kind: "any" as const });
  if (host.startsWith("*.")) {
    const suffix = host.slice(1);
    if (!hostPattern.test(suffix.slice(1))) throw new AllowListError(`--allow ${entry}: not a host name`);
    return withPort({ kind: "suffix" as const, suffix });
  }
  if (!hostPattern.test(host)) throw new AllowListError(`--allow ${entry}: not a host name, address or CIDR`);
  return withPort({ kind: "host" as const, host: host.replace(/\.$/, "") });
}

/** Ranges no gateway calls unless an address entry covers them, by what they are. */
const restricted: [string, BlockList][] = (() => {
  const ranges: Record<string, [string, number, "ipv4" | "ipv6"][]> = {
    loopback: [
      ["127.0.0.0", 8, "ipv4"],
      ["::1", 128, "ipv6"],
    ],
    private: [
      ["10.0.0.0", 8, "ipv4"],
      ["172.16.0.0", 12, "ipv4"],
      ["192.168.0.0", 16, "ipv4"],
      ["100.64.0.0", 10, "ipv4"], // carrier-grade NAT
      ["fc00::", 7, "ipv6"], // unique local
    ],
    "link-local": [
      ["169.254.0.0", 16, "ipv4"], // cloud metadata endpoints live here
      ["fe80::", 10, "ipv6"],
    ],
    "non-public": [
      ["0.0.0.0", 8, "ipv4"],
      ["192.0.0.0", 24, "ipv4"],
      ["192.0.2.0", 24, "ipv4"],
      ["198.18.0.0", 15, "ipv4"],
      ["198.51.100.0", 24, "ipv4"],
      ["203.0.113.0", 24, "ipv4"],
      ["224.0.0.0", 4, "ipv4"],
      ["240.0.0.0", 4, "ipv4"],
      ["::", 128, "ipv6"],
      ["64:ff9b::", 96, "ipv6"], // NAT64: an IPv4 address in disguise
      ["2002::", 16, "ipv6"], // 6to4: likewise
      ["ff00::", 8, "ipv6"],
    ],
  };
  return Object.entries(ranges).map(([what, list]) => {
    const b = new BlockList();
    for (const [net, prefix, type] of list) b.addSubnet(net, prefix, type);
    return [what, b] as [string, BlockList];
  });
})();

function familyOf(address: string): "ipv4" | "ipv6" {
  return isIP(address) === 6 ? "ipv6" : "ipv4";
}

/** What kind of non-public address this is (loopback, private, link-local, non-public), or undefined for a public one. */
export function restrictedKind(address: string): string | undefined {
  const type = familyOf(address);
  for (const [what, list] of restricted) if (list.check(address, type)) return what;
  return undefined;
}

export interface EgressPolicy {
  readonly entries: readonly AllowEntry[];
  /** Throws EgressRefusedError unless the URL's host and port are on the allow list. */
  checkHost(hostname: string, port: number): void;
  /** Throws EgressRefusedError when `address` (what `hostname` resolved to) is non-public and no address entry allows it. */
  checkAddress(hostname: string, port: number, address: string): void;
}

/** The policy of an `--allow` list; an empty list allows nothing. */
export function createEgressPolicy(allow: readonly (string | AllowEntry)[]): EgressPolicy {
  const entries = allow.map((e) => (typeof e === "string" ? parseAllowEntry(e) : e));
  const addressLists = entries
    .filter((e): e is Extract<AllowEntry, { kind: "address" }> => e.kind === "address")
    .map((e) => {
      const b = new BlockList();
      b.addSubnet(e.address, e.prefix, e.family);
      return { list: b, port: e.port };
    });
  const portOk = (e: { port?: number }, port: number) => e.port === undefined || e.port === port;
  const addressAllowed = (address: string, port: number) => addressLists.some((a) => portOk(a, port) && a.list.check(address, familyOf(address)));
  const allowHint = "(the gateway's --allow list)";
  return {
    entries,
    checkHost(hostname, port) {
      const host = hostname.toLowerCase().replace(/^\[|\]$/g, "").replace(/\.$/, "");
      const literal = isIP(host) !== 0;
      const ok = entries.some((e) => {
        if (!portOk(e, port)) return false;
        switch (e.kind) {
          case "any":
            return true;
          case "host":
            return !literal && e.host === host;
          case "suffix":
            return !literal && host.endsWith(e.suffix);
          case "address":
            return literal && addressAllowed(host, port);
        }
      });
      if (!ok) throw new EgressRefusedError(`the gateway may not call ${hostname}:${port}: it is not on the allow list ${allowHint}`);
    },
    checkAddress(hostname, port, address) {
      const kind = restrictedKind(address);
      if (kind === undefined || addressAllowed(address, port)) return;
      const shown = familyOf(address) === "ipv6" ? `[${address}]` : address;
      throw new EgressRefusedError(
        `the gateway may not call ${hostname}:${port}: it resolves to ${address}, a ${kind} address, which is refused unless allowed by address (--allow ${shown}:${port})`,
      );
    },
  };
}
