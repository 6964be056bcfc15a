import { readServiceConfig } from "@corral/server-kit";
import { describe, expect, it } from "vitest";
import { runnerUrls } from "./component.js";

describe("runnerUrls (where launched runners connect)", () => {
  it("sends both the Work stream and release calls to CORRAL_PUBLIC_URL when the suite has one URL", () => {
    const env = { CORRAL_PUBLIC_URL: "https://corral.example.com", CORRAL_BROKER_URL: "http://task-broker:7703" };
    expect(runnerUrls(readServiceConfig(7701, env), env)).toEqual({ work: "https://corral.example.com", registry: "https://corral.example.com" });
  });

  it("without one, sends the Work stream to the broker and release calls to this registry", () => {
    const env = { PORT: "7801", CORRAL_BROKER_URL: "http://127.0.0.1:7803" };
    expect(runnerUrls(readServiceConfig(7701, env), env)).toEqual({ work: "http://127.0.0.1:7803", registry: "http://127.0.0.1:7801" });
  });
});
