/**
 * Named queries over `events` and `event_counters`. Appending is a step (src/infra/statements.ts)
 * so that a writer whose change is one statement (an accept, a deposit) appends its events in
 * that same statement; a writer with a transaction of several statements appends once, at its
 * end (`appendEvents`). Either way the counter rows are the transaction's last locks, taken in
 * user_id order (see the migration).
 */
import { sql, type RawBuilder } from 'kysely';
import type { Executor } from '../../infra/postgres.js';
import { runSteps, type Step } from '../../infra/statements.js';
import type { EventRecord, EventType } from './event-log.js';

/** What a writer appends: the event's user, type and data (JSON text). */
export interface NewEvent {
  userId: string;
  type: EventType;
  dataJson: string;
}

interface EventRow {
  user_id: string;
  seq: string;
  type: EventType;
  at: Date;
  data: string;
}

/** The columns a step named `name` returns, as the readers want them. */
const EVENT_COLUMNS = sql`user_id, seq, type, at, data::text AS data`;

export function toEventRecord(row: EventRow): EventRecord {
  return { userId: row.user_id, seq: Number(row.seq), type: row.type, at: row.at.toISOString(), dataJson: row.data };
}

/**
 * Steps appending the events `source` yields — a query with columns user_id (uuid), type
 * (text), data (json) and ord (their order within the user) — numbered after each user's last
 * seq. `<name>_counters` advances each user's counter once by the user's count (one upsert per
 * user, in user_id order: the lock order); `name` inserts the events and returns them.
 */
export function appendEventsSteps(name: string, source: RawBuilder<unknown>): Step[] {
  const src = `${name}_source`;
  const counters = `${name}_counters`;
  return [
    { name: src, statement: source },
    {
      name: counters,
      statement: sql`
        INSERT INTO event_counters AS c (user_id, last_seq)
        SELECT user_id, count(*) FROM ${sql.id(src)} GROUP BY user_id ORDER BY user_id
        ON CONFLICT (user_id) DO UPDATE SET last_seq = c.last_seq + excluded.last_seq
        RETURNING user_id, last_seq`,
    },
    {
      name,
      statement: sql`
        INSERT INTO events (user_id, seq, type, data)
        SELECT s.user_id, k.last_seq - count(*) OVER w + row_number() OVER (w ORDER BY s.ord), s.type, s.data
          FROM ${sql.id(src)} s JOIN ${sql.id(counters)} k ON k.user_id = s.user_id
        WINDOW w AS (PARTITION BY s.user_id)
        ORDER BY s.user_id, s.ord
        RETURNING ${EVENT_COLUMNS}`,
    },
  ];
}

/** A source of events given by the writer (data rendered in TypeScript), in the order given. */
export function givenEventsSource(events: readonly NewEvent[]): RawBuilder<unknown> {
  return sql`
    SELECT x.user_id, x.type, x.data, x.ord
      FROM unnest(${events.map((e) => e.userId)}::uuid[], ${events.map((e) => e.type)}::text[], ${events.map((e) => e.dataJson)}::json[])
           WITH ORDINALITY AS x (user_id, type, data, ord)`;
}

/** Appends events inside the caller's transaction, as its last statement. */
export async function appendEvents(trx: Executor, events: readonly NewEvent[]): Promise<EventRecord[]> {
  if (events.length === 0) return [];
  const rows = await runSteps<EventRow>(trx, appendEventsSteps('appended', givenEventsSource(events)), sql`SELECT * FROM appended`);
  return rows.map(toEventRecord);
}

/** Events of a user with seq > afterSeq, oldest first, at most `limit`. */
export async function listAfter(db: Executor, userId: string, afterSeq: number, limit: number): Promise<EventRecord[]> {
  const { rows } = await sql<EventRow>`
    SELECT ${EVENT_COLUMNS} FROM events
     WHERE user_id = ${userId} AND seq > ${afterSeq}
     ORDER BY seq
     LIMIT ${limit}`.execute(db);
  return rows.map(toEventRecord);
}

/** The user's last seq (0 before the first event). */
export async function lastSeq(db: Executor, userId: string): Promise<number> {
  const row = await db.selectFrom('event_counters').select('last_seq').where('user_id', '=', userId).executeTakeFirst();
  return row ? Number(row.last_seq) : 0;
}

/** The last seq of each of `userIds` that has events. */
export async function lastSeqs(db: Executor, userIds: readonly string[]): Promise<Map<string, number>> {
  if (userIds.length === 0) return new Map();
  const { rows } = await sql<{ user_id: string; last_seq: string }>`
    SELECT user_id, last_seq FROM event_counters WHERE user_id = ANY(${[...userIds]}::uuid[])`.execute(db);
  return new Map(rows.map((r) => [r.user_id, Number(r.last_seq)]));
}

/** The oldest seq the log still keeps for the user (undefined: none kept). */
export async function firstKeptSeq(db: Executor, userId: string): Promise<number | undefined> {
  const { rows } = await sql<{ seq: string }>`
    SELECT seq FROM events WHERE user_id = ${userId} ORDER BY seq LIMIT 1`.execute(db);
  return rows[0] ? Number(rows[0].seq) : undefined;
}

/** Deletes at most `limit` events older than `cutoff`; returns how many it deleted. */
export async function deleteOlderThan(db: Executor, cutoff: Date, limit: number): Promise<number> {
  const result = await sql`
    DELETE FROM events WHERE ctid = ANY(ARRAY(SELECT ctid FROM events WHERE at < ${cutoff} LIMIT ${limit}))`.execute(db);
  return Number(result.numAffectedRows ?? 0n);
}
