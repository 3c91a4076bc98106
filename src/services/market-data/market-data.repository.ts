/**
 * Named queries over `instruments` and `price_bars`. Rows keep the driver's shapes (NUMERIC as
 * text, timestamps as Date); the service maps them to domain values.
 */
import { sql } from 'kysely';
import type { Executor } from '../../infra/postgres.js';

export interface InstrumentRow {
  ticker: string;
  name: string;
  reference_price: string;
  annual_volatility: string;
}

export interface BarRow {
  ticker: string;
  bucket: Date;
  open: string;
  high: string;
  low: string;
  close: string;
  tick_count: number;
}

export interface NewBarRow {
  ticker: string;
  bucket: Date;
  open: string;
  high: string;
  low: string;
  close: string;
  tick_count: number;
}

/** Up to `limit` instruments in ticker order. */
export async function listInstruments(db: Executor, limit: number): Promise<InstrumentRow[]> {
  return db
    .selectFrom('instruments')
    .select(['ticker', 'name', 'reference_price', 'annual_volatility'])
    .orderBy('ticker')
    .limit(limit)
    .execute();
}

/**
 * The close of the latest stored bar of every instrument that has one. One index probe per
 * instrument (backward scan of the primary key), however long the history.
 */
export async function getLastCloses(db: Executor): Promise<{ ticker: string; close: string }[]> {
  const { rows } = await sql<{ ticker: string; close: string }>`
    SELECT i.ticker, b.close::text AS close
      FROM instruments i
      CROSS JOIN LATERAL (
        SELECT close FROM price_bars p WHERE p.ticker = i.ticker ORDER BY p.bucket DESC LIMIT 1
      ) b`.execute(db);
  return rows;
}

/**
 * Upserts bars in one statement, merging with stored rows: the stored open is kept, high and low
 * widen, the new close wins and the tick counts add up (callers send only unwritten ticks).
 * The caller bounds the batch (7 parameters per row, far below PostgreSQL's 65,535).
 */
export async function upsertBars(db: Executor, bars: readonly NewBarRow[]): Promise<void> {
  if (bars.length === 0) return;
  await db
    .insertInto('price_bars')
    .values([...bars])
    .onConflict((oc) =>
      oc.columns(['ticker', 'bucket']).doUpdateSet({
        high: sql<string>`GREATEST(price_bars.high, excluded.high)`,
        low: sql<string>`LEAST(price_bars.low, excluded.low)`,
        close: sql<string>`excluded.close`,
        tick_count: sql<number>`price_bars.tick_count + excluded.tick_count`,
      }),
    )
    .execute();
}

/** The latest `limit` bars of a ticker, newest first. */
export async function listBars(db: Executor, ticker: string, limit: number): Promise<BarRow[]> {
  return db
    .selectFrom('price_bars')
    .select(['ticker', 'bucket', 'open', 'high', 'low', 'close', 'tick_count'])
    .where('ticker', '=', ticker)
    .orderBy('bucket', 'desc')
    .limit(limit)
    .execute();
}
