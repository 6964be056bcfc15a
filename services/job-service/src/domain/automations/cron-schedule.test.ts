import { CatchUpPolicy } from "@corral/proto";
import { describe, expect, it } from "vitest";
import { decideDueFires, fireTimesBetween, nextFireTimes, parseSchedule } from "./cron-schedule.js";

const iso = (ds: Date[]) => ds.map((d) => d.toISOString());

describe("cron schedules", () => {
  it("reads five fields in the time zone: 30 2 * * * in Europe/Zurich on an ordinary day is 01:30 UTC in winter", () => {
    const s = parseSchedule({ schedule: "30 2 * * *", timeZone: "Europe/Zurich" }, "t");
    expect(iso(nextFireTimes([s], new Date("2026-01-10T00:00:00Z"), 2))).toEqual(["2026-01-10T01:30:00.000Z", "2026-01-11T01:30:00.000Z"]);
  });

  it("spring-forward: 02:30 does not exist on 2026-03-29 in Europe/Zurich, the fire runs once at 03:00 local", () => {
    const s = parseSchedule({ schedule: "30 2 * * *", timeZone: "Europe/Zurich" }, "t");
    expect(iso(nextFireTimes([s], new Date("2026-03-28T00:00:00Z"), 3))).toEqual([
      "2026-03-28T01:30:00.000Z", // 02:30 CET
      "2026-03-29T01:00:00.000Z", // 03:00 CEST, the first valid time after the gap
      "2026-03-30T00:30:00.000Z", // 02:30 CEST
    ]);
  });

  it("fall-back: 02:30 occurs twice on 2026-10-25 in Europe/Zurich, the fire runs once", () => {
    const s = parseSchedule({ schedule: "30 2 * * *", timeZone: "Europe/Zurich" }, "t");
    const times = fireTimesBetween([s], new Date("2026-10-24T12:00:00Z"), new Date("2026-10-26T12:00:00Z"), 100);
    expect(iso(times)).toEqual(["2026-10-25T00:30:00.000Z", "2026-10-26T01:30:00.000Z"]);
  });

  it("an hourly schedule in Zurich keeps firing every real hour across the fall-back night", () => {
    const s = parseSchedule({ schedule: "0 * * * *", timeZone: "Europe/Zurich" }, "t");
    const times = fireTimesBetween([s], new Date("2026-10-24T22:30:00Z"), new Date("2026-10-25T03:30:00Z"), 100);
    expect(times.length).toBe(5);
    for (let i = 1; i < times.length; i++) expect(times[i]!.getTime() - times[i - 1]!.getTime()).toBe(3_600_000);
  });

  it("six fields: the first is seconds", () => {
    const s = parseSchedule({ schedule: "* * * * * *", timeZone: "" }, "t");
    expect(iso(fireTimesBetween([s], new Date("2026-01-01T00:00:00.500Z"), new Date("2026-01-01T00:00:03Z"), 100))).toEqual([
      "2026-01-01T00:00:01.000Z",
      "2026-01-01T00:00:02.000Z",
      "2026-01-01T00:00:03.000Z",
    ]);
  });

  it("@hourly and @daily are accepted", () => {
    const h = parseSchedule({ schedule: "@hourly", timeZone: "" }, "t");
    expect(h.next(new Date("2026-01-01T00:10:00Z"))!.toISOString()).toBe("2026-01-01T01:00:00.000Z");
    expect(parseSchedule({ schedule: "@daily", timeZone: "UTC" }, "t").next(new Date("2026-01-01T00:10:00Z"))!.toISOString()).toBe(
      "2026-01-02T00:00:00.000Z",
    );
  });

  it("several schedules merge without repeating a shared fire time", () => {
    const a = parseSchedule({ schedule: "0,30 * * * *", timeZone: "" }, "t");
    const b = parseSchedule({ schedule: "0 * * * *", timeZone: "" }, "t");
    expect(iso(nextFireTimes([a, b], new Date("2026-01-01T00:10:00Z"), 3))).toEqual([
      "2026-01-01T00:30:00.000Z",
      "2026-01-01T01:00:00.000Z",
      "2026-01-01T01:30:00.000Z",
    ]);
  });

  it.each([
    ["61 * * * *", "", "t.schedule"],
    ["* * *", "", "t.schedule"],
    ["not a cron", "", "t.schedule"],
    ["0 0 30 2 *", "", "t.schedule"],
    ["0 * * * *", "Mars/Olympus", "t.time_zone"],
  ])("refuses %j in zone %j naming %s", (schedule, timeZone, field) => {
    expect(() => parseSchedule({ schedule, timeZone }, "t")).toThrow(expect.objectContaining({ violations: [expect.objectContaining({ field })] }));
  });
});

describe("due fires under the catch-up policy", () => {
  const now = new Date("2026-01-01T00:01:00Z");
  const t = (s: number) => new Date(now.getTime() - s * 1000);

  it("fire times within the grace all run, each once", () => {
    expect(decideDueFires([t(2), t(1), t(0)], now, CatchUpPolicy.SKIP_MISSED, 5_000)).toEqual({ run: [t(2), t(1), t(0)] });
  });

  it("SKIP_MISSED runs none of the missed fire times and records the last as skipped", () => {
    expect(decideDueFires([t(30), t(20), t(10), t(1)], now, CatchUpPolicy.SKIP_MISSED, 5_000)).toEqual({
      run: [t(1)],
      skipped: { time: t(10), missed: 3 },
    });
  });

  it("RUN_LAST runs the last missed fire time once", () => {
    expect(decideDueFires([t(30), t(20), t(10)], now, CatchUpPolicy.RUN_LAST, 5_000)).toEqual({ run: [t(10)] });
  });
});
