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
  liquidity_tier: string;
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
    .select(['ticker', 'name', 'reference_price', 'annual_volatility', 'liquidity_tier'])
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

/**
 * Up to `limit` bars of a ticker with `from <= bucket < until`, oldest first (newest first when
 * `descending`): a range scan of the primary key, so a caller pages through a long history by
 * moving `from` (or `until`) past the last bar it got.
 */
export async function listBarRange(db: Executor, ticker: string, from: Date, until: Date, descending: boolean, limit: number): Promise<BarRow[]> {
  return db
    .selectFrom('price_bars')
    .select(['ticker', 'bucket', 'open', 'high', 'low', 'close', 'tick_count'])
    .where('ticker', '=', ticker)
    .where('bucket', '>=', from)
    .where('bucket', '<', until)
    .orderBy('bucket', descending ? 'desc' : 'asc')
    .limit(limit)
    .execute();
}

export interface BarAggregateRow {
  open: string;
  high: string;
  low: string;
  close: string;
  tick_count: string;
  bars: number;
}

/**
 * The bars of a ticker with `from <= bucket < until` merged into one, in the database: the
 * first open, the highest high, the lowest low, the last close and the sum of the tick counts.
 * Undefined when there is no bar in the range. The caller bounds the range (it reads every bar
 * of it).
 */
export async function aggregateBarRange(db: Executor, ticker: string, from: Date, until: Date): Promise<BarAggregateRow | undefined> {
  const { rows } = await sql<BarAggregateRow>`
    SELECT (array_agg(open ORDER BY bucket ASC))[1]::text AS open,
           max(high)::text AS high,
           min(low)::text AS low,
           (array_agg(close ORDER BY bucket DESC))[1]::text AS close,
           sum(tick_count)::text AS tick_count,
           count(*)::int AS bars
      FROM price_bars
     WHERE ticker = ${ticker} AND bucket >= ${from} AND bucket < ${until}`.execute(db);
  const row = rows[0];
  return row === undefined || row.bars === 0 ? undefined : row;
}

/** The latest bar of each of the tickers that has one: one index probe per ticker. */
export async function listLatestBars(db: Executor, tickers: readonly string[]): Promise<BarRow[]> {
  if (tickers.length === 0) return [];
  const { rows } = await sql<BarRow>`
    SELECT b.ticker, b.bucket, b.open::text AS open, b.high::text AS high, b.low::text AS low, b.close::text AS close, b.tick_count
      FROM unnest(${[...tickers]}::text[]) AS t(ticker)
      CROSS JOIN LATERAL (
        SELECT ticker, bucket, open, high, low, close, tick_count
          FROM price_bars p WHERE p.ticker = t.ticker ORDER BY p.bucket DESC LIMIT 1
      ) b`.execute(db);
  return rows;
}
