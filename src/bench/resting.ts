/**
 * `papertrade bench --resting`: the pure parts of the resting-orders scenario — the orders it
 * places, the Prometheus text it reads back from the engine (the tick-evaluation histogram, the
 * index gauge, the heap), what a histogram says about its quantiles, the targets and the
 * report. The scenario itself (placing, waiting, crossing, measuring) is resting-run.ts; the
 * sequence is in bench.ts.
 *
 * Prices are exact (bigint, 4 decimals, core/money.ts) from the quote to the request body: the
 * distances are in basis points, and only the random draw that picks a distance is a float.
 */
import { divRound, formatFixed, formatPrice, type Price } from '../core/money.js';
import type { OrderType, Side } from '../core/order-terms.js';
import { machineLine, type BenchReport, type LatencySummary, type PgSummary, type ProcessCpu } from './report.js';
import { uniformFrom } from '../infra/random.js';

/** Resting orders placed when --resting-orders is not given. */
export const RESTING_ORDERS_DEFAULT = 100_000;
export const RESTING_ORDERS_MAX = 1_000_000;
/** Limit buys the crossing tick crosses when --resting-cross is not given. */
export const CROSS_ORDERS_DEFAULT = 1_000;
export const CROSS_ORDERS_MAX = 10_000;
/** Seconds of each idle window (ticks from the feed, no orders) when --resting-idle is not given. */
export const RESTING_IDLE_S_DEFAULT = 20;
/** Crossings made one after the other (each with fresh limit buys) when --resting-cross-repeats is not given. */
export const CROSS_REPEATS_DEFAULT = 3;
export const CROSS_REPEATS_MAX = 20;

/** Background orders are this far from the price when placed (basis points, inclusive). */
export const AWAY_BPS_MIN = 1_000n;
export const AWAY_BPS_MAX = 3_000n;
/** A stop_limit's limit beyond its stop: 1 % (a buy's above, a sell's below). */
export const STOP_LIMIT_SPREAD_BPS = 100n;
/** The crossing's limit buys sit this far under the price (bps): out of the feed's reach for the seconds they wait. */
export const CROSS_NEAR_BPS_MIN = 20n;
export const CROSS_NEAR_BPS_MAX = 60n;
/** The crossing tick: this far under the price (bps), below every limit of the crossing. */
export const CROSS_TICK_BPS = 100n;

/** The targets of the issue. */
export const TARGET_TICK_EVAL_US = 50;
export const TARGET_CROSS_MS = 1_000;
export const TARGET_BYTES_PER_ORDER = 300;
export const TARGET_THROUGHPUT_RATIO = 0.9;

const BPS = 10_000n;

export interface RestingOptions {
  orders: number;
  cross: number;
  crossRepeats: number;
  idleS: number;
}

// ---------------------------------------------------------------------------------------------
// The orders

/** How a background order rests: the order type, and for trailing stops which trail it takes. */
export type RestingKind = 'limit' | 'stop' | 'stop_limit' | 'trailing_stop (trail_price)' | 'trailing_stop (trail_percent)';

/**
 * The mix, repeated every 20 orders of a ticker: 30 % limits, 20 % stops, 20 % stop_limits,
 * 15 % trailing stops by price and 15 % by percent (exact shares, not drawn).
 */
export const KIND_CYCLE: readonly RestingKind[] = [
  ...Array<RestingKind>(6).fill('limit'),
  ...Array<RestingKind>(4).fill('stop'),
  ...Array<RestingKind>(4).fill('stop_limit'),
  ...Array<RestingKind>(3).fill('trailing_stop (trail_price)'),
  ...Array<RestingKind>(3).fill('trailing_stop (trail_percent)'),
];

/** What POST /orders gets beside user, ticker, quantity and time in force. */
export interface RestingTerms {
  side: Side;
  type: OrderType;
  limit_price?: string;
  stop_price?: string;
  trail_price?: string;
  trail_percent?: string;
}

/** price × (10,000 + bps) / 10,000, rounded half up (bps may be negative). */
export function offsetBps(price: Price, bps: bigint): Price {
  return divRound(price * (BPS + bps), BPS, 'half-up');
}

/**
 * A background order `awayBps` from `price`, on the side where the price has to travel that far
 * to reach it: limits on the far side of the market (a buy below, a sell above), stops beyond it
 * (a buy above, a sell below), trailing stops with a trail of that size.
 */
export function restingTerms(kind: RestingKind, side: Side, price: Price, awayBps: bigint): RestingTerms {
  const buy = side === 'buy';
  const below = offsetBps(price, -awayBps);
  const above = offsetBps(price, awayBps);
  switch (kind) {
    case 'limit':
      return { side, type: 'limit', limit_price: formatPrice(buy ? below : above) };
    case 'stop':
      return { side, type: 'stop', stop_price: formatPrice(buy ? above : below) };
    case 'stop_limit': {
      const stop = buy ? above : below;
      const limit = offsetBps(stop, buy ? STOP_LIMIT_SPREAD_BPS : -STOP_LIMIT_SPREAD_BPS);
      return { side, type: 'stop_limit', stop_price: formatPrice(stop), limit_price: formatPrice(limit) };
    }
    case 'trailing_stop (trail_price)':
      return { side, type: 'trailing_stop', trail_price: formatPrice(divRound(price * awayBps, BPS, 'half-up')) };
    case 'trailing_stop (trail_percent)':
      // Hundredths of a percent are basis points: 1,000 bps is "10.00".
      return { side, type: 'trailing_stop', trail_percent: formatFixed(awayBps, 2) };
  }
}


export interface PlannedOrder {
  ticker: string;
  kind: RestingKind;
  terms: RestingTerms;
}

/**
 * The `count` background orders over `quotes` (every ticker in turn, so each gets count / T):
 * of each ticker's orders, a buy and a sell of each kind in KIND_CYCLE's order, the distance
 * drawn uniformly in [AWAY_BPS_MIN, AWAY_BPS_MAX].
 */
export function planRestingOrders(count: number, quotes: readonly { ticker: string; price: Price }[], seed = 20_261_203): PlannedOrder[] {
  if (quotes.length === 0) throw new Error('no ticker to place resting orders on');
  const rand = uniformFrom(seed);
  const span = Number(AWAY_BPS_MAX - AWAY_BPS_MIN) + 1;
  const out: PlannedOrder[] = new Array<PlannedOrder>(count);
  for (let i = 0; i < count; i++) {
    const q = quotes[i % quotes.length]!;
    const nth = Math.floor(i / quotes.length);
    const kind = KIND_CYCLE[Math.floor(nth / 2) % KIND_CYCLE.length]!;
    const side: Side = nth % 2 === 0 ? 'buy' : 'sell';
    const away = AWAY_BPS_MIN + BigInt(Math.min(span - 1, Math.floor(rand() * span)));
    out[i] = { ticker: q.ticker, kind, terms: restingTerms(kind, side, q.price, away) };
  }
  return out;
}

/** The body of POST /orders for one order: one share, good till canceled. */
export function orderJson(userId: string, ticker: string, terms: RestingTerms, timeInForce = 'gtc'): string {
  return JSON.stringify({ user_id: userId, ticker, quantity: '1', time_in_force: timeInForce, ...terms });
}

/** The crossing: `n` limit-buy prices spread over [price − 60 bps, price − 20 bps], and the tick below them all. */
export function crossingPlan(price: Price, n: number): { limits: Price[]; tick: Price } {
  const spread = CROSS_NEAR_BPS_MAX - CROSS_NEAR_BPS_MIN;
  const limits: Price[] = [];
  for (let i = 0; i < n; i++) {
    // Basis points with 2 more decimals, so 1,000 limits are not all on 41 levels.
    const hundredths = CROSS_NEAR_BPS_MIN * 100n + (n === 1 ? 0n : (spread * 100n * BigInt(i)) / BigInt(n - 1));
    limits.push(divRound(price * (BPS * 100n - hundredths), BPS * 100n, 'down'));
  }
  return { limits, tick: offsetBps(price, -CROSS_TICK_BPS) };
}

// ---------------------------------------------------------------------------------------------
// Prometheus text

interface Sample {
  labels: string;
  value: number;
}

function promNumber(raw: string): number {
  if (raw === '+Inf') return Infinity;
  if (raw === '-Inf') return -Infinity;
  return Number(raw);
}

/** Every sample of metric `name` (exactly that name) in a Prometheus text exposition. */
export function metricSamples(text: string, name: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith(name) || line.startsWith('#')) continue;
    const m = /^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (m && m[1] === name) out.push({ labels: m[2] ?? '', value: promNumber(m[3]!) });
  }
  return out;
}

/** A gauge's or counter's value (summed over its label sets), undefined when absent. */
export function gaugeValue(text: string, name: string): number | undefined {
  const samples = metricSamples(text, name);
  return samples.length === 0 ? undefined : samples.reduce((s, x) => s + x.value, 0);
}

export interface HistogramSnapshot {
  /** Cumulative counts by upper bound, ascending; the last is +Inf. */
  buckets: { le: number; count: number }[];
  sum: number;
  count: number;
}

/** A histogram (its label sets summed), undefined when absent. */
export function readHistogram(text: string, name: string): HistogramSnapshot | undefined {
  const bucketSamples = metricSamples(text, `${name}_bucket`);
  if (bucketSamples.length === 0) return undefined;
  const byLe = new Map<number, number>();
  for (const s of bucketSamples) {
    const le = /(?:^|,)le="([^"]+)"/.exec(s.labels)?.[1];
    if (le === undefined) continue;
    const bound = promNumber(le);
    byLe.set(bound, (byLe.get(bound) ?? 0) + s.value);
  }
  const buckets = [...byLe.entries()].sort((a, b) => a[0] - b[0]).map(([le, count]) => ({ le, count }));
  return { buckets, sum: gaugeValue(text, `${name}_sum`) ?? 0, count: gaugeValue(text, `${name}_count`) ?? 0 };
}

/** What was observed between two snapshots of the same histogram. */
export function histogramDelta(before: HistogramSnapshot, after: HistogramSnapshot): HistogramSnapshot {
  const was = new Map(before.buckets.map((b) => [b.le, b.count]));
  return {
    buckets: after.buckets.map((b) => ({ le: b.le, count: b.count - (was.get(b.le) ?? 0) })),
    sum: after.sum - before.sum,
    count: after.count - before.count,
  };
}

/**
 * The q-quantile as Prometheus' histogram_quantile estimates it: find the bucket holding rank
 * q × count, and interpolate linearly between its bounds (from 0 for the first bucket). `upper`
 * is that bucket's upper bound, a sure upper bound of the quantile (Infinity when the rank falls
 * in the +Inf bucket; the estimate is then the highest finite bound). Null with no sample.
 */
export function histogramQuantile(h: HistogramSnapshot, q: number): { estimate: number; upper: number } | null {
  if (h.count <= 0 || h.buckets.length === 0) return null;
  const rank = q * h.count;
  let lower = 0;
  let below = 0;
  for (const b of h.buckets) {
    if (b.count >= rank && b.count > below) {
      if (b.le === Infinity) return { estimate: lower, upper: Infinity };
      return { estimate: lower + ((b.le - lower) * (rank - below)) / (b.count - below), upper: b.le };
    }
    lower = b.le;
    below = b.count;
  }
  return { estimate: lower, upper: Infinity };
}

/** The share of observations at or below `bound` (exact when `bound` is a bucket bound, else null). */
export function shareAtOrBelow(h: HistogramSnapshot, bound: number): number | null {
  if (h.count <= 0) return null;
  const b = h.buckets.find((x) => x.le === bound);
  return b === undefined ? null : b.count / h.count;
}

export interface TickEvalStats {
  ticks: number;
  /** sum / count of the histogram: exact. */
  meanUs: number;
  /** Linear interpolation inside the bucket (histogram_quantile). */
  p50Us: number;
  p99Us: number;
  /** Upper bound of the bucket holding the 99th percentile: p99 is surely below it (null: the +Inf bucket). */
  p99UpperUs: number | null;
  /** Share of ticks evaluated in at most 50 µs (50 µs is a bucket bound: exact). */
  within50UsShare: number | null;
  /** Upper bound of the highest bucket with an observation: every tick took at most this (null: +Inf). */
  maxUpperUs: number | null;
}

const us = (s: number) => Math.round(s * 1e6 * 1_000) / 1_000;

export function tickEvalStats(h: HistogramSnapshot | undefined): TickEvalStats | null {
  if (h === undefined || h.count <= 0) return null;
  const p50 = histogramQuantile(h, 0.5)!;
  const p99 = histogramQuantile(h, 0.99)!;
  let maxUpper = 0;
  let below = 0;
  for (const b of h.buckets) {
    if (b.count > below) maxUpper = b.le;
    below = b.count;
  }
  return {
    ticks: h.count,
    meanUs: us(h.sum / h.count),
    p50Us: us(p50.estimate),
    p99Us: us(p99.estimate),
    p99UpperUs: p99.upper === Infinity ? null : us(p99.upper),
    within50UsShare: shareAtOrBelow(h, 50e-6),
    maxUpperUs: maxUpper === Infinity ? null : us(maxUpper),
  };
}

// ---------------------------------------------------------------------------------------------
// Memory

/** Heap (and RSS) growth per order, bytes; null when either reading or the count is missing. */
export function perOrderBytes(before: number | null | undefined, after: number | null | undefined, orders: number): number | null {
  if (before === null || before === undefined || after === null || after === undefined || orders <= 0) return null;
  return Math.round((after - before) / orders);
}

/** min and median of samples (null when there are none). */
export function minMedian(values: readonly number[]): { min: number; median: number; n: number } | null {
  if (values.length === 0) return null;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return { min: s[0]!, median: s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2, n: s.length };
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const field = (o: unknown, ...keys: string[]): unknown => keys.reduce<unknown>((x, k) => (x && typeof x === 'object' ? (x as Record<string, unknown>)[k] : undefined), o);

/**
 * The figures of the index micro-benchmark's JSON, read defensively: its output changes with the
 * index. Memory: what the index retains (heap + array buffers) where it says so, else the older
 * heapUsed total (order objects + index).
 */
export function readMicroBench(raw: unknown): Omit<MicroBench, 'command' | 'error'> {
  const retained = num(field(raw, 'bytesPerOrder', 'retained', 'total'));
  const older = num(field(raw, 'heapBytesPerOrder', 'total'));
  return {
    orders: num(field(raw, 'orders')),
    bytesPerOrder: retained ?? older,
    figure: retained !== null ? 'bytesPerOrder.retained.total' : older !== null ? 'heapBytesPerOrder.total' : null,
    callerObjectsBytesPerOrder: num(field(raw, 'bytesPerOrder', 'callerObjects', 'total')) ?? num(field(raw, 'heapBytesPerOrder', 'orderObjects')),
    quietTickMeanUs: num(field(raw, 'quietTick', 'meanUs')),
    quietTickP99Us: num(field(raw, 'quietTick', 'p99Us')),
    crossingTickMeanMs: num(field(raw, 'crossingTick', 'meanMs')),
    raw,
  };
}

// ---------------------------------------------------------------------------------------------
// The report

/** How the process fared over a window: what makes its other figures suspect. */
export interface WindowHealth {
  /** nodejs_eventloop_lag_max_seconds, the highest of the scrapes in the window (each covers the time since the one before), ms. */
  eventLoopLagMaxMs: number | null;
  /** Lines "resting watcher lost its lease" / "feed leadership lost" the process logged in the window. */
  watcherLeaseLost: number | null;
  feedLeadershipLost: number | null;
  /** papertrade_resting_orders at the window's end (0: the watcher was not leading then). */
  restingAtEnd: number | null;
}

/** The closed-loop market-order measurement of one phase (as the plain bench reports it). */
export interface MarketPhase {
  label: string;
  /** papertrade_resting_orders at the start of the phase (orders in the leader's index). */
  restingInIndex: number | null;
  http: { sent: number; ok: number; acceptedPerS: number; latencyMs: LatencySummary; unfinished: number };
  db: { accepted: number; filled: number; acceptedPerS: number; filledPerS: number; rejected: Record<string, number>; acceptToFillMs: LatencySummary };
  sides: { buy: number; sell: number };
  processes: ProcessCpu[];
  postgres: PgSummary;
  errors: Record<string, number>;
  drain: { ms: number; pendingLeft: number };
  /** The index's evaluation time per tick over the steady window (under the load). */
  tickEval: TickEvalStats | null;
  /** Resting orders the ticks executed during the steady window (should be 0). */
  restingExecutions: number | null;
  /** Rows of `orders` updated in the window (pg_stat_user_tables), per order accepted: a fill is one; the rest is the watcher's writes. */
  ordersRowUpdatesPerOrder: number | null;
  health: WindowHealth;
}

export interface IdleWindow {
  seconds: number;
  restingInIndex: number | null;
  tickEval: TickEvalStats | null;
  restingExecutions: number | null;
  /** Rows of `orders` updated per second (pg_stat_user_tables): with no order coming in, the watcher writing trailing levels back. */
  ordersRowUpdatesPerS: number | null;
  /** nodejs_heap_size_used_bytes + nodejs_external_memory_bytes (array buffers are external) every IDLE_SAMPLE_MS, no forced GC. */
  heap: { min: number; median: number; n: number } | null;
  rss: { min: number; median: number; n: number } | null;
  health: WindowHealth;
  /** CPU of each process over the window (no orders: "per order" is n/a), what the resting orders cost at rest. */
  processes: ProcessCpu[];
}

/** process.memoryUsage() of the child. */
export interface HeapReading {
  heapUsed: number;
  /** Memory of ArrayBuffers (off the JS heap, part of `external`): an index may keep its arrays there. */
  arrayBuffers: number;
  external: number;
  rss: number;
}

/** What an index holds is on the JS heap and in array buffers. */
export const heapAndBuffers = (h: HeapReading) => h.heapUsed + h.arrayBuffers;

export interface MicroBench {
  command: string;
  orders: number | null;
  /** Bytes per order after forced GCs, and the field of its output it was read from (its shape changes with the index). */
  bytesPerOrder: number | null;
  figure: string | null;
  /** The order objects as the watcher builds them, apart (when the micro-benchmark says). */
  callerObjectsBytesPerOrder: number | null;
  quietTickMeanUs: number | null;
  quietTickP99Us: number | null;
  crossingTickMeanMs: number | null;
  /** The micro-benchmark's whole output. */
  raw: unknown;
  error: string | null;
}

export interface CrossingResult {
  ticker: string;
  orders: number;
  /** The price the crossing's limits were placed under (GET /prices just before). */
  basePrice: string;
  limitsLow: string;
  limitsHigh: string;
  tickPrice: string;
  /** Epoch ms: the PUT sent, its answer, and the tick's as_of (stamped by the api). */
  sentAtMs: number;
  asOfMs: number;
  /** as_of − send (the api's clock and the bench's are the same machine's). */
  sendToAsOfMs: number;
  /** max(filled_at) − as_of: to the START of the last fill transaction (filled_at is now()). */
  asOfToLastFilledAtMs: number;
  /** max(filled_at) − the PUT's send. */
  sendToLastFilledAtMs: number;
  asOfToFirstFilledAtMs: number;
  /** From the send to the poll that first saw every order FILLED (committed), and the poll interval. */
  sendToAllVisibleMs: number;
  pollIntervalMs: number;
  /** Distinct filled_at: the fill transactions. */
  transactions: number;
  /** Every order filled at the crossing tick's price. */
  filledAtTickPrice: boolean;
  executionsCounted: number | null;
}

export interface TargetRow {
  what: string;
  target: string;
  value: string;
  met: boolean | null;
}

export interface RestingReport {
  kind: 'resting';
  timestamp: string;
  machine: BenchReport['machine'];
  versions: BenchReport['versions'];
  settings: BenchReport['settings'] & {
    resting: {
      orders: number;
      cross: number;
      crossRepeats: number;
      idleS: number;
      tickers: number;
      timeInForce: 'gtc';
      quantity: '1';
      awayBps: [number, number];
      seededTickers: number;
    };
  };
  placement: {
    orders: number;
    ms: number;
    perS: number;
    byKind: Record<string, number>;
    bySide: { buy: number; sell: number };
    /** From the last answer to every order OPEN and in the index (the gauge). */
    indexedAfterMs: number;
    concurrency: number;
  };
  idle: { without: IdleWindow; with: IdleWindow };
  memory: {
    /** After a forced full GC (the inspector's HeapProfiler.collectGarbage), before and after; per order: heapUsed + arrayBuffers. */
    forcedGc: { before: HeapReading; after: HeapReading; heapPerOrder: number | null; rssPerOrder: number | null } | null;
    forcedGcNote: string | null;
    /** Without a forced GC: the minimum and median of heap used + external over each idle window. */
    noGc: { minPerOrder: number | null; medianPerOrder: number | null; rssMedianPerOrder: number | null };
    ordersAdded: number;
    micro: MicroBench | null;
  };
  market: { without: MarketPhase; with: MarketPhase; filledRatio: number | null; acceptedRatio: number | null };
  /** One per repeat, in order. */
  crossings: CrossingResult[];
  audit: BenchReport['papertrade']['audit'];
  logs: string;
  targets: TargetRow[];
  notes: string[];
}

const fmt = (v: number, digits = 0) => v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const maybe = (v: number | null | undefined, digits = 0, unit = '') => (v === null || v === undefined ? 'n/a' : `${fmt(v, digits)}${unit}`);
const ms = (v: number) => (v >= 100 ? fmt(v, 0) : v >= 10 ? fmt(v, 1) : fmt(v, 2));
const ratio = (a: number, b: number) => (b > 0 ? a / b : null);

/** The issue's four targets, against this run's figures. */
/** The median of numbers (of an even count, the mean of the middle two); NaN for none. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function restingTargets(r: Pick<RestingReport, 'idle' | 'crossings' | 'memory' | 'market'>): TargetRow[] {
  const e = r.idle.with.tickEval;
  const resting = maybe(r.idle.with.restingInIndex);
  const forced = r.memory.forcedGc?.heapPerOrder ?? null;
  const micro = r.memory.micro?.bytesPerOrder ?? null;
  const memory = forced ?? micro;
  const visible = r.crossings.map((c) => c.sendToAllVisibleMs);
  const lastStart = r.crossings.map((c) => c.asOfToLastFilledAtMs);
  const orders = r.crossings[0]?.orders ?? 0;
  const q = r.market.filledRatio;
  return [
    {
      what: `tick evaluation, nothing triggered, ${resting} resting: mean (sum / count)`,
      target: `≤ ${TARGET_TICK_EVAL_US} µs`,
      value: e ? `${fmt(e.meanUs, 2)} µs over ${fmt(e.ticks)} ticks` : 'n/a',
      met: e ? e.meanUs <= TARGET_TICK_EVAL_US : null,
    },
    {
      what: `… the same ticks: p99 (bucket interpolation; bound: the bucket's top)`,
      target: `≤ ${TARGET_TICK_EVAL_US} µs`,
      value: e ? `≈ ${fmt(e.p99Us, 1)} µs (≤ ${e.p99UpperUs === null ? '∞' : fmt(e.p99UpperUs, 0)} µs); ${e.within50UsShare === null ? 'n/a' : fmt(e.within50UsShare * 100, 2)} % of ticks ≤ 50 µs` : 'n/a',
      met: e ? (e.p99UpperUs ?? Infinity) <= TARGET_TICK_EVAL_US : null,
    },
    {
      what: `one tick crossing ${fmt(orders)} limit buys → all FILLED and visible, from the PUT's send (every one of ${visible.length} crossings)`,
      target: `≤ ${fmt(TARGET_CROSS_MS)} ms`,
      value: visible.length
        ? `median ${fmt(median(visible), 0)} ms, max ${fmt(Math.max(...visible), 0)} ms (last fill transaction started a median ${fmt(median(lastStart), 0)} ms after the tick)`
        : 'n/a',
      met: visible.length ? Math.max(...visible) <= TARGET_CROSS_MS : null,
    },
    {
      what: 'index memory per resting order (engine heap after a forced GC; micro-benchmark)',
      target: `≤ ${TARGET_BYTES_PER_ORDER} B`,
      value: `${maybe(forced, 0, ' B')} engine; ${maybe(micro, 0, ' B')} micro-benchmark`,
      met: memory === null ? null : Math.max(forced ?? 0, micro ?? 0) <= TARGET_BYTES_PER_ORDER,
    },
    {
      what: 'market orders filled/s with the resting orders ÷ without',
      target: `≥ ${fmt(TARGET_THROUGHPUT_RATIO, 2)}`,
      value: q === null ? 'n/a' : fmt(q, 3),
      met: q === null ? null : q >= TARGET_THROUGHPUT_RATIO,
    },
  ];
}

/** Ratio of the "with" phase's filled/s to the "without" phase's. */
export function phaseRatios(without: MarketPhase, withResting: MarketPhase): { filledRatio: number | null; acceptedRatio: number | null } {
  return { filledRatio: ratio(withResting.db.filledPerS, without.db.filledPerS), acceptedRatio: ratio(withResting.db.acceptedPerS, without.db.acceptedPerS) };
}

function evalCells(e: TickEvalStats | null): string[] {
  if (!e) return ['0', 'n/a', 'n/a', 'n/a', 'n/a'];
  return [
    fmt(e.ticks),
    fmt(e.meanUs, 2),
    `${fmt(e.p50Us, 2)} / ${fmt(e.p99Us, 1)}`,
    e.p99UpperUs === null ? '> 100,000' : fmt(e.p99UpperUs, 0),
    e.within50UsShare === null ? 'n/a' : `${fmt(e.within50UsShare * 100, 2)} %`,
  ];
}

const cpuOf = (p: MarketPhase, startsWith: string) => p.processes.find((c) => c.process.startsWith(startsWith));

export function renderRestingMarkdown(r: RestingReport): string {
  const s = r.settings;
  const rs = s.resting;
  const a = r.market.without;
  const b = r.market.with;
  const lines: string[] = [];
  const mode =
    s.mode === 'embedded'
      ? 'embedded (one `papertrade start` with nothing configured: its own PostgreSQL, the Redis parts in its memory)'
      : 'all-in-one (`papertrade start` on the local PostgreSQL and Redis)';
  lines.push(`# papertrade benchmark: resting orders — ${r.timestamp}`);
  lines.push('');
  lines.push(machineLine(r));
  lines.push('');
  lines.push(
    `Settings: ${mode}; ${fmt(rs.orders)} resting orders (one share each, ${rs.timeInForce}) over ${rs.tickers} tickers, ` +
      `${rs.awayBps[0] / 100}–${rs.awayBps[1] / 100} % from the price; ${rs.crossRepeats} crossing(s) of ${fmt(rs.cross)} limit buys; idle windows ${rs.idleS} s; ` +
      `market orders: closed loop, ${s.concurrency} in flight, ${s.durationS} s measured after ${s.warmupS} s warm-up, ${fmt(s.users)} users, ` +
      `sell ratio ${s.sellRatio}, tickers ${s.tickers.join(' ')}; PG_POOL_MAX ${s.pgPoolMax}, ENGINE_BATCH_SIZE_MAX ${s.engineBatchSizeMax}, prices: ${s.feed}.`,
  );
  lines.push(`PostgreSQL: ${Object.entries(s.postgresSettings).map(([k, v]) => `${k}=${v}`).join(' ')}.`);
  if (Object.keys(s.env).length) lines.push(`Environment: ${Object.entries(s.env).map(([k, v]) => `${k}=${v}`).join(' ')}.`);
  lines.push('');
  lines.push('| target | goal | this run | met |');
  lines.push('|---|---|---|:---:|');
  for (const t of r.targets) lines.push(`| ${t.what} | ${t.target} | ${t.value} | ${t.met === null ? 'n/a' : t.met ? 'yes' : '**no**'} |`);
  lines.push('');
  lines.push(
    '| tick evaluation (`papertrade_resting_tick_eval_seconds`) | resting in the index | ticks | mean µs | p50 / p99 µs (est.) | p99 ≤ µs | ≤ 50 µs | event-loop lag max (ms) | watcher lease lost |',
  );
  lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
  const evalRow = (name: string, resting: number | null, e: TickEvalStats | null, h: WindowHealth) =>
    lines.push(`| ${name} | ${maybe(resting)} | ${evalCells(e).join(' | ')} | ${maybe(h.eventLoopLagMaxMs, 0)} | ${maybe(h.watcherLeaseLost)} |`);
  evalRow(`idle ${r.idle.without.seconds} s, no resting order`, r.idle.without.restingInIndex, r.idle.without.tickEval, r.idle.without.health);
  evalRow(`idle ${r.idle.with.seconds} s, resting orders placed`, r.idle.with.restingInIndex, r.idle.with.tickEval, r.idle.with.health);
  evalRow('market-order load, without', a.restingInIndex, a.tickEval, a.health);
  evalRow('market-order load, with', b.restingInIndex, b.tickEval, b.health);
  lines.push('');
  lines.push(`| market orders (closed loop) | without resting | with ${fmt(b.restingInIndex ?? rs.orders)} resting | with ÷ without |`);
  lines.push('|---|---:|---:|---:|');
  const row = (name: string, x: number, y: number, digits = 0) => lines.push(`| ${name} | ${fmt(x, digits)} | ${fmt(y, digits)} | ${maybe(ratio(y, x), 3)} |`);
  row('**filled orders/s**', a.db.filledPerS, b.db.filledPerS);
  row('accepted orders/s', a.db.acceptedPerS, b.db.acceptedPerS);
  lines.push(`| HTTP accept p50 / p99 (ms) | ${ms(a.http.latencyMs.p50)} / ${ms(a.http.latencyMs.p99)} | ${ms(b.http.latencyMs.p50)} / ${ms(b.http.latencyMs.p99)} | ${maybe(ratio(b.http.latencyMs.p99, a.http.latencyMs.p99), 2)} (p99) |`);
  lines.push(`| accept → FILLED p50 / p99 (ms) | ${ms(a.db.acceptToFillMs.p50)} / ${ms(a.db.acceptToFillMs.p99)} | ${ms(b.db.acceptToFillMs.p50)} / ${ms(b.db.acceptToFillMs.p99)} | ${maybe(ratio(b.db.acceptToFillMs.p99, a.db.acceptToFillMs.p99), 2)} (p99) |`);
  const names = a.processes.map((x) => x.process).filter((n) => !n.startsWith('bench') && !n.startsWith('the bench'));
  for (const name of names) {
    const x = a.processes.find((c) => c.process === name);
    const y = b.processes.find((c) => c.process === name);
    if (!x || !y) continue;
    lines.push(
      `| CPU ms / order: ${x.process} | ${maybe(x.msPerOrder, 3)} | ${maybe(y.msPerOrder, 3)} | ${x.msPerOrder && y.msPerOrder ? fmt(y.msPerOrder / x.msPerOrder, 2) : 'n/a'} |`,
    );
  }
  const others = (p: MarketPhase) => cpuOf(p, 'everything else')?.cores;
  lines.push(`| cores busy with other processes | ${maybe(others(a), 2)} | ${maybe(others(b), 2)} | |`);
  const pt = (p: MarketPhase) => cpuOf(p, 'papertrade')?.peakMb;
  lines.push(`| papertrade peak RSS (MB) | ${maybe(pt(a))} | ${maybe(pt(b))} | |`);
  lines.push(`| errors / rejected | ${fmt(Object.values(a.errors).reduce((x, y) => x + y, 0))} / ${fmt(Object.values(a.db.rejected).reduce((x, y) => x + y, 0))} | ${fmt(Object.values(b.errors).reduce((x, y) => x + y, 0))} / ${fmt(Object.values(b.db.rejected).reduce((x, y) => x + y, 0))} | |`);
  lines.push(`| resting orders executed in the window | ${maybe(a.restingExecutions)} | ${maybe(b.restingExecutions)} | |`);
  lines.push(
    `| rows of \`orders\` updated per order accepted | ${maybe(a.ordersRowUpdatesPerOrder, 2)} | ${maybe(b.ordersRowUpdatesPerOrder, 2)} | |`,
  );
  lines.push('');
  const cs = r.crossings;
  if (cs.length) {
    const c = cs[0]!;
    lines.push(`| crossing: one tick under ${fmt(c.orders)} limit buys of ${c.ticker} (ms) | ${cs.map((_, i) => `#${i + 1}`).join(' | ')} |`);
    lines.push(`|---|${cs.map(() => '---:').join('|')}|`);
    const crow = (name: string, f: (x: CrossingResult) => number, bold = false) =>
      lines.push(`| ${bold ? `**${name}**` : name} | ${cs.map((x) => (bold ? `**${fmt(f(x), 1)}**` : fmt(f(x), 1))).join(' | ')} |`);
    crow("PUT sent → the tick's as_of", (x) => x.sendToAsOfMs);
    crow('as_of → first fill transaction started (min filled_at)', (x) => x.asOfToFirstFilledAtMs);
    crow('as_of → last fill transaction started (max filled_at)', (x) => x.asOfToLastFilledAtMs);
    crow('PUT sent → last fill transaction started (max filled_at)', (x) => x.sendToLastFilledAtMs);
    crow(`PUT sent → all ${fmt(c.orders)} FILLED and visible (polled every ${c.pollIntervalMs} ms)`, (x) => x.sendToAllVisibleMs, true);
    lines.push(`| fill transactions | ${cs.map((x) => fmt(x.transactions)).join(' | ')} |`);
    lines.push('');
  }
  const ia = r.idle.without.processes;
  const ib = r.idle.with.processes;
  if (ia.length && ib.length) {
    lines.push(`| idle windows: cores busy (CPU over the window) | no resting order | ${fmt(r.idle.with.restingInIndex ?? rs.orders)} resting |`);
    lines.push('|---|---:|---:|');
    for (const x of ia) {
      if (x.process.startsWith('bench') || x.process.startsWith('the bench')) continue;
      const y = ib.find((q) => q.process === x.process);
      lines.push(`| ${x.process} | ${fmt(x.cores, 3)} | ${y ? fmt(y.cores, 3) : 'n/a'} |`);
    }
    lines.push(`| rows of \`orders\` updated per second | ${maybe(r.idle.without.ordersRowUpdatesPerS)} | ${maybe(r.idle.with.ordersRowUpdatesPerS)} |`);
    lines.push('');
  }
  const m = r.memory;
  lines.push(`| memory for ${fmt(m.ordersAdded)} resting orders | before | after | per order |`);
  lines.push('|---|---:|---:|---:|');
  const mb = (v: number) => `${fmt(v / 1024 / 1024, 1)} MB`;
  if (m.forcedGc) {
    const { before, after } = m.forcedGc;
    lines.push(
      `| **engine heapUsed + arrayBuffers, forced full GC** | ${mb(heapAndBuffers(before))} | ${mb(heapAndBuffers(after))} | **${maybe(m.forcedGc.heapPerOrder, 0, ' B')}** |`,
    );
    lines.push(`| … of which heapUsed | ${mb(before.heapUsed)} | ${mb(after.heapUsed)} | ${maybe(perOrderBytes(before.heapUsed, after.heapUsed, m.ordersAdded), 0, ' B')} |`);
    lines.push(`| … of which arrayBuffers | ${mb(before.arrayBuffers)} | ${mb(after.arrayBuffers)} | ${maybe(perOrderBytes(before.arrayBuffers, after.arrayBuffers, m.ordersAdded), 0, ' B')} |`);
    lines.push(`| engine RSS at the same moments | ${mb(m.forcedGc.before.rss)} | ${mb(m.forcedGc.after.rss)} | ${maybe(m.forcedGc.rssPerOrder, 0, ' B')} |`);
  }
  const hw = r.idle.without.heap;
  const hr = r.idle.with.heap;
  if (hw && hr) {
    lines.push(
      `| engine heap used + external from /metrics, no forced GC: min of ${hw.n} / ${hr.n} samples | ${mb(hw.min)} | ${mb(hr.min)} | ${maybe(m.noGc.minPerOrder, 0, ' B')} |`,
    );
    lines.push(`| … median | ${mb(hw.median)} | ${mb(hr.median)} | ${maybe(m.noGc.medianPerOrder, 0, ' B')} |`);
  }
  const rw = r.idle.without.rss;
  const rr = r.idle.with.rss;
  if (rw && rr) lines.push(`| engine RSS from /metrics, median | ${mb(rw.median)} | ${mb(rr.median)} | ${maybe(m.noGc.rssMedianPerOrder, 0, ' B')} |`);
  if (m.micro) {
    lines.push(
      m.micro.error
        ? `| micro-benchmark (\`${m.micro.command}\`) | | | failed: ${m.micro.error} |`
        : `| micro-benchmark after forced GCs (${maybe(m.micro.orders)} orders; \`${m.micro.figure ?? 'n/a'}\`; the order objects as built from rows: ${maybe(m.micro.callerObjectsBytesPerOrder, 0, ' B')}) | | | **${maybe(m.micro.bytesPerOrder, 0, ' B')}** |`,
    );
  }
  lines.push('');
  const p = r.placement;
  lines.push(
    `- Placement: ${fmt(p.orders)} orders through \`POST /orders\` (${p.concurrency} in flight) in ${fmt(p.ms / 1000, 1)} s (${fmt(p.perS)}/s); ` +
      `all OPEN and in the index ${fmt(p.indexedAfterMs)} ms after the last answer. Kinds: ${Object.entries(p.byKind).map(([k, v]) => `${k} ${fmt(v)}`).join(', ')}; ` +
      `sides: ${fmt(p.bySide.buy)} buy, ${fmt(p.bySide.sell)} sell.`,
  );
  if (m.micro && !m.micro.error) {
    lines.push(
      `- Micro-benchmark (the index alone, \`${m.micro.command}\`): quiet tick mean ${maybe(m.micro.quietTickMeanUs, 2)} µs, p99 ${maybe(m.micro.quietTickP99Us, 2)} µs; ` +
        `a tick crossing 1,000 orders ${maybe(m.micro.crossingTickMeanMs, 2)} ms.`,
    );
  }
  for (const [i, c] of cs.entries()) {
    lines.push(
      `- Crossing #${i + 1}: ${fmt(c.orders)} limit buys of ${c.ticker} at ${c.limitsLow}–${c.limitsHigh} (price ${c.basePrice}), then \`PUT /admin/prices/${c.ticker}\` at ${c.tickPrice}; ` +
        `every fill at the tick's price: ${c.filledAtTickPrice ? 'yes' : '**no**'}; papertrade_resting_executions_total +${maybe(c.executionsCounted)}.`,
    );
  }
  lines.push(`- Market phases: drain ${a.drain.pendingLeft === 0 ? `${fmt(a.drain.ms)} ms` : `${fmt(a.drain.pendingLeft)} left PENDING`} / ${b.drain.pendingLeft === 0 ? `${fmt(b.drain.ms)} ms` : `${fmt(b.drain.pendingLeft)} left PENDING`}; errors without: ${counts(a.errors)}; with: ${counts(b.errors)}.`);
  const audit = r.audit;
  lines.push(`- Audit: ${!audit.ran ? `not run (${audit.note ?? 'unavailable'})` : audit.ok ? 'ok, every invariant holds' : `VIOLATIONS: ${counts(audit.violations)}`}.`);
  for (const note of r.notes) lines.push(`- ${note}`);
  lines.push('');
  return lines.join('\n');
}

function counts(record: Record<string, number>): string {
  const entries = Object.entries(record).sort((x, y) => y[1] - x[1]);
  return entries.length ? entries.map(([k, v]) => `${k}: ${fmt(v)}`).join('; ') : 'none';
}

// ---------------------------------------------------------------------------------------------
// Assembling the report

/** What the scenario measured (bench.ts gathers it). */
export interface RestingPart {
  r: RestingOptions;
  seededTickers: number;
  idleWithout: IdleWindow;
  idleWith: IdleWindow;
  gcBefore: HeapReading | undefined;
  gcAfter: HeapReading | undefined;
  gcNote: string | null;
  placement: RestingReport['placement'];
  without: MarketPhase;
  with: MarketPhase;
  crossings: CrossingResult[];
  checkpoints: { without: number; with: number };
}

export interface RestingCommon {
  timestamp: string;
  machine: BenchReport['machine'];
  versions: BenchReport['versions'];
  settings: BenchReport['settings'];
  logs: string;
}

/** The report, its targets and its notes on method, from what was measured. */
export function restingReport(input: {
  part: RestingPart;
  micro: MicroBench | null;
  audit: BenchReport['papertrade']['audit'];
  common: RestingCommon;
  embedded: boolean;
  feedTickMs: number;
}): RestingReport {
  const { part: p, micro, common: c } = input;
  const n = p.r.orders;
  const forcedGc =
    p.gcBefore && p.gcAfter
      ? {
          before: p.gcBefore,
          after: p.gcAfter,
          heapPerOrder: perOrderBytes(heapAndBuffers(p.gcBefore), heapAndBuffers(p.gcAfter), n),
          rssPerOrder: perOrderBytes(p.gcBefore.rss, p.gcAfter.rss, n),
        }
      : null;
  const memory: RestingReport['memory'] = {
    forcedGc,
    forcedGcNote: p.gcNote,
    noGc: {
      minPerOrder: perOrderBytes(p.idleWithout.heap?.min, p.idleWith.heap?.min, n),
      medianPerOrder: perOrderBytes(p.idleWithout.heap?.median, p.idleWith.heap?.median, n),
      rssMedianPerOrder: perOrderBytes(p.idleWithout.rss?.median, p.idleWith.rss?.median, n),
    },
    ordersAdded: n,
    micro,
  };
  const market = { without: p.without, with: p.with, ...phaseRatios(p.without, p.with) };
  const partial = { idle: { without: p.idleWithout, with: p.idleWith }, crossings: p.crossings, memory, market };
  const notes: string[] = [];
  notes.push(
    `Tick evaluation: \`papertrade_resting_tick_eval_seconds\`, observed by the watcher around \`RestingIndex.onTick\` alone (hrtime), ` +
      `scraped from /metrics at each window's edges; the figures are of the difference. Mean = Δsum / Δcount (exact). p50 / p99: ` +
      'linear interpolation inside the bucket that holds the rank, as PromQL histogram_quantile does (buckets 1, 2, 5, 10, 20, 50, 100, ' +
      '1,000 µs, …): the bucket\'s top is a sure upper bound ("p99 ≤"), and the share of ticks ≤ 50 µs is exact (50 µs is a bucket bound). ' +
      `The ticks are the simulator's: ${c.settings.feed === 'seeded by the bench' ? 'none' : `every listed ticker every ${input.feedTickMs} ms`}.`,
  );
  const idleExec = p.idleWith.restingExecutions;
  const windows: [string, WindowHealth][] = [
    ['the idle window without resting orders', p.idleWithout.health],
    ['the idle window with them', p.idleWith.health],
    ['the market-order window without them', p.without.health],
    ['the market-order window with them', p.with.health],
  ];
  for (const [name, h] of windows) {
    if ((h.watcherLeaseLost ?? 0) > 0 || (h.feedLeadershipLost ?? 0) > 0) {
      notes.push(
        `During ${name} the process logged ${h.watcherLeaseLost ?? 0} lost watcher lease(s) and ${h.feedLeadershipLost ?? 0} lost feed leadership(s) ` +
          `(event-loop lag up to ${maybe(h.eventLoopLagMaxMs, 0)} ms; the leases last ENGINE_RESTING_LEASE_TTL_MS / FEED_LEADER_TTL_MS, 3 s): each new ` +
          'term of the watcher rebuilds its index from PostgreSQL, and its figures for that window are not those of a steady engine.',
      );
    }
  }
  notes.push(
    `Writes of the watcher: with no order coming in, \`orders\` rows were updated at ${maybe(p.idleWithout.ordersRowUpdatesPerS, 0)}/s without ` +
      `resting orders and ${maybe(p.idleWith.ordersRowUpdatesPerS, 0)}/s with them (pg_stat_user_tables.n_tup_upd over the idle windows): the trailing ` +
      'stops\' high/low-water marks and levels saved every second, a whole melded group at each new extreme.',
  );
  notes.push(
    `"Nothing triggered": papertrade_resting_executions_total moved by ${idleExec ?? 'n/a'} over the idle window with the resting orders, ` +
      `${p.with.restingExecutions ?? 'n/a'} during the market-order window with them. The orders rest ${Number(AWAY_BPS_MIN) / 100}–${Number(AWAY_BPS_MAX) / 100} % ` +
      'from the price (limits beyond it, stops before it, trailing stops with a trail that large; a stop_limit\'s limit 1 % past its stop), ' +
      'drawn uniformly; the simulator moves a price well under 1 % in a run of minutes, and market orders do not move prices.',
  );
  notes.push(
    `Placement: ${fmt(n)} orders through \`POST /orders\` with each user's key, round robin over the ${fmt(c.settings.users)} users and the ` +
      `${new Set(KIND_CYCLE).size} kinds (30 % limit, 20 % stop, 20 % stop_limit, 15 % + 15 % trailing_stop by price / by percent; ` +
      'the side alternates), one share each, `gtc` (the `always` calendar closes each session at midnight, where `day` orders would expire). ' +
      `Every hold is real (cash for buys, shares for sells: the seed bought ${c.settings.seedShares} of each of the ${p.seededTickers} tickers for every user); ` +
      'the run fails if any request fails, if any order is anything but OPEN once none is PENDING, or if the index does not reach the count.',
  );
  const cr = p.crossings[0];
  notes.push(
    `Crossing (${p.crossings.length} in a row, each with fresh orders, after the market-order phases): ${cr?.ticker ?? 'n/a'} is the listed ticker of the ` +
      `lowest volatility; its ${fmt(cr?.orders ?? 0)} limit buys (one share each, one user each as far as the users go) sit ` +
      `${Number(CROSS_NEAR_BPS_MIN) / 100}–${Number(CROSS_NEAR_BPS_MAX) / 100} % under its price and the crossing tick ${Number(CROSS_TICK_BPS) / 100} % under it. ` +
      'The feed kept running (FEED=simulator): the bench checks that none of them filled before the PUT and that the price was still above them right ' +
      'before it; the feed\'s next tick puts the price back up, but cannot undo the crossing: the watcher applies the ticks in the tick log\'s order and ' +
      'the executor fills each order at the price of the tick that crossed it (checked: every fill_price is the tick\'s). "All FILLED and visible" is ' +
      `the first poll (every ${cr?.pollIntervalMs ?? 'n/a'} ms, from the bench) that saw all of them FILLED: committed, so it includes the last fill transaction's commit. ` +
      'filled_at is now(), the START of the fill transaction: max(filled_at) is when the last transaction began, before its statements and commit.',
  );
  notes.push(
    'Memory, engine: the child runs with `--inspect=127.0.0.1:0`; right before the placement and right after the idle window that follows it, ' +
      'the bench connects to the inspector, runs HeapProfiler.collectGarbage twice and reads process.memoryUsage(); per order: heapUsed + arrayBuffers ' +
      '(an index may keep its arrays off the JS heap). The difference is everything ' +
      `the process holds more with the orders placed (in \`start\`: api, engine and feed together), so an upper bound of the index's cost; ` +
      `the tick rings of the watcher fill up meanwhile (bounded: 512 ticks per ticker). Without a forced GC, from /metrics every 500 ms over each idle window: ` +
      'the minimum of heap used + external is about the live heap after a scavenge (old-generation garbage may still be in it), the median shows the noise.' +
      (input.embedded ? ' Embedded: the order pipe and the tick log live in this heap too (in Redis otherwise).' : ''),
  );
  if (p.gcNote) notes.push(`Forced GC: ${p.gcNote}.`);
  notes.push(
    'Market orders: the plain bench\'s closed loop, twice in one run with the same settings — first without resting orders, then with them ' +
      '(the second on a database that holds the first phase\'s orders and the resting ones too; ANALYZE and CHECKPOINT before each). The machine ' +
      'may change between the two: compare "cores busy with other processes" and the CPU per order.',
  );
  for (const [phase, cp] of [
    ['without', p.checkpoints.without],
    ['with', p.checkpoints.with],
  ] as const) {
    if (cp > 0) notes.push(`${cp} PostgreSQL checkpoint(s) during the window ${phase} resting orders: expect stalls in its tail.`);
  }
  for (const phase of [p.without, p.with]) {
    const others = phase.processes.find((x) => x.process.startsWith('everything else'));
    if (others && others.cores > 0.2) {
      notes.push(`Other processes kept ${fmt(others.cores, 2)} cores busy during the window ${phase.label}: its figures are low by an unknown amount.`);
    }
  }
  notes.push('SQL floor: not run with --resting (the scenario compares papertrade with itself).');
  notes.push(`Process logs: ${c.logs}.`);
  return {
    kind: 'resting',
    timestamp: c.timestamp,
    machine: c.machine,
    versions: c.versions,
    settings: {
      ...c.settings,
      resting: {
        orders: n,
        cross: p.r.cross,
        crossRepeats: p.r.crossRepeats,
        idleS: p.r.idleS,
        tickers: p.seededTickers,
        timeInForce: 'gtc',
        quantity: '1',
        awayBps: [Number(AWAY_BPS_MIN), Number(AWAY_BPS_MAX)],
        seededTickers: p.seededTickers,
      },
    },
    placement: p.placement,
    idle: partial.idle,
    memory,
    market,
    crossings: p.crossings,
    audit: input.audit,
    logs: c.logs,
    targets: restingTargets(partial),
    notes,
  };
}
