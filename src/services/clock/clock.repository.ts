/**
 * The market clock's tables: the admin override (one row, market_clock, read by every api and
 * engine process, so they all see one clock) and the sessions the engine has acted on
 * (market_sessions: a row per open it executed, closed at the close it executed).
 */
import { sql } from 'kysely';
import type { Executor } from '../../infra/postgres.js';

export interface ClockRow {
  forced: 'open' | 'closed' | null;
  forced_at: Date | null;
}

export async function getClock(db: Executor): Promise<ClockRow> {
  const row = await db.selectFrom('market_clock').select(['forced', 'forced_at']).executeTakeFirst();
  return row ?? { forced: null, forced_at: null };
}

export async function setForced(db: Executor, forced: 'open' | 'closed' | null): Promise<ClockRow> {
  const { rows } = await sql<ClockRow>`
    UPDATE market_clock SET forced = ${forced}, forced_at = now(), updated_at = now()
    RETURNING forced, forced_at`.execute(db);
  return rows[0]!;
}

/** The latest session the engine opened (closed_at null while it is open), if any. */
export async function latestSession(db: Executor): Promise<{ openedAt: Date; closedAt: Date | null } | undefined> {
  const row = await db.selectFrom('market_sessions').select(['opened_at', 'closed_at']).orderBy('opened_at', 'desc').limit(1).executeTakeFirst();
  return row && { openedAt: row.opened_at, closedAt: row.closed_at };
}

/**
 * Records that the engine executed a session's open at `at`. A session still open (its close
 * was never recorded) is closed at the same instant first: one session is open at a time.
 */
export async function openSession(db: Executor, at: Date): Promise<void> {
  await closeSession(db, at);
  await sql`INSERT INTO market_sessions (opened_at) VALUES (${at}) ON CONFLICT DO NOTHING`.execute(db);
}

/** Records that the engine executed the open session's close at `at`. */
export async function closeSession(db: Executor, at: Date): Promise<void> {
  await sql`UPDATE market_sessions SET closed_at = greatest(opened_at, ${at}::timestamptz) WHERE closed_at IS NULL`.execute(db);
}
