// Cron schedules, pure: parsing a schedule in a time zone (croner does the calendar and DST work),
// the fire times in a window, and which due fire times run or are skipped under the catch-up policy.
import { Cron } from "croner";
import { CatchUpPolicy } from "@corral/proto";
import { InvalidArgumentError } from "@corral/server-kit";

export interface CronSpec {
  schedule: string;
  /** IANA name; empty means UTC. */
  timeZone: string;
}

const NICKNAMES = new Set(["@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"]);

/** A parsed schedule: fire times after an instant. */
export interface Schedule {
  /** The first fire time strictly after `after`, or undefined when there is none. */
  next(after: Date): Date | undefined;
}

/**
 * Checks and parses a schedule; `field` names it in the error (e.g. `triggers[0].cron.schedule`).
 * Five fields, six with seconds first, or an @nickname; a schedule that never fires is refused.
 */
export function parseSchedule(spec: CronSpec, field: string): Schedule {
  const text = spec.schedule.trim();
  const fields = text.split(/\s+/).length;
  if (!NICKNAMES.has(text.toLowerCase()) && fields !== 5 && fields !== 6) {
    throw new InvalidArgumentError(`${field}.schedule`, `${JSON.stringify(spec.schedule)} must have five fields (six with seconds) or be @hourly, @daily, ...`);
  }
  const timezone = checkTimeZone(spec.timeZone, `${field}.time_zone`);
  let cron: Cron;
  try {
    cron = new Cron(text, { paused: true, timezone, mode: "5-or-6-parts" });
  } catch (err) {
    throw new InvalidArgumentError(`${field}.schedule`, `${JSON.stringify(spec.schedule)} is not a cron schedule: ${(err as Error).message}`);
  }
  const schedule: Schedule = { next: (after) => cron.nextRun(after) ?? undefined };
  if (!schedule.next(new Date())) throw new InvalidArgumentError(`${field}.schedule`, `${JSON.stringify(spec.schedule)} never fires`);
  return schedule;
}

/** The IANA zone for croner (UTC when empty); unknown names are INVALID_ARGUMENT. */
export function checkTimeZone(name: string, field: string): string {
  if (name === "") return "UTC";
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: name });
  } catch {
    throw new InvalidArgumentError(field, `${JSON.stringify(name)} is not an IANA time zone (e.g. Europe/Zurich)`);
  }
  return name;
}

/** The fire times of all schedules in (after, until], merged, ascending, without repeats; at most `max`. */
export function fireTimesBetween(schedules: readonly Schedule[], after: Date, until: Date, max: number): Date[] {
  const times = new Set<number>();
  for (const s of schedules) {
    let t = s.next(after);
    let n = 0;
    while (t && t.getTime() <= until.getTime() && n < max) {
      times.add(t.getTime());
      t = s.next(t);
      n += 1;
    }
  }
  return [...times].sort((a, b) => a - b).slice(-max).map((ms) => new Date(ms));
}

/** The next `count` fire times of all schedules after `after`, merged. */
export function nextFireTimes(schedules: readonly Schedule[], after: Date, count: number): Date[] {
  const times = new Set<number>();
  for (const s of schedules) {
    let t = s.next(after);
    for (let i = 0; t && i < count; i++) {
      times.add(t.getTime());
      t = s.next(t);
    }
  }
  return [...times].sort((a, b) => a - b).slice(0, count).map((ms) => new Date(ms));
}

export interface DueFires {
  /** Fire times to submit a job for, ascending. */
  run: Date[];
  /** A missed fire time recorded as skipped (at most one, the last), with how many were missed. */
  skipped?: { time: Date; missed: number };
}

/**
 * Which due fire times run. A fire time older than `graceMs` at `now` was missed (no job-service
 * ran then): SKIP_MISSED runs none of the missed ones, RUN_LAST runs the last of them. Fire times
 * within the grace run, each once.
 */
export function decideDueFires(due: readonly Date[], now: Date, catchUp: CatchUpPolicy, graceMs: number): DueFires {
  const cutoff = now.getTime() - graceMs;
  const missed = due.filter((t) => t.getTime() < cutoff);
  const onTime = due.filter((t) => t.getTime() >= cutoff);
  const last = missed[missed.length - 1];
  if (!last) return { run: [...onTime] };
  if (catchUp === CatchUpPolicy.RUN_LAST) return { run: [last, ...onTime] };
  return { run: [...onTime], skipped: { time: last, missed: missed.length } };
}
