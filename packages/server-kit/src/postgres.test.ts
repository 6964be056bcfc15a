// Statements marked PREPARED are parsed once per pooled connection and then reused; others are not.
import { createRequire } from "node:module";
import { sql, type Kysely } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { arrayLiteral, createDatabase, paramsAsText, PREPARED, preparedStatementName } from "./postgres.js";
import { createTestDatabase, type TestDatabase } from "./testing/index.js";

/** node-postgres' own conversion of a parameter, what arrayLiteral must match. */
const pgUtils = createRequire(import.meta.url)("pg/lib/utils.js") as { prepareValue(value: unknown): unknown };

describe("prepared statements", () => {
  let database: TestDatabase;
  let db: Kysely<Record<string, never>>;
  beforeAll(async () => {
    database = await createTestDatabase("prepared");
    // One connection: every statement below runs on the same session.
    db = createDatabase({ url: database.url, schema: "prep", max: 1 });
    await sql`create schema if not exists prep`.execute(db);
    await sql`create table prep.items (id text primary key, n int not null)`.execute(db);
  });
  afterAll(async () => {
    await db.destroy();
    await database.drop();
  });

  const preparedNames = async () =>
    (await sql<{ name: string }>`select name from pg_prepared_statements order by name`.execute(db)).rows.map((r) => r.name);

  it("prepares a marked statement once and binds it on every call", async () => {
    const insert = (ids: string[]) =>
      sql<{ id: string }>`/* prepared */ insert into items (id, n) select id, 1 from unnest(${ids}::text[]) as u(id) returning id`.execute(db);
    expect((await insert(["a", "b"])).rows.map((r) => r.id)).toEqual(["a", "b"]);
    expect((await insert(["c"])).rows.map((r) => r.id)).toEqual(["c"]);
    const text = sql`/* prepared */ insert into items (id, n) select id, 1 from unnest(${[]}::text[]) as u(id) returning id`.compile(db).sql;
    expect(text.startsWith(PREPARED)).toBe(true);
    expect(await preparedNames()).toEqual([preparedStatementName(text)]);
    // Errors come back as usual and leave the prepared statement usable.
    await expect(insert(["a"])).rejects.toMatchObject({ code: "23505" });
    expect((await insert(["d"])).rows).toHaveLength(1);
    expect(await preparedNames()).toHaveLength(1);
  });

  it("keeps working when a migration adds a column to a table it reads (named columns)", async () => {
    const read = () => sql<{ id: string; n: number }>`/* prepared */ select id, n from items where id = ${"a"}`.execute(db);
    expect((await read()).rows).toEqual([{ id: "a", n: 1 }]);
    await sql`alter table items add column note text`.execute(db);
    expect((await read()).rows).toEqual([{ id: "a", n: 1 }]);
  });

  it("leaves unmarked statements unprepared", async () => {
    const before = await preparedNames();
    const { rows } = await sql<{ n: number }>`select count(*)::int as n from items where id = any(${["a", "b"]}::text[])`.execute(db);
    expect(rows[0]!.n).toBe(2);
    expect(await preparedNames()).toEqual(before);
  });

  it("names a statement text the same way every time and different texts differently", () => {
    expect(preparedStatementName("/* prepared */ select 1")).toBe(preparedStatementName("/* prepared */ select 1"));
    expect(preparedStatementName("/* prepared */ select 1")).not.toBe(preparedStatementName("/* prepared */ select 2"));
    expect(preparedStatementName("/* prepared */ select 1")).toMatch(/^corral_[A-Za-z0-9_-]{24}$/);
  });
});

describe("dates sent as text", () => {
  let database: TestDatabase;
  let db: Kysely<Record<string, never>>;
  beforeAll(async () => {
    database = await createTestDatabase("dates");
    db = createDatabase({ url: database.url, schema: "dates", max: 1 });
    // A session time zone far from UTC: the instants must not move.
    await sql`set time zone 'Pacific/Chatham'`.execute(db);
  });
  afterAll(async () => {
    await db.destroy();
    await database.drop();
  });

  it("stores the same instants, alone, in arrays with nulls, and outside years 1-9999", async () => {
    const dates = [new Date("2026-12-05T04:10:00.123Z"), new Date("1970-01-01T00:00:00.000Z"), new Date("0001-01-01T00:00:00.000Z")];
    const far = new Date("+012345-06-07T08:09:10.011Z");
    const { rows } = await sql<{ one: Date; many: Date[]; ms: string[] }>`select ${dates[0]}::timestamptz as one,
      ${[...dates, null, far]}::timestamptz[] as many,
      array(select (extract(epoch from d) * 1000)::bigint::text from unnest(${[...dates, far]}::timestamptz[]) as d) as ms`.execute(db);
    expect(rows[0]!.one.getTime()).toBe(dates[0]!.getTime());
    expect(rows[0]!.many.map((d) => d?.getTime() ?? null)).toEqual([...dates.map((d) => d.getTime()), null, far.getTime()]);
    expect(rows[0]!.ms).toEqual([...dates, far].map((d) => String(d.getTime())));
  });

  it("leaves other values and the caller's array alone", () => {
    const d = new Date("2026-01-02T03:04:05.006Z");
    const far = new Date("+012345-06-07T08:09:10.011Z");
    const values = [1, "x", null, [1, 2], [d, null], d, [d, far], [{ a: 1 }]];
    expect(paramsAsText(values)).toEqual([1, "x", null, '{"1","2"}', '{"2026-01-02T03:04:05.006Z",NULL}', "2026-01-02T03:04:05.006Z", ["2026-01-02T03:04:05.006Z", far], [{ a: 1 }]]);
    expect(values[5]).toBe(d);
    const plain = [1, "x"];
    expect(paramsAsText(plain)).toBe(plain);
  });
});

describe("arrays sent as text", () => {
  const tricky = ["", "plain", 'say "hi"', "back\\slash", '\\"', "{braces}", "a,b", "NULL", "null", " spaced ", "tab\tnew\nline", "ünïcödé ✓", "\u{1F600}"];

  it("writes what node-postgres writes for every kind of element it handles", () => {
    const cases: unknown[][] = [
      [],
      tricky,
      [null, undefined, "x", null],
      [0, -1, 1.5, 1e21, Number.NaN, 2 ** 53],
      [true, false],
      [10n, -5n],
      [Buffer.from([0, 1, 254, 255]), new Uint8Array([7, 8]), new Uint8Array(new Uint8Array([1, 2, 3, 4]).buffer, 1, 2)],
      [[1, 2], [3, null], []],
      [["a", 'b"'], ["c\\"]],
    ];
    for (const values of cases) expect(arrayLiteral(values)).toBe(pgUtils.prepareValue(values));
  });

  it("leaves objects and far dates to node-postgres", () => {
    expect(arrayLiteral([{ a: 1 }])).toBeUndefined();
    expect(arrayLiteral([[new Date("+012345-06-07T08:09:10.011Z")]])).toBeUndefined();
  });

  let database: TestDatabase;
  let db: Kysely<Record<string, never>>;
  beforeAll(async () => {
    database = await createTestDatabase("arrays");
    db = createDatabase({ url: database.url, schema: "arrays", max: 1 });
  });
  afterAll(async () => {
    await db.destroy();
    await database.drop();
  });

  it("stores every element as it was, prepared or not", async () => {
    const bytes = [Buffer.from([0, 1, 254, 255]), Buffer.alloc(0), null];
    for (const marker of ["", PREPARED]) {
      const { rows } = await sql<{ texts: string[]; ints: number[]; flags: boolean[]; blobs: (Buffer | null)[]; grid: number[][] }>`${sql.raw(marker)}
        select ${[...tricky, null]}::text[] as texts, ${[1, -2, null]}::int[] as ints, ${[true, false]}::bool[] as flags,
          ${bytes}::bytea[] as blobs, ${[[1, 2], [3, 4]]}::int[][] as grid`.execute(db);
      expect(rows[0]!.texts).toEqual([...tricky, null]);
      expect(rows[0]!.ints).toEqual([1, -2, null]);
      expect(rows[0]!.flags).toEqual([true, false]);
      expect(rows[0]!.blobs).toEqual(bytes);
      expect(rows[0]!.grid).toEqual([[1, 2], [3, 4]]);
    }
  });
});
