/**
 * Performance metrics of an equity series, exactly in bigint: interval returns that do not count
 * deposits and withdrawals as gains, a running accumulator (so a leaderboard reads a few numbers
 * per user instead of scanning history), the Sharpe ratio, the maximum drawdown and the return,
 * and the ranking of a leaderboard. Pure: no I/O, no clock.
 *
 * Returns and indexes are fixed point with RATIO_SCALE (12) decimals: r = 0.015 is 15_000_000_000n.
 * Squares of returns are kept at twice that scale, so sums of squares are exact.
 */
import { assert } from './errors.js';
import { divRound, formatFixed, type Cash } from './money.js';

export type Ratio = bigint;
export const RATIO_SCALE = 12;
export const RATIO_ONE: Ratio = 10n ** BigInt(RATIO_SCALE);
/** Percents are shown with 4 decimals ("12.3456" is 12.3456 %). */
export const PCT_DECIMALS = 4;
/** The Sharpe ratio is shown with 4 decimals. */
export const SHARPE_DECIMALS = 4;

/**
 * The return of one interval: r = (E - E_prev - (B - B_prev)) / E_prev, where E is the equity and
 * B the base (net contributions), so a deposit or withdrawal moves E and B alike and is no gain.
 * 0 when E_prev <= 0 (nothing was at stake). Rounded half-up to 12 decimals.
 */
export function intervalReturn(prevEquity: Cash, equity: Cash, prevBase: Cash, base: Cash): Ratio {
  if (prevEquity <= 0n) return 0n;
  const gain = equity - prevEquity - (base - prevBase);
  return divRound(gain * RATIO_ONE, prevEquity, 'half-up');
}

/** The running sums of a user's returns since its start (count is kept outside: see sharpe). */
export interface Accumulator {
  /** Σ r, scale 12. */
  sumR: bigint;
  /** Σ r², scale 24 (each r² exact). */
  sumR2: bigint;
  /** Π (1 + r), scale 12, starting at 1; never below 0. */
  index: Ratio;
  /** The highest index so far, scale 12 (at least 1: the start). */
  peak: Ratio;
  /** max over t of (peak - index) / peak, scale 12, from 0 to 1. */
  maxDrawdown: Ratio;
}

export const ACCUMULATOR_START: Accumulator = Object.freeze({ sumR: 0n, sumR2: 0n, index: RATIO_ONE, peak: RATIO_ONE, maxDrawdown: 0n });

/**
 * Folds one return into the accumulator. A zero return changes nothing (which is why intervals in
 * which a user's equity did not move need no write: only the count, kept globally, grows). The
 * index is floored at 0: a return below -100 % (a deposit lost in the same interval) ends it.
 */
export function accumulate(acc: Accumulator, r: Ratio): Accumulator {
  if (r === 0n) return acc;
  const growth = RATIO_ONE + r;
  const index = growth <= 0n ? 0n : divRound(acc.index * growth, RATIO_ONE, 'half-up');
  const peak = index > acc.peak ? index : acc.peak;
  const drawdown = drawdownOf(peak, index);
  return {
    sumR: acc.sumR + r,
    sumR2: acc.sumR2 + r * r,
    index,
    peak,
    maxDrawdown: drawdown > acc.maxDrawdown ? drawdown : acc.maxDrawdown,
  };
}

/** (peak - index) / peak, half-up to 12 decimals; 0 at or above the peak. */
export function drawdownOf(peak: Ratio, index: Ratio): Ratio {
  assert(peak > 0n, 'the peak index is positive');
  if (index >= peak) return 0n;
  return divRound((peak - index) * RATIO_ONE, peak, 'half-up');
}

/**
 * The maximum drawdown with a live point folded in: the accumulator's maximum, or the drawdown of
 * the index the return `liveR` (from the last counted period to now) would give, if larger.
 */
export function maxDrawdownWithLive(acc: Accumulator, liveR: Ratio): Ratio {
  return accumulate(acc, liveR).maxDrawdown;
}

/** Minutes of trading a year: `always` trades all day every day, `nyse` 252 days of 6.5 hours. */
export const MINUTES_PER_YEAR = { always: 365n * 24n * 60n, nyse: 252n * 390n } as const;

/** Periods a year as a fraction: minutes a year / interval minutes = minutes × 60000 / interval ms. */
export interface PeriodsPerYear {
  num: bigint;
  den: bigint;
}

export function periodsPerYear(calendar: 'always' | 'nyse', intervalMs: number): PeriodsPerYear {
  assert(Number.isSafeInteger(intervalMs) && intervalMs > 0, 'the interval is a positive whole number of ms');
  return { num: MINUTES_PER_YEAR[calendar] * 60_000n, den: BigInt(intervalMs) };
}

/** Percent with 4 decimals as an integer (12.3456 % = 123456n): how the risk-free rate is configured. */
export type Pct4 = bigint;

/** Integer square root: the largest k with k² <= n. */
export function isqrt(n: bigint): bigint {
  assert(n >= 0n, 'square root of a non-negative number');
  if (n < 2n) return n;
  // Newton's method from a power of two above the root: decreases monotonically to the floor.
  let x = 1n << BigInt(Math.ceil(n.toString(2).length / 2));
  for (;;) {
    const y = (x + n / x) >> 1n;
    if (y >= x) return x;
    x = y;
  }
}

/**
 * sqrt(a / b) × 10^decimals rounded half-up to an integer, for a >= 0, b > 0, exactly: with
 * z = a·10^(2d)/b and k = floor(sqrt(z)) (= isqrt(floor(z))), the root rounds up exactly when
 * sqrt(z) >= k + 1/2, that is when 4a·10^(2d) >= (2k + 1)² b.
 */
export function sqrtRatioHalfUp(a: bigint, b: bigint, decimals: number): bigint {
  assert(a >= 0n && b > 0n, 'sqrt of a non-negative ratio');
  const scaled = a * 10n ** BigInt(2 * decimals);
  const k = isqrt(scaled / b);
  return 4n * scaled >= (2n * k + 1n) ** 2n * b ? k + 1n : k;
}

/**
 * The annualised Sharpe ratio, × 10^4 and rounded half-up (a sign-symmetric rounding: half away
 * from zero): mean(r - rf) / s × sqrt(P), where s is the sample standard deviation of the `count`
 * returns (the accumulator's non-zero ones plus zeros), P the periods per year and
 * rf = annual rate / P. Null when count < 2 or the returns do not vary.
 *
 * With s1 = Σr·10^12, s2 = Σr²·10^24, n = count, P = Pn/Pd, rf% = q/10^4:
 *   mean - rf = Xn / Xd,  Xn = s1·10^6·Pn - q·Pd·n·10^12,  Xd = n·10^18·Pn
 *   s² = Vn / Vd,         Vn = n·s2 - s1²,                 Vd = n(n-1)·10^24
 *   Sharpe² = (Xn² · Pn · Vd) / (Xd² · Pd · Vn)
 * and Sharpe = sign(Xn) · sqrt of that.
 */
export function sharpe(acc: Pick<Accumulator, 'sumR' | 'sumR2'>, count: bigint, perYear: PeriodsPerYear, riskFreePct: Pct4): bigint | null {
  if (count < 2n) return null;
  const n = count;
  const vn = n * acc.sumR2 - acc.sumR * acc.sumR;
  if (vn <= 0n) return null;
  const xn = acc.sumR * 10n ** 6n * perYear.num - riskFreePct * perYear.den * n * RATIO_ONE;
  const xd = n * 10n ** 18n * perYear.num;
  const vd = n * (n - 1n) * RATIO_ONE * RATIO_ONE;
  const magnitude = sqrtRatioHalfUp(xn * xn * perYear.num * vd, xd * xd * perYear.den * vn, SHARPE_DECIMALS);
  return xn < 0n ? -magnitude : magnitude;
}

export function formatSharpe(value: bigint | null): string | null {
  return value === null ? null : formatFixed(value, SHARPE_DECIMALS);
}

/** A ratio (scale 12) as a percent with 4 decimals, half-up: 0.0123456789 → "1.2346". */
export function ratioToPct4(r: Ratio): Pct4 {
  return divRound(r * 100n * 10n ** BigInt(PCT_DECIMALS), RATIO_ONE, 'half-up');
}

export function formatPct4(p: Pct4): string {
  return formatFixed(p, PCT_DECIMALS);
}

/** (equity - base) / base as a ratio (scale 12, half-up); 0 when base <= 0 (nothing put in). */
export function returnRatio(equity: Cash, base: Cash): Ratio {
  if (base <= 0n) return 0n;
  return divRound((equity - base) * RATIO_ONE, base, 'half-up');
}

/** (equity - base) / base in percent with 4 decimals, half-up; null when base <= 0. */
export function profitLossPct(equity: Cash, base: Cash): Pct4 | null {
  if (base <= 0n) return null;
  return divRound((equity - base) * 100n * 10n ** BigInt(PCT_DECIMALS), base, 'half-up');
}

export type RankMetric = 'return' | 'sharpe' | 'max_drawdown';
export const RANK_METRICS: readonly RankMetric[] = ['return', 'sharpe', 'max_drawdown'];

/** What ranking needs of an entry. */
export interface Rankable {
  userId: string;
  /** (equity - base) / base, scale 12. */
  returnRatio: Ratio;
  /** × 10^4, or null (too few returns, or none vary). */
  sharpe: bigint | null;
  /** Scale 12, 0 to 1. */
  maxDrawdown: Ratio;
}

function compareBigDesc(a: bigint, b: bigint): number {
  return a > b ? -1 : a < b ? 1 : 0;
}

/**
 * Orders entries by `metric` (return: higher first; sharpe: higher first, null last;
 * max_drawdown: smaller first), ties by return (higher first) and then user id (ascending), and
 * numbers them 1, 2, 3 ... — every entry gets its own rank, the same for the same inputs.
 */
export function rankEntries<T extends Rankable>(entries: readonly T[], metric: RankMetric): (T & { rank: number })[] {
  const byMetric = (a: T, b: T): number => {
    switch (metric) {
      case 'return':
        return 0;
      case 'sharpe':
        if (a.sharpe === null || b.sharpe === null) return a.sharpe === b.sharpe ? 0 : a.sharpe === null ? 1 : -1;
        return compareBigDesc(a.sharpe, b.sharpe);
      case 'max_drawdown':
        return -compareBigDesc(a.maxDrawdown, b.maxDrawdown);
    }
  };
  return [...entries]
    .sort((a, b) => byMetric(a, b) || compareBigDesc(a.returnRatio, b.returnRatio) || (a.userId < b.userId ? -1 : a.userId > b.userId ? 1 : 0))
    .map((e, i) => ({ ...e, rank: i + 1 }));
}
