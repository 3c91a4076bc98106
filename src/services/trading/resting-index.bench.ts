/**
 * Benchmark of the resting-order index (not a test: nothing here asserts a time).
 *
 *   node --expose-gc --import tsx src/services/trading/resting-index.bench.ts   (with memory)
 *   npx tsx --expose-gc src/services/trading/resting-index.bench.ts              (the same)
 *   npx tsx src/services/trading/resting-index.bench.ts                         (memory: null)
 *
 * Builds 100,000 resting orders over 40 tickers — limits, stops and stop_limits 10–30% from the
 * price, trailing stops with trails of 10–30% and high/low-water marks near the price, and some
 * opg/cls/market orders that are only held — then measures:
 *
 * - a tick that triggers nothing (a random walk within ±2% of each ticker's price): mean, p50,
 *   p99 and max, each tick timed alone with hrtime (the timer's own cost is reported beside);
 * - a tick that crosses 1,000 orders (limits, stops, stop_limits and trailing stops added just
 *   above the price of one ticker, then a drop through all of them), repeated;
 * - memory per resting order, what the index RETAINS once the caller's objects are gone.
 *   The orders are built as the watcher builds them from database rows (toResting): every
 *   string (id, user id, ticker) its own flat copy and every bigint its own object, as the pg
 *   driver gives them. They are added to the index, the first tick of each ticker is applied,
 *   the benchmark drops every reference it had to them, and after forced GCs it reads
 *   heapUsed + arrayBuffers (typed-array backing stores live outside the JS heap and are not
 *   in heapUsed; the index keeps its columns there). `retained` is that sum minus the same sum
 *   before the orders were built, divided by the number of orders; `heap` and `arrayBuffers`
 *   are its two parts. `callerObjects` is what the orders cost while the caller held them
 *   (before they were added). `retainedAfterQuietTicks` is measured again after the quiet ticks
 *   (trailing groups melded). The code the index runs is warmed up on a throwaway index first,
 *   so that compiled code is not counted as order memory. `footprintAfterBuild` is the index's
 *   own account of its structures (slots and their capacity, groups, id-table cells, heap
 *   cells, values kept outside the columns), which explains the bytes.
 *
 * Prints one JSON object. Environment: BENCH_ORDERS, BENCH_TICKS to change the sizes.
 */
import { randomUUID } from 'node:crypto';
import type { Price } from '../../core/money.js';
import { initialState, type OrderTerms, type OrderType, type Side, type TimeInForce } from '../../core/order-terms.js';
import { RestingIndex, type RestingOrder } from './resting-index.js';
import { uniformFrom } from '../../infra/random.js';

const ORDERS = Number(process.env.BENCH_ORDERS ?? 100_000);
const TICKERS = 40;
const TICKS = Number(process.env.BENCH_TICKS ?? 200_000);
const WARMUP_TICKS = 20_000;
const CROSS = 1_000;
const CROSS_REPEATS = 30;

const rand = uniformFrom(20_261_202);
/** A factor in parts per million, uniform in [lo, hi]: only the draw is a float, the factor is exact. */
const betweenPpm = (lo: bigint, hi: bigint): bigint => lo + BigInt(Math.floor(rand() * Number(hi - lo + 1n)));
const PPM = 1_000_000n;
/** price × ppm / 1,000,000, in price units (bigint all the way). */
const scaled = (price: Price, ppm: bigint): Price => (price * ppm) / PPM;

const gc = (globalThis as { gc?: () => void }).gc;
interface Memory {
  heap: number;
  arrayBuffers: number;
}
/** heapUsed and arrayBuffers after forced full GCs (null without --expose-gc). */
async function memory(): Promise<Memory | null> {
  if (gc === undefined) return null;
  for (let i = 0; i < 4; i++) {
    gc();
    // Let the sweeper of array buffers run between collections.
    await new Promise((resolve) => setImmediate(resolve));
  }
  const m = process.memoryUsage();
  return { heap: m.heapUsed, arrayBuffers: m.arrayBuffers };
}

const tickers = Array.from({ length: TICKERS }, (_, i) => `T${String(i).padStart(2, '0')}`);
const basePrice = new Map<string, Price>(tickers.map((t, i) => [t, BigInt(20 + i * 7) * 10_000n + BigInt(i * 37)]));
/**
 * A flat copy of a string, as the pg driver gives every value of every row: Node's randomUUID()
 * returns a rope of concatenated pieces (~480 bytes on the heap), and a shared string would not
 * be what the watcher hands over.
 */
const flat = (s: string) => Buffer.from(s, 'latin1').toString('latin1');
const uuid = () => flat(randomUUID());
const users = Array.from({ length: 2_000 }, () => uuid());
const NOW = 1_800_000_000_000;

/** A quantity of 1 to 100 shares, its own bigint (as parsed from a row). */
const quantity = () => BigInt(1 + Math.floor(rand() * 100)) * 1_000_000n;

function terms(side: Side, type: OrderType, timeInForce: TimeInForce, fields: Partial<OrderTerms>): OrderTerms {
  return { side, type, timeInForce, quantity: quantity(), limitPrice: null, stopPrice: null, trailPrice: null, trailPercent: null, ...fields };
}

/** One background order: 10–30% from the price, so that a ±2% walk triggers nothing. */
function backgroundOrder(ticker: string): RestingOrder {
  const base = basePrice.get(ticker)!;
  const side: Side = rand() < 0.5 ? 'buy' : 'sell';
  const tif: TimeInForce = rand() < 0.5 ? 'day' : 'gtc';
  const away = betweenPpm(100_000n, 300_000n); // 10-30 % from the price
  const below = scaled(base, PPM - away);
  const above = scaled(base, PPM + away);
  const roll = rand();
  let t: OrderTerms;
  let state = initialState(terms(side, 'limit', tif, { limitPrice: 1n }), undefined);
  if (roll < 0.3) t = terms(side, 'limit', tif, { limitPrice: side === 'buy' ? below : above });
  else if (roll < 0.45) t = terms(side, 'stop', tif, { stopPrice: side === 'buy' ? above : below });
  else if (roll < 0.55) {
    const stop = side === 'buy' ? above : below;
    t = terms(side, 'stop_limit', tif, { stopPrice: stop, limitPrice: side === 'buy' ? scaled(stop, 1_010_000n) : scaled(stop, 990_000n) });
  } else if (roll < 0.9) {
    t = rand() < 0.5 ? terms(side, 'trailing_stop', tif, { trailPrice: scaled(base, away) }) : terms(side, 'trailing_stop', tif, { trailPercent: away / 100n });
    // A high (low) since placement near the price, as read back from the database.
    state = initialState(t, scaled(base, side === 'sell' ? PPM + betweenPpm(0n, 20_000n) : PPM - betweenPpm(0n, 20_000n)));
  } else {
    // Held: opg/cls limits and market orders waiting for the open.
    const kind = rand();
    t = kind < 0.4 ? terms(side, 'limit', 'opg', { limitPrice: side === 'buy' ? below : above }) : kind < 0.7 ? terms(side, 'market', 'cls', {}) : terms(side, 'market', 'day', {});
  }
  return { id: uuid(), userId: flat(users[Math.floor(rand() * users.length)]!), ticker: flat(ticker), terms: t, state, createdAtMs: NOW - Math.floor(rand() * 86_400_000) };
}

function stats(ns: Float64Array) {
  const sorted = Float64Array.from(ns).sort();
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  let sum = 0;
  for (const v of ns) sum += v;
  return { mean: sum / ns.length, p50: at(0.5), p99: at(0.99), max: sorted[sorted.length - 1]! };
}
const round = (x: number, digits = 3) => Math.round(x * 10 ** digits) / 10 ** digits;

// ---------------------------------------------------------------------------------------------
// Build (and measure the heap)
// ---------------------------------------------------------------------------------------------
// The benchmark's own buffers of timings exist before the first measurement, so that they cancel out.
const timerNs = new Float64Array(10_000);
const quietNs = new Float64Array(TICKS);
// Warm-up: the index's code runs (and is compiled) on a throwaway index, so that the memory
// measured below is the orders', not the code's.
{
  const warm = new RestingIndex();
  for (let i = 0; i < 5_000; i++) warm.add(backgroundOrder(tickers[i % TICKERS]!));
  for (const t of tickers) warm.onTick(t, basePrice.get(t)!, NOW);
  for (const o of warm.ordersWhere(() => true)) warm.remove(o.id);
}
const m0 = await memory();
let orders: RestingOrder[] = [];
for (let i = 0; i < ORDERS; i++) orders.push(backgroundOrder(tickers[i % TICKERS]!));
const m1 = await memory();
const index = new RestingIndex();
const buildStart = process.hrtime.bigint();
for (const o of orders) index.add(o);
const addNs = Number(process.hrtime.bigint() - buildStart);
// The caller (the watcher) keeps nothing once an order is added: from here on only what the
// index retains is alive.
orders = [];
// The first tick of each ticker puts its orders (all newer than any tick so far) in the structures.
let asOf = NOW;
const current = new Map<string, Price>(basePrice);
const firstTickStart = process.hrtime.bigint();
for (const t of tickers) {
  const hits = index.onTick(t, current.get(t)!, asOf);
  if (hits.length > 0) throw new Error(`the first tick of ${t} triggered ${hits.length}`);
}
const firstTicksNs = Number(process.hrtime.bigint() - firstTickStart);
const m2 = await memory();
const afterBuild = index.stats();
const footprintAfterBuild = index.footprint();

// ---------------------------------------------------------------------------------------------
// Ticks that trigger nothing
// ---------------------------------------------------------------------------------------------
function walk(ticker: string): Price {
  const base = basePrice.get(ticker)!;
  const price = current.get(ticker)!;
  const lo = scaled(base, 980_000n);
  const hi = scaled(base, 1_020_000n);
  const step = scaled(price, betweenPpm(-500n, 500n));
  let next = price + step;
  if (next < lo) next = lo;
  if (next > hi) next = hi;
  current.set(ticker, next);
  return next;
}

for (let i = 0; i < timerNs.length; i++) {
  const a = process.hrtime.bigint();
  timerNs[i] = Number(process.hrtime.bigint() - a);
}
let triggeredByQuietTicks = 0;
for (let i = 0; i < WARMUP_TICKS; i++) {
  const t = tickers[Math.floor(rand() * TICKERS)]!;
  triggeredByQuietTicks += index.onTick(t, walk(t), ++asOf).length;
}
// Precompute the tick sequence so that only onTick is timed.
const seqTicker: string[] = [];
const seqPrice: Price[] = [];
for (let i = 0; i < TICKS; i++) {
  const t = tickers[Math.floor(rand() * TICKERS)]!;
  seqTicker.push(t);
  seqPrice.push(walk(t));
}
for (let i = 0; i < TICKS; i++) {
  const t = seqTicker[i]!;
  const price = seqPrice[i]!;
  const at = ++asOf;
  const start = process.hrtime.bigint();
  const hits = index.onTick(t, price, at);
  quietNs[i] = Number(process.hrtime.bigint() - start);
  triggeredByQuietTicks += hits.length;
}
if (triggeredByQuietTicks !== 0) throw new Error(`quiet ticks triggered ${triggeredByQuietTicks} orders`);
const afterQuiet = index.stats();
// The tick sequence is the benchmark's, not the index's: dropped before measuring again.
seqTicker.length = 0;
seqPrice.length = 0;
const m3 = await memory();

// ---------------------------------------------------------------------------------------------
// A tick that crosses 1,000 orders
// ---------------------------------------------------------------------------------------------
const crossTicker = tickers[0]!;
const crossMs: number[] = [];
for (let r = 0; r < CROSS_REPEATS; r++) {
  const price = current.get(crossTicker)!;
  for (let i = 0; i < CROSS; i++) {
    const near = betweenPpm(965_000n, 995_000n); // between the drop (0.96) and the price
    const level = scaled(price, near);
    const kind = i % 4;
    const t =
      kind === 0
        ? terms('buy', 'limit', 'gtc', { limitPrice: level })
        : kind === 1
          ? terms('sell', 'stop', 'gtc', { stopPrice: level })
          : kind === 2
            ? terms('sell', 'stop_limit', 'gtc', { stopPrice: level, limitPrice: scaled(price, 900_000n) })
            : terms('sell', 'trailing_stop', 'gtc', { trailPercent: (PPM - near) / 100n });
    index.add({ id: uuid(), userId: users[i % users.length]!, ticker: crossTicker, terms: t, state: initialState(t, price), createdAtMs: asOf - 1 });
  }
  const drop = scaled(price, 960_000n);
  const at = ++asOf;
  const start = process.hrtime.bigint();
  const hits = index.onTick(crossTicker, drop, at);
  crossMs.push(Number(process.hrtime.bigint() - start) / 1e6);
  if (hits.length !== CROSS) throw new Error(`the crossing tick executed ${hits.length} orders, not ${CROSS}`);
  index.onTick(crossTicker, price, ++asOf);
  index.drainStateChanges();
}
crossMs.sort((a, b) => a - b);

const quiet = stats(quietNs);
const timer = stats(timerNs);
const perOrder = (a: number, b: number) => round((b - a) / ORDERS, 1);
const bytes = (from: Memory, to: Memory) => ({
  total: perOrder(from.heap + from.arrayBuffers, to.heap + to.arrayBuffers),
  heap: perOrder(from.heap, to.heap),
  arrayBuffers: perOrder(from.arrayBuffers, to.arrayBuffers),
});
const result = {
  orders: ORDERS,
  tickers: TICKERS,
  node: process.version,
  index: afterBuild,
  indexAfterQuietTicks: afterQuiet,
  build: { addAllMs: round(addNs / 1e6, 1), firstTickPerTickerMs: round(firstTicksNs / 1e6, 1) },
  quietTick: {
    ticks: TICKS,
    meanUs: round(quiet.mean / 1_000),
    p50Us: round(quiet.p50 / 1_000),
    p99Us: round(quiet.p99 / 1_000),
    maxUs: round(quiet.max / 1_000),
    over50Us: quietNs.filter((ns) => ns > 50_000).length,
    timerOverheadMeanUs: round(timer.mean / 1_000),
  },
  crossingTick: {
    crossed: CROSS,
    repeats: CROSS_REPEATS,
    meanMs: round(crossMs.reduce((a, b) => a + b, 0) / crossMs.length),
    p50Ms: round(crossMs[Math.floor(crossMs.length / 2)]!),
    maxMs: round(crossMs[crossMs.length - 1]!),
  },
  bytesPerOrder:
    m0 === null || m1 === null || m2 === null || m3 === null
      ? null
      : {
          retained: bytes(m0, m2),
          retainedAfterQuietTicks: bytes(m0, m3),
          callerObjects: bytes(m0, m1),
          note: 'heapUsed + arrayBuffers after forced GCs, per order: retained = what the index keeps once the caller dropped its order objects (after the first tick per ticker); callerObjects = the order objects as the watcher builds them from rows, before they were added',
        },
  footprintAfterBuild,
  ...(m0 === null ? { memoryNote: 'run with node --expose-gc --import tsx to measure the memory' } : {}),
};
console.log(JSON.stringify(result, null, 2));
