// Statements marked PREPARED are parsed once per pooled connection and then reused; others are not.
import { sql, type Kysely } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDatabase, datesAsText, PREPARED, preparedStatementName } from "./postgres.js";
import { createTestDatabase, type TestDatabase } from "./testing/index.js";

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
    const values = [1, "x", null, [1, 2], [d, null], d];
    expect(datesAsText(values)).toEqual([1, "x", null, [1, 2], ["2026-01-02T03:04:05.006Z", null], "2026-01-02T03:04:05.006Z"]);
    expect(values[5]).toBe(d);
    const plain = [1, "x"];
    expect(datesAsText(plain)).toBe(plain);
  });
});
