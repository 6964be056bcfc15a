import { describe, expect, it } from "vitest";
import { AllowListError, createEgressPolicy, EgressRefusedError, parseAllowEntry, restrictedKind } from "./egress-policy.js";

function refusal(f: () => void): string {
  try {
    f();
  } catch (err) {
    if (err instanceof EgressRefusedError) return err.message;
    throw err;
  }
  return "allowed";
}

describe("allow entries", () => {
  it("parse hosts, wildcards, addresses, CIDRs and ports", () => {
    expect(parseAllowEntry("API.example.com")).toEqual({ kind: "host", host: "api.example.com" });
    expect(parseAllowEntry("api.example.com:8443")).toEqual({ kind: "host", host: "api.example.com", port: 8443 });
    expect(parseAllowEntry("*.example.com")).toEqual({ kind: "suffix", suffix: ".example.com" });
    expect(parseAllowEntry("*")).toEqual({ kind: "any" });
    expect(parseAllowEntry("127.0.0.1:8080")).toEqual({ kind: "address", address: "127.0.0.1", family: "ipv4", prefix: 32, port: 8080 });
    expect(parseAllowEntry("10.0.0.0/8")).toEqual({ kind: "address", address: "10.0.0.0", family: "ipv4", prefix: 8 });
    expect(parseAllowEntry("[::1]:9000")).toEqual({ kind: "address", address: "::1", family: "ipv6", prefix: 128, port: 9000 });
    expect(parseAllowEntry("fd00::/8")).toEqual({ kind: "address", address: "fd00::", family: "ipv6", prefix: 8 });
  });

  it("refuse what is not one, saying which entry", () => {
    for (const bad of ["", "host:0", "host:70000", "host:x", "10.0.0.0/33", "a b", "http://x", "[::1", "example.com/8"]) {
      expect(() => parseAllowEntry(bad), bad).toThrow(AllowListError);
    }
  });
});

describe("restricted addresses", () => {
  it("names loopback, private, link-local and other non-public ranges, IPv4-mapped ones too", () => {
    expect(restrictedKind("127.0.0.1")).toBe("loopback");
    expect(restrictedKind("::1")).toBe("loopback");
    expect(restrictedKind("::ffff:127.0.0.1")).toBe("loopback");
    expect(restrictedKind("10.1.2.3")).toBe("private");
    expect(restrictedKind("172.20.0.1")).toBe("private");
    expect(restrictedKind("192.168.1.1")).toBe("private");
    expect(restrictedKind("fd12::1")).toBe("private");
    expect(restrictedKind("169.254.169.254")).toBe("link-local");
    expect(restrictedKind("fe80::1")).toBe("link-local");
    expect(restrictedKind("0.0.0.0")).toBe("non-public");
    expect(restrictedKind("::")).toBe("non-public");
    expect(restrictedKind("93.184.216.34")).toBeUndefined();
    expect(restrictedKind("2606:2800:220:1::1")).toBeUndefined();
  });
});

describe("egress policy", () => {
  it("allows nothing with an empty list", () => {
    expect(refusal(() => createEgressPolicy([]).checkHost("api.example.com", 443))).toMatch(/api\.example\.com:443: it is not on the allow list/);
  });

  it("matches hosts exactly, by suffix or any, with the port when the entry names one", () => {
    const p = createEgressPolicy(["api.example.com", "*.svc.example.org", "pinned.example.net:8443"]);
    expect(refusal(() => p.checkHost("API.example.com", 443))).toBe("allowed");
    expect(refusal(() => p.checkHost("a.svc.example.org", 80))).toBe("allowed");
    expect(refusal(() => p.checkHost("svc.example.org", 80))).toMatch(/not on the allow list/);
    expect(refusal(() => p.checkHost("api.example.com.evil.io", 443))).toMatch(/not on the allow list/);
    expect(refusal(() => p.checkHost("pinned.example.net", 8443))).toBe("allowed");
    expect(refusal(() => p.checkHost("pinned.example.net", 443))).toMatch(/not on the allow list/);
    expect(refusal(() => createEgressPolicy(["*"]).checkHost("anything.example", 80))).toBe("allowed");
  });

  it("refuses a non-public address a name resolves to, even with * allowed, unless an address entry covers it", () => {
    const p = createEgressPolicy(["*", "127.0.0.1:8080", "10.0.0.0/8"]);
    expect(refusal(() => p.checkAddress("sneaky.example.com", 80, "127.0.0.1"))).toMatch(
      /sneaky\.example\.com:80: it resolves to 127\.0\.0\.1, a loopback address, which is refused unless allowed by address \(--allow 127\.0\.0\.1:80\)/,
    );
    expect(refusal(() => p.checkAddress("metadata.example", 80, "169.254.169.254"))).toMatch(/link-local/);
    expect(refusal(() => p.checkAddress("local.example", 8080, "127.0.0.1"))).toBe("allowed");
    expect(refusal(() => p.checkAddress("db.internal", 5432, "10.4.5.6"))).toBe("allowed");
    expect(refusal(() => p.checkAddress("public.example", 443, "93.184.216.34"))).toBe("allowed");
  });

  it("never lets a host name entry unlock a literal address, nor the reverse", () => {
    const p = createEgressPolicy(["localhost", "127.0.0.1:9000"]);
    expect(refusal(() => p.checkHost("127.0.0.1", 9000))).toBe("allowed");
    expect(refusal(() => p.checkHost("127.0.0.1", 9001))).toMatch(/not on the allow list/);
    expect(refusal(() => p.checkHost("localhost", 9000))).toBe("allowed");
    // ... but what localhost resolves to is checked on its own.
    expect(refusal(() => p.checkAddress("localhost", 9001, "127.0.0.1"))).toMatch(/loopback/);
    expect(refusal(() => p.checkHost("[::1]", 9000))).toMatch(/not on the allow list/);
  });
});
