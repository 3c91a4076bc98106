/**
 * Portfolio history and performance: the snapshot leader that records every user's equity each
 * interval (and at each session close) with the running metrics, the downsampling of old points,
 * a user's history as the API serves it, and a class's leaderboard.
 *
 * Equity is the account summary's: cash_balance plus each position at the latest cached price
 * (its average cost when there is none), quantity × price rounded half-up to the cent
 * (portfolios.valuePositions, the very function the summary uses).
 */
import { assert } from '../../core/errors.js';
import { cashFromDb, priceFromDb, qtyFromDb, sum, type Cash, type Price } from '../../core/money.js';
import {
  accumulate,
  maxDrawdownWithLive,
  intervalReturn,
  profitLossPct,
  rankEntries,
  ratioToPct4,
  returnRatio,
  sharpe,
  formatPct4,
  formatSharpe,
  type Accumulator,
  type PeriodsPerYear,
  type Pct4,
  type RankMetric,
} from '../../core/performance.js';
import type { LeaseLock } from '../../infra/lease.js';
import type { Logger } from '../../infra/logger.js';
import { Periodic } from '../../infra/periodic.js';
import type { Db, Executor } from '../../infra/postgres.js';
import type { QuoteStore } from '../market-data/quote-store.js';
import { valuePositions, type Holding } from '../portfolios/portfolios.service.js';
import * as repo from './history.repository.js';

/** Users one round reads and writes per page: 10,000 users are one page (one read, two writes). */
export const ROUND_PAGE_USERS = 20_000;
/** Pages one round reads at most (a bound of 2,000,000 users a round). */
export const ROUND_PAGES_MAX = 100;
/** Windows each downsampling stage processes at most after a round (catch-up is bounded). */
export const COMPACTION_WINDOWS_PER_ROUND = 4;
/** How often the leader looks whether a round is due (a session close is seen within this). */
export const SNAPSHOT_CHECK_MS_MAX = 1_000;

const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;

/** Past a day, the last point of each 15 minutes; past 30 days, the last point of each UTC day. */
export const COMPACTION_STAGES: readonly repo.CompactionStage[] = [
  { name: '15m', ageMs: DAY_MS, bucketEnd: 'quarter_hour', windowMs: 15 * MINUTE_MS },
  { name: '1d', ageMs: 30 * DAY_MS, bucketEnd: 'utc_day', windowMs: 60 * MINUTE_MS },
];

function toHoldings(tickers: string[] | null, quantities: string[] | null, avgCosts: string[] | null): Holding[] {
  if (!tickers) return [];
  assert(quantities !== null && avgCosts !== null && quantities.length === tickers.length && avgCosts.length === tickers.length, 'holdings arrays align');
  return tickers.map((ticker, i) => {
    const quantity = qtyFromDb(quantities[i]!);
    return { ticker, quantity, reservedQuantity: 0n, availableQuantity: quantity, avgCost: priceFromDb(avgCosts[i]!) };
  });
}

/** Cash plus positions at market, exactly as the account summary computes it. */
export function equityOf(cash: Cash, holdings: Holding[], prices: ReadonlyMap<string, Price>): Cash {
  return cash + sum(valuePositions(holdings, prices).map((p) => p.marketValue));
}

function tickersOf(rows: readonly { tickers: string[] | null }[]): string[] {
  const set = new Set<string>();
  for (const r of rows) for (const t of r.tickers ?? []) set.add(t);
  return [...set].sort();
}

async function pricesOf(quotes: QuoteStore, tickers: readonly string[]): Promise<Map<string, Price>> {
  if (tickers.length === 0) return new Map();
  const found = await quotes.getMany(tickers);
  return new Map([...found].map(([t, q]) => [t, q.price]));
}

function accumulatorOf(row: { sum_r: string | null; sum_r2: string | null; perf_index: string | null; peak_index: string | null; max_drawdown: string | null }): Accumulator {
  if (row.sum_r === null) return repo.STORED_START;
  return {
    sumR: BigInt(row.sum_r),
    sumR2: BigInt(row.sum_r2!),
    index: BigInt(row.perf_index!),
    peak: BigInt(row.peak_index!),
    maxDrawdown: BigInt(row.max_drawdown!),
  };
}

export interface RoundResult {
  roundNo: bigint;
  at: Date;
  close: boolean;
  counted: boolean;
  users: number;
  /** Users started (first metrics row and first point) by this round. */
  started: number;
  updated: number;
  points: number;
  /** Wall time of the round's statements (the database's share of the round), ms. */
  dbMs: number;
  totalMs: number;
}

export interface SnapshotRoundOptions {
  intervalMs: number;
  /** Whether the market is open now (a round counts as a return interval only then, or at a close). */
  marketOpen: boolean;
  /** Runs a round even if the last one is younger than the interval (tests, the benchmark). */
  force?: boolean;
  pageUsers?: number;
  /** Called after each page is read and before it is written: lets a test commit a reset in between. */
  afterRead?: () => Promise<void>;
}

/**
 * One snapshot round over every user: claims the round (undefined when none is due), reads each
 * page of users in one statement, prices every ticker held in one quote-store read, and writes
 * the changed points and metrics in at most two statements per page.
 */
export async function snapshotRound(db: Db, quotes: QuoteStore, opts: SnapshotRoundOptions): Promise<RoundResult | undefined> {
  const started = performance.now();
  let dbMs = 0;
  const timed = async <T>(p: () => Promise<T>): Promise<T> => {
    const t = performance.now();
    try {
      return await p();
    } finally {
      dbMs += performance.now() - t;
    }
  };
  const round = await timed(() => repo.claimRound(db, opts));
  if (!round) return undefined;
  const kind: repo.PointKind = round.close ? 'close' : 'round';
  const result: RoundResult = { roundNo: round.roundNo, at: round.at, close: round.close, counted: round.counted, users: 0, started: 0, updated: 0, points: 0, dbMs: 0, totalMs: 0 };
  const pageUsers = opts.pageUsers ?? ROUND_PAGE_USERS;
  let after: string | null = null;
  for (let page = 0; page < ROUND_PAGES_MAX; page++) {
    const rows = await timed(() => repo.readRoundPage(db, after, pageUsers));
    if (rows.length === 0) break;
    after = rows[rows.length - 1]!.user_id;
    result.users += rows.length;
    const prices = await pricesOf(quotes, tickersOf(rows));
    const fresh: repo.NewUserPoint[] = [];
    const writes: repo.RoundWrite[] = [];
    for (const row of rows) {
      const equity = equityOf(cashFromDb(row.cash_balance), toHoldings(row.tickers, row.quantities, row.avg_costs), prices);
      const base = cashFromDb(row.net_contributions);
      if (row.version === null) {
        fresh.push({ userId: row.user_id, equity, base });
        continue;
      }
      const point = cashFromDb(row.point_equity!) !== equity || cashFromDb(row.point_base!) !== base;
      let periodEquity = cashFromDb(row.period_equity!);
      let periodBase = cashFromDb(row.period_base!);
      let acc = accumulatorOf(row);
      const moved = periodEquity !== equity || periodBase !== base;
      if (round.counted && moved) {
        acc = accumulate(acc, intervalReturn(periodEquity, equity, periodBase, base));
        periodEquity = equity;
        periodBase = base;
      }
      // Nothing to write: no new point, and the metrics stand (an unchanged interval is a zero
      // return, counted by the global period counter alone).
      if (!point && !(round.counted && moved)) continue;
      writes.push({ userId: row.user_id, version: row.version, point, equity, base, periodEquity, periodBase, ...acc });
    }
    if (opts.afterRead) await opts.afterRead();
    const startedUsers = await timed(() => repo.startUsers(db, fresh, { at: round.at, periodNo: round.periodNo, kind }));
    result.started += startedUsers;
    result.points += startedUsers;
    const [updated, points] = await timed(() => repo.writeRound(db, writes, { at: round.at, kind }));
    result.updated += updated;
    result.points += points;
    if (rows.length < pageUsers) break;
  }
  result.dbMs = dbMs;
  result.totalMs = performance.now() - started;
  return result;
}

/** Runs each downsampling stage for at most COMPACTION_WINDOWS_PER_ROUND windows; rows deleted. */
export async function compactHistory(db: Executor, windowsPerStage = COMPACTION_WINDOWS_PER_ROUND): Promise<number> {
  let deleted = 0;
  for (const stage of COMPACTION_STAGES) {
    for (let i = 0; i < windowsPerStage; i++) {
      const n = await repo.compactWindow(db, stage);
      if (n === undefined) break;
      deleted += n;
    }
  }
  return deleted;
}

export interface SnapshotterDeps {
  db: Db;
  quotes: QuoteStore;
  /** The market clock: whether the market is open decides whether a round counts as a return interval. */
  clock: { isOpen(nowMs: number): boolean };
  /** Leadership across the deployment: a lease of a few checks, renewed at every check. */
  lease: LeaseLock;
  logger: Logger;
  intervalMs: number;
}

/**
 * The snapshot leader, run by every engine: each check (every second at most), the engine that
 * holds the lease claims a round if one is due (the interval passed, or a session close was
 * recorded) and then downsamples a bounded part of old history. The claim itself is atomic in
 * PostgreSQL, so even two engines that both believe they lead run one round per interval.
 */
export class HistorySnapshotter {
  private readonly periodic: Periodic;
  private lastRound: RoundResult | undefined;

  constructor(private readonly deps: SnapshotterDeps) {
    this.periodic = new Periodic(Math.min(SNAPSHOT_CHECK_MS_MAX, deps.intervalMs), () => this.pass(), (err) => deps.logger.warn({ err }, 'portfolio snapshot pass failed'));
  }

  /** The lease TTL to build the snapshotter's LeaseLock with: three checks. */
  static leaseTtlMs(intervalMs: number): number {
    return 3 * Math.min(SNAPSHOT_CHECK_MS_MAX, intervalMs);
  }

  start(): void {
    this.periodic.start();
  }

  async stop(): Promise<void> {
    await this.periodic.stop();
    // A standby takes over at once instead of after the TTL.
    if (this.deps.lease.isHeld()) await this.deps.lease.release().catch(() => false);
  }

  isLeader(): boolean {
    return this.deps.lease.isHeld();
  }

  /** The last round this process ran (tests, metrics). */
  get last(): RoundResult | undefined {
    return this.lastRound;
  }

  /** One check: the round when this engine leads and one is due, else undefined. */
  async pass(opts: { force?: boolean } = {}): Promise<RoundResult | undefined> {
    const { db, quotes, clock, lease, intervalMs, logger } = this.deps;
    if (!(await lease.tryAcquire())) return undefined;
    const result = await snapshotRound(db, quotes, { intervalMs, marketOpen: clock.isOpen(Date.now()), force: opts.force });
    if (!result) return undefined;
    this.lastRound = result;
    const deleted = await compactHistory(db);
    logger.debug({ round: result.roundNo.toString(), users: result.users, points: result.points, dbMs: Math.round(result.dbMs), deleted }, 'portfolio snapshot round');
    return result;
  }
}

// ---------------------------------------------------------------------------------------------
// A user's history (GET /users/{id}/portfolio/history)
// ---------------------------------------------------------------------------------------------

export const HISTORY_PERIODS = ['1D', '1W', '1M', '3M', '1A', 'all'] as const;
export type HistoryPeriod = (typeof HISTORY_PERIODS)[number];
export const HISTORY_TIMEFRAMES = ['1Min', '5Min', '15Min', '1H', '1D'] as const;
export type HistoryTimeframe = (typeof HISTORY_TIMEFRAMES)[number];

export const PERIOD_MS: Record<Exclude<HistoryPeriod, 'all'>, number> = {
  '1D': DAY_MS,
  '1W': 7 * DAY_MS,
  '1M': 30 * DAY_MS,
  '3M': 90 * DAY_MS,
  '1A': 365 * DAY_MS,
};
export const TIMEFRAME_MS: Record<HistoryTimeframe, number> = { '1Min': MINUTE_MS, '5Min': 5 * MINUTE_MS, '15Min': 15 * MINUTE_MS, '1H': 60 * MINUTE_MS, '1D': DAY_MS };

/** The timeframe a period gets when the client names none (as history is kept: 1-minute points for a day, 15-minute ones for a month). */
export const DEFAULT_TIMEFRAME: Record<HistoryPeriod, HistoryTimeframe> = { '1D': '5Min', '1W': '15Min', '1M': '1H', '3M': '1D', '1A': '1D', all: '1D' };
/** Points one answer reads at most (the newest); downsampling keeps far fewer a user. */
export const HISTORY_POINTS_MAX = 50_000;

export interface HistoryPoint {
  /** The start of the timeframe bucket (epoch seconds, UTC-aligned). */
  timestamp: number;
  equity: Cash;
  profitLoss: Cash;
  /** Percent with 4 decimals; null when the base is not positive. */
  profitLossPct: Pct4 | null;
}

/**
 * The user's equity over `period`, one value per `timeframe` bucket that holds a point (the last
 * point in it); the value before the period opens the series at the period's first bucket. A
 * bucket without a point means "unchanged since the previous one".
 */
export async function portfolioHistory(
  db: Executor,
  userId: string,
  period: HistoryPeriod,
  timeframe: HistoryTimeframe,
  nowMs = Date.now(),
  /** The period ends at this instant instead of now (Alpaca's date_end): later points are left out. */
  endMs?: number,
): Promise<HistoryPoint[]> {
  const tfMs = TIMEFRAME_MS[timeframe];
  const toMs = endMs ?? nowMs;
  const from = period === 'all' ? null : new Date(toMs - PERIOD_MS[period]);
  const { opening, points } = await repo.listPoints(db, userId, from, HISTORY_POINTS_MAX, endMs === undefined ? null : new Date(endMs));
  const series: HistoryPoint[] = [];
  const push = (atMs: number, row: repo.PointRow) => {
    const bucket = Math.floor(atMs / tfMs) * tfMs;
    const equity = cashFromDb(row.equity);
    const base = cashFromDb(row.base);
    const point = { timestamp: bucket / 1000, equity, profitLoss: equity - base, profitLossPct: profitLossPct(equity, base) };
    if (series.length > 0 && series[series.length - 1]!.timestamp === point.timestamp) series[series.length - 1] = point;
    else series.push(point);
  };
  if (opening && from) push(from.getTime(), opening);
  for (const p of points) push(p.at.getTime(), p);
  return series;
}

// ---------------------------------------------------------------------------------------------
// Leaderboard
// ---------------------------------------------------------------------------------------------

export interface LeaderboardEntry {
  rank: number;
  userId: string;
  name: string;
  equity: Cash;
  /** (equity - base) / base in percent, 4 decimals ("0.0000" when the base is not positive). */
  returnPct: string;
  /** Annualised, 4 decimals; null with fewer than 2 returns or none that vary. */
  sharpe: string | null;
  /** Percent, 4 decimals, with the live point folded in. */
  maxDrawdownPct: string;
  /** Fills since the member's metrics started (its last reset, or its first point). */
  trades: number;
}

export interface LeaderboardOptions {
  /** Periods a year of the snapshot interval (core/performance periodsPerYear(calendar, intervalMs)). */
  periodsPerYear: PeriodsPerYear;
  /** Annual risk-free rate, percent × 10^4 (config.leaderboardRiskFreeRatePct). */
  riskFreeRatePct: bigint;
  /** Members ranked at most (a bound on the statement; default 10,000). */
  membersMax?: number;
  now?: () => Date;
}

export const LEADERBOARD_MEMBERS_MAX = 10_000;

/**
 * A class's leaderboard by `metric`. Equity and return are live (current cash and holdings at
 * the current quotes); the Sharpe ratio is the accumulated one (returns up to the last counted
 * round); the maximum drawdown is the accumulated one with the live point folded in. One
 * statement and one quote-store read: no history is scanned.
 */
export async function leaderboard(
  db: Executor,
  quotes: QuoteStore,
  classId: string,
  metric: RankMetric,
  options: LeaderboardOptions,
): Promise<{ asOf: Date; entries: LeaderboardEntry[] }> {
  const { members, periodNo } = await repo.readClassMembers(db, classId, options.membersMax ?? LEADERBOARD_MEMBERS_MAX);
  const prices = await pricesOf(quotes, tickersOf(members));
  const asOf = (options.now ?? (() => new Date()))();
  const rows = members.map((m) => {
    const equity = equityOf(cashFromDb(m.cash_balance), toHoldings(m.tickers, m.quantities, m.avg_costs), prices);
    const base = cashFromDb(m.net_contributions);
    const acc = accumulatorOf(m);
    const count = m.start_period === null ? 0n : periodNo - BigInt(m.start_period);
    const liveR = m.period_equity === null ? 0n : intervalReturn(cashFromDb(m.period_equity), equity, cashFromDb(m.period_base!), base);
    const ratio = returnRatio(equity, base);
    return {
      userId: m.user_id,
      name: m.name,
      equity,
      returnRatio: ratio,
      sharpe: sharpe(acc, count, options.periodsPerYear, options.riskFreeRatePct),
      maxDrawdown: maxDrawdownWithLive(acc, liveR),
      trades: Number(m.trades),
    };
  });
  const bases = new Map(members.map((m) => [m.user_id, cashFromDb(m.net_contributions)]));
  const base = (userId: string) => bases.get(userId) ?? 0n;
  const entries = rankEntries(rows, metric).map((r) => ({
    rank: r.rank,
    userId: r.userId,
    name: r.name,
    equity: r.equity,
    // Rounded once from the exact quotient (the ratio ranks; the percent is shown).
    returnPct: formatPct4(profitLossPct(r.equity, base(r.userId)) ?? 0n),
    sharpe: formatSharpe(r.sharpe),
    maxDrawdownPct: formatPct4(ratioToPct4(r.maxDrawdown)),
    trades: r.trades,
  }));
  return { asOf, entries };
}

// ---------------------------------------------------------------------------------------------
// A user's history ending at a given instant, and the last close (the Alpaca facade)
// ---------------------------------------------------------------------------------------------

/** The user's current base (net contributions: initial cash, deposits, withdrawals; a reset restarts it). */
export async function currentBase(db: Executor, userId: string): Promise<Cash | undefined> {
  return (await repo.getBalanceWithBase(db, userId))?.base;
}

/**
 * The user's equity at its latest session close — or at its latest reset, when that came after
 * (a reset restarts the account) — at or before `atOrBefore`; undefined when history has
 * neither yet.
 */
export async function lastCloseEquity(db: Executor, userId: string, atOrBefore = new Date()): Promise<{ at: Date; equity: Cash; kind: repo.PointKind } | undefined> {
  const row = await repo.latestClosePoint(db, userId, atOrBefore);
  return row && { at: row.at, equity: cashFromDb(row.equity), kind: row.kind };
}
