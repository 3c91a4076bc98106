/**
 * Named queries over portfolio_history, portfolio_metrics and history_rounds (see the migration
 * 20261204130000_portfolio_history.sql), and `recordReset`, which an account reset calls inside
 * its own transaction.
 *
 * Lock discipline. The snapshot round writes only these tables. Its update of existing metrics
 * rows locks them with SKIP LOCKED, so it never waits for a reset in progress (that user simply
 * gets no point this round; the reset writes its own). Its insert of rows for users it sees for
 * the first time goes in user_id order and waits at most for a reset inserting the same row. An
 * account reset takes orders, cash_balances, holdings, then (here) the user's metrics row and
 * history point, then event counters: nothing the round holds can close a cycle with it.
 */
import { sql } from 'kysely';
import { cashFromDb, cashToSql, type Cash } from '../../core/money.js';
import { ACCUMULATOR_START, RATIO_ONE } from '../../core/performance.js';
import type { Executor } from '../../infra/postgres.js';

export type PointKind = 'round' | 'close' | 'reset';

export interface ClaimedRound {
  roundNo: bigint;
  periodNo: bigint;
  /** The round's instant (the database's clock): every point the round writes carries it. */
  at: Date;
  /** True when the round is run for a session close recorded since the last round. */
  close: boolean;
  /** True when the round counts as a return interval (market open, or a close). */
  counted: boolean;
}

/**
 * Claims the next round, atomically: only when the last one is at least `intervalMs` old, or a
 * session close (market_sessions.closed_at) was recorded since the last round, or `force`. The
 * round counts as a return interval (period_no advances) when the market is open or it is a
 * close. Undefined when no round is due.
 */
export async function claimRound(db: Executor, opts: { intervalMs: number; marketOpen: boolean; force?: boolean }): Promise<ClaimedRound | undefined> {
  // SET expressions read the row as it was, so `last_round_close` records whether this round is
  // a close before last_close_at moves on.
  const { rows } = await sql<{ round_no: string; period_no: string; last_round_at: Date; last_round_close: boolean; counted: boolean }>`
    WITH c AS (SELECT max(closed_at) AS closed_at FROM market_sessions)
    UPDATE history_rounds r
       SET round_no = r.round_no + 1,
           period_no = r.period_no + CASE WHEN ${opts.marketOpen} OR c.closed_at > coalesce(r.last_close_at, '-infinity') THEN 1 ELSE 0 END,
           last_round_at = now(),
           last_round_close = coalesce(c.closed_at > coalesce(r.last_close_at, '-infinity'), false),
           last_close_at = coalesce(c.closed_at, r.last_close_at),
           -- Downsampling starts where history does: at the hour of the first round.
           compacted_15m_until = coalesce(r.compacted_15m_until, date_trunc('hour', now())),
           compacted_1d_until = coalesce(r.compacted_1d_until, date_trunc('hour', now()))
      FROM c
     WHERE ${opts.force === true}
        OR r.last_round_at IS NULL
        OR r.last_round_at <= now() - make_interval(secs => ${opts.intervalMs}::double precision / 1000)
        OR c.closed_at > coalesce(r.last_close_at, '-infinity')
    RETURNING r.round_no, r.period_no, r.last_round_at, r.last_round_close,
              (${opts.marketOpen} OR r.last_round_close) AS counted`.execute(db);
  const row = rows[0];
  if (!row) return undefined;
  return { roundNo: BigInt(row.round_no), periodNo: BigInt(row.period_no), at: row.last_round_at, close: row.last_round_close, counted: row.counted };
}

/** The current return-period counter (what a reset's metrics start from). */
export async function currentPeriod(db: Executor): Promise<bigint> {
  const { rows } = await sql<{ period_no: string }>`SELECT period_no FROM history_rounds`.execute(db);
  return BigInt(rows[0]?.period_no ?? '0');
}

/** A user's cash, base, holdings and metrics as one round reads them (NUMERIC as text). */
export interface RoundRow {
  user_id: string;
  cash_balance: string;
  net_contributions: string;
  tickers: string[] | null;
  quantities: string[] | null;
  avg_costs: string[] | null;
  version: string | null;
  point_equity: string | null;
  point_base: string | null;
  period_equity: string | null;
  period_base: string | null;
  sum_r: string | null;
  sum_r2: string | null;
  perf_index: string | null;
  peak_index: string | null;
  max_drawdown: string | null;
}

/**
 * Every user's cash, base, holdings and metrics after `afterUserId`, `limit` users in user_id
 * order: one statement, so cash and holdings are read at one instant. Holdings come as arrays so
 * a user is one row.
 */
export async function readRoundPage(db: Executor, afterUserId: string | null, limit: number): Promise<RoundRow[]> {
  const { rows } = await sql<RoundRow>`
    WITH page AS (
      SELECT user_id, cash_balance::text, net_contributions::text FROM cash_balances
       WHERE ${afterUserId}::uuid IS NULL OR user_id > ${afterUserId}::uuid
       ORDER BY user_id LIMIT ${limit}
    ), h AS (
      SELECT h.user_id, array_agg(h.ticker) AS tickers, array_agg(h.quantity::text) AS quantities, array_agg(h.avg_cost::text) AS avg_costs
        FROM holdings h JOIN page p ON p.user_id = h.user_id GROUP BY h.user_id
    )
    SELECT p.user_id, p.cash_balance, p.net_contributions, h.tickers, h.quantities, h.avg_costs,
           m.version::text, m.point_equity::text, m.point_base::text, m.period_equity::text, m.period_base::text,
           m.sum_r::text, m.sum_r2::text, m.perf_index::text, m.peak_index::text, m.max_drawdown::text
      FROM page p LEFT JOIN h ON h.user_id = p.user_id LEFT JOIN portfolio_metrics m ON m.user_id = p.user_id
     ORDER BY p.user_id`.execute(db);
  return rows;
}

/** A user's first point: equity and base as the round computed them. */
export interface NewUserPoint {
  userId: string;
  equity: Cash;
  base: Cash;
}

/**
 * Starts the metrics of users seen for the first time and writes their first point, in one
 * statement. A user whose row appeared meanwhile (a reset) is left alone: ON CONFLICT DO NOTHING,
 * and the point is written only for the rows this statement inserted. Returns how many.
 */
export async function startUsers(db: Executor, users: readonly NewUserPoint[], round: { at: Date; periodNo: bigint; kind: PointKind }): Promise<number> {
  if (users.length === 0) return 0;
  const ids = users.map((u) => u.userId);
  const equity = users.map((u) => cashToSql(u.equity));
  const base = users.map((u) => cashToSql(u.base));
  const { rows } = await sql<{ n: string }>`
    WITH input AS (
      SELECT * FROM unnest(${ids}::uuid[], ${equity}::numeric[], ${base}::numeric[]) AS t(user_id, equity, base)
    ), started AS (
      INSERT INTO portfolio_metrics (user_id, started_at, start_period, point_at, point_equity, point_base, period_equity, period_base)
      SELECT user_id, ${round.at}, ${round.periodNo.toString()}::bigint, ${round.at}, equity, base, equity, base
        FROM input ORDER BY user_id
      ON CONFLICT (user_id) DO NOTHING
      RETURNING user_id
    ), points AS (
      INSERT INTO portfolio_history (user_id, at, equity, base, kind)
      SELECT i.user_id, ${round.at}, i.equity, i.base, ${round.kind} FROM input i JOIN started s ON s.user_id = i.user_id
      ON CONFLICT (user_id, at) DO NOTHING
      RETURNING 1
    )
    SELECT count(*)::text AS n FROM points`.execute(db);
  return Number(rows[0]?.n ?? 0);
}

/** What a round writes for a user it read with metrics `version`. */
export interface RoundWrite {
  userId: string;
  version: string;
  /** Write a history point (equity or base changed since the last point). */
  point: boolean;
  equity: Cash;
  base: Cash;
  /** The metrics after the round (unchanged when the round does not count or nothing moved). */
  periodEquity: Cash;
  periodBase: Cash;
  sumR: bigint;
  sumR2: bigint;
  index: bigint;
  peak: bigint;
  maxDrawdown: bigint;
}

/**
 * Writes a round's changes for users that have metrics, in one statement: each row is locked
 * (SKIP LOCKED: a reset in progress is not waited for) and written only if it still has the
 * version the round read, so a reset that committed after the round's read is never undone.
 * Points are written only for the rows updated. Returns [rows updated, points written].
 */
export async function writeRound(db: Executor, writes: readonly RoundWrite[], round: { at: Date; kind: PointKind }): Promise<[number, number]> {
  if (writes.length === 0) return [0, 0];
  const col = <T>(f: (w: RoundWrite) => T) => writes.map(f);
  const { rows } = await sql<{ updated: string; points: string }>`
    WITH input AS (
      SELECT * FROM unnest(
        ${col((w) => w.userId)}::uuid[], ${col((w) => w.version)}::bigint[], ${col((w) => w.point)}::boolean[],
        ${col((w) => cashToSql(w.equity))}::numeric[], ${col((w) => cashToSql(w.base))}::numeric[],
        ${col((w) => cashToSql(w.periodEquity))}::numeric[], ${col((w) => cashToSql(w.periodBase))}::numeric[],
        ${col((w) => w.sumR.toString())}::numeric[], ${col((w) => w.sumR2.toString())}::numeric[],
        ${col((w) => w.index.toString())}::numeric[], ${col((w) => w.peak.toString())}::numeric[],
        ${col((w) => w.maxDrawdown.toString())}::numeric[]
      ) AS t(user_id, version, point, equity, base, period_equity, period_base, sum_r, sum_r2, perf_index, peak_index, max_drawdown)
    ), locked AS (
      SELECT m.user_id FROM portfolio_metrics m JOIN input i ON i.user_id = m.user_id AND m.version = i.version
       ORDER BY m.user_id FOR UPDATE OF m SKIP LOCKED
    ), updated AS (
      UPDATE portfolio_metrics m
         SET version = m.version + 1,
             point_at = CASE WHEN i.point THEN ${round.at} ELSE m.point_at END,
             point_equity = i.equity, point_base = i.base,
             period_equity = i.period_equity, period_base = i.period_base,
             sum_r = i.sum_r, sum_r2 = i.sum_r2, perf_index = i.perf_index, peak_index = i.peak_index, max_drawdown = i.max_drawdown
        FROM input i JOIN locked l ON l.user_id = i.user_id
       WHERE m.user_id = i.user_id AND m.version = i.version
      RETURNING m.user_id
    ), points AS (
      INSERT INTO portfolio_history (user_id, at, equity, base, kind)
      SELECT i.user_id, ${round.at}, i.equity, i.base, ${round.kind} FROM input i JOIN updated u ON u.user_id = i.user_id
       WHERE i.point
      ON CONFLICT (user_id, at) DO NOTHING
      RETURNING 1
    )
    SELECT (SELECT count(*) FROM updated)::text AS updated, (SELECT count(*) FROM points)::text AS points`.execute(db);
  return [Number(rows[0]?.updated ?? 0), Number(rows[0]?.points ?? 0)];
}

/**
 * Records an account reset inside the reset's transaction (`trx`), after it locked orders,
 * cash_balances and holdings and before it appends events: a history point marked 'reset'
 * (equity = base = the cash the reset set), and the user's metrics restarted there (no returns,
 * index 1, no drawdown, started now, trades counted from now). The version is bumped, so a
 * snapshot round that read the user before this commits writes nothing for it. A reset point is
 * never removed by downsampling.
 */
export async function recordReset(trx: Executor, userId: string, cash: Cash): Promise<void> {
  const c = cashToSql(cash);
  // The metrics row first, then the point: the row lock is what a concurrent round skips, so the
  // round never holds this user's row while the reset waits on its point (see the header).
  await sql`
    INSERT INTO portfolio_metrics AS m (user_id, resets, started_at, start_period, point_at, point_equity, point_base, period_equity, period_base)
    VALUES (${userId}, 1, clock_timestamp(), (SELECT period_no FROM history_rounds), clock_timestamp(), ${c}, ${c}, ${c}, ${c})
    ON CONFLICT (user_id) DO UPDATE SET
      version = m.version + 1, resets = m.resets + 1,
      started_at = excluded.started_at, start_period = excluded.start_period,
      point_at = excluded.point_at, point_equity = excluded.point_equity, point_base = excluded.point_base,
      period_equity = excluded.period_equity, period_base = excluded.period_base,
      sum_r = 0, sum_r2 = 0, perf_index = ${RATIO_ONE.toString()}, peak_index = ${RATIO_ONE.toString()}, max_drawdown = 0`.execute(trx);
  await sql`
    INSERT INTO portfolio_history (user_id, at, equity, base, kind)
    SELECT user_id, point_at, point_equity, point_base, 'reset' FROM portfolio_metrics WHERE user_id = ${userId}
    ON CONFLICT (user_id, at) DO UPDATE SET equity = excluded.equity, base = excluded.base, kind = 'reset'`.execute(trx);
}

/** The downsampling stages: points older than `ageMs` keep only the last of each `bucket`. */
export interface CompactionStage {
  name: '15m' | '1d';
  /** Points older than this are compacted. */
  ageMs: number;
  /** The bucket whose last point is kept, as a SQL expression of `h.at` giving the bucket's end. */
  bucketEnd: 'quarter_hour' | 'utc_day';
  /** How much history one statement processes (a bound on its rows). */
  windowMs: number;
}

/**
 * One compaction step of a stage: in the window after the stage's watermark (if the window is
 * wholly older than the stage's age), deletes every point that is not a reset and has a later
 * point of the same user in the same bucket, and moves the watermark to the window's end — one
 * statement. Returns the rows deleted, or undefined when the stage is up to date.
 */
export async function compactWindow(db: Executor, stage: CompactionStage): Promise<number | undefined> {
  const watermark = stage.name === '15m' ? sql.ref('compacted_15m_until') : sql.ref('compacted_1d_until');
  const bucketEnd =
    stage.bucketEnd === 'quarter_hour'
      ? sql`to_timestamp((floor(extract(epoch FROM h.at) / 900) + 1) * 900)`
      : sql`(date_trunc('day', h.at AT TIME ZONE 'UTC') + interval '1 day') AT TIME ZONE 'UTC'`;
  const { rows } = await sql<{ deleted: string | null }>`
    WITH w AS (
      -- The window starts at the watermark (set by the first round, at its hour); it is done only
      -- once all of it is older than the stage's age.
      SELECT s.start, s.start + make_interval(secs => ${stage.windowMs}::double precision / 1000) AS stop
        FROM (SELECT ${watermark} AS start FROM history_rounds) s
       WHERE s.start IS NOT NULL
         AND s.start + make_interval(secs => ${stage.windowMs}::double precision / 1000) <= now() - make_interval(secs => ${stage.ageMs}::double precision / 1000)
    ), gone AS (
      DELETE FROM portfolio_history h USING w
       WHERE h.at >= w.start AND h.at < w.stop AND h.kind <> 'reset'
         AND EXISTS (SELECT 1 FROM portfolio_history l WHERE l.user_id = h.user_id AND l.at > h.at AND l.at < ${bucketEnd})
      RETURNING 1
    ), moved AS (
      UPDATE history_rounds SET ${watermark} = w.stop FROM w RETURNING 1
    )
    SELECT CASE WHEN EXISTS (SELECT 1 FROM moved) THEN (SELECT count(*) FROM gone)::text END AS deleted`.execute(db);
  const deleted = rows[0]?.deleted;
  return deleted === null || deleted === undefined ? undefined : Number(deleted);
}

export interface PointRow {
  at: Date;
  equity: string;
  base: string;
  kind: PointKind;
}

/**
 * A user's points from `from` (null: from the first), oldest first, with the last point before
 * `from` as the opening one; at most `limit` of the newest.
 */
export async function listPoints(
  db: Executor,
  userId: string,
  from: Date | null,
  limit: number,
  /** The last instant included (Alpaca's date_end); none: everything since `from`. */
  until: Date | null = null,
): Promise<{ opening: PointRow | undefined; points: PointRow[] }> {
  const fromAt = from ?? new Date(0);
  const upTo = until === null ? sql`` : sql` AND at <= ${until}`;
  const [opening, points] = await Promise.all([
    from === null
      ? Promise.resolve({ rows: [] as PointRow[] })
      : sql<PointRow>`SELECT at, equity::text, base::text, kind FROM portfolio_history WHERE user_id = ${userId} AND at < ${fromAt} ORDER BY at DESC LIMIT 1`.execute(db),
    sql<PointRow>`SELECT at, equity::text, base::text, kind FROM portfolio_history WHERE user_id = ${userId} AND at >= ${fromAt}${upTo} ORDER BY at DESC LIMIT ${limit}`.execute(db),
  ]);
  return { opening: opening.rows[0], points: points.rows.reverse() };
}

/** A class member as the leaderboard reads it (NUMERIC as text; metrics null before its first round). */
export interface MemberRow extends Omit<RoundRow, 'version' | 'point_equity' | 'point_base'> {
  name: string;
  start_period: string | null;
  trades: string;
}

/**
 * The members of a class with their cash, base, holdings, metrics and the fills since their
 * metrics started (the last reset or first point; every fill when there is no metrics row yet),
 * and the current period — one statement; no history is read.
 */
export async function readClassMembers(db: Executor, classId: string, membersMax: number): Promise<{ members: MemberRow[]; periodNo: bigint }> {
  const { rows } = await sql<MemberRow & { period_no: string }>`
    SELECT cm.user_id, u.name, cb.cash_balance::text, cb.net_contributions::text, h.tickers, h.quantities, h.avg_costs,
           m.period_equity::text, m.period_base::text, m.sum_r::text, m.sum_r2::text, m.perf_index::text,
           m.peak_index::text, m.max_drawdown::text, m.start_period::text,
           -- Trades since the last reset; a member never reset counts all of them (its metrics
           -- start at its first recorded point, which may come after its first fills).
           (SELECT count(*) FROM orders o WHERE o.user_id = cm.user_id AND o.status = 'FILLED'
               AND (coalesce(m.resets, 0) = 0 OR o.filled_at >= m.started_at))::text AS trades,
           (SELECT period_no FROM history_rounds)::text AS period_no
      FROM class_members cm
      JOIN users u ON u.id = cm.user_id
      JOIN cash_balances cb ON cb.user_id = cm.user_id
      LEFT JOIN portfolio_metrics m ON m.user_id = cm.user_id
      LEFT JOIN LATERAL (
        SELECT array_agg(ticker) AS tickers, array_agg(quantity::text) AS quantities, array_agg(avg_cost::text) AS avg_costs
          FROM holdings WHERE user_id = cm.user_id
      ) h ON true
     WHERE cm.class_id = ${classId}
     ORDER BY cm.user_id
     LIMIT ${membersMax}`.execute(db);
  const periodNo = rows[0] ? BigInt(rows[0].period_no) : await currentPeriod(db);
  return { members: rows, periodNo };
}

/** The accumulator's defaults as stored, for rows that have none yet. */
export const STORED_START = {
  sumR: ACCUMULATOR_START.sumR,
  sumR2: ACCUMULATOR_START.sumR2,
  index: ACCUMULATOR_START.index,
  peak: ACCUMULATOR_START.peak,
  maxDrawdown: ACCUMULATOR_START.maxDrawdown,
};

/** The user's current base (net contributions), or undefined without a cash account. */
export async function getBalanceWithBase(db: Executor, userId: string): Promise<{ base: Cash } | undefined> {
  const row = await db.selectFrom('cash_balances').select('net_contributions').where('user_id', '=', userId).executeTakeFirst();
  return row ? { base: cashFromDb(row.net_contributions) } : undefined;
}

/**
 * The user's latest point that starts a day's comparison: a session close, or a reset (which
 * restarts the account, so what came before it is no baseline), at or before `atOrBefore`.
 */
export async function latestClosePoint(db: Executor, userId: string, atOrBefore: Date): Promise<PointRow | undefined> {
  const { rows } = await sql<PointRow>`
    SELECT at, equity::text, base::text, kind FROM portfolio_history
     WHERE user_id = ${userId} AND at <= ${atOrBefore} AND kind IN ('close', 'reset')
     ORDER BY at DESC LIMIT 1`.execute(db);
  return rows[0];
}
