/**
 * Fill models: how much of an order executes against a quote, and at what price. Pure and
 * deterministic (bigint fixed point; every random choice from a seed), so the same seed and
 * the same quote path give the same fills, and each fill can say why it got its price.
 *
 * - `ideal`: all of it at the last price (papertrade's behaviour so far, and the default).
 * - `spread`: all of it at the touch: a buy at the ask, a sell at the bid.
 * - `realistic`: at the touch plus a square-root market impact, and at most the displayed size
 *   per execution (the rest waits for the next quote):
 *
 *     impact_bps = impactCoefficientBps × sqrt(quantity / dailyVolume)
 *
 *   (the square-root law of market impact: cost grows with the square root of the order's
 *   share of the day's volume). The price moves against the trader, rounded against it too.
 *
 */
import { assert } from './errors.js';
import { divRound, formatPrice, type Price, type Qty } from './money.js';
import type { Side } from './order-terms.js';

export const FILL_MODELS = ['ideal', 'spread', 'realistic'] as const;
export type FillModelName = (typeof FILL_MODELS)[number];
/** Bumped whenever a model's arithmetic changes: a stored fill names the version that priced it. */
export const FILL_MODEL_VERSION = 1;

export interface Quote {
  bid: Price;
  ask: Price;
  last: Price;
  /** Shares displayed at the bid and at the ask (fixed point, QTY_SCALE). */
  bidSize: Qty;
  askSize: Qty;
}

export interface RealisticParams {
  /** The impact, in basis points, of an order as large as the whole day's volume. */
  impactCoefficientBps: bigint;
  /** The instrument's daily volume in shares (fixed point, QTY_SCALE); above zero. */
  dailyVolume: Qty;
}

export interface FillDecision {
  /** What executes now: at most the order's remaining quantity; zero when nothing is available. */
  quantity: Qty;
  price: Price;
  /** Slippage from the reference (the touch for spread/realistic, the last for ideal), in 1/100 bps. */
  slippageCentiBps: bigint;
  /** Why the fill got this price and size, in words. */
  reason: string;
}

/** 1 = 10,000 bps = 1,000,000 centi-bps. */
const CENTI_BPS_PER_UNIT = 1_000_000n;
/** sqrt(quantity / volume) is computed with this many decimal digits (as an integer × 10^4). */
const SQRT_SCALE = 10_000n;

/** The integer square root (floor) of a non-negative bigint, by Newton's method. */
export function isqrt(n: bigint): bigint {
  assert(n >= 0n, `isqrt of a negative number: ${n}`);
  if (n < 2n) return n;
  let x = n;
  let y = (x + 1n) / 2n;
  // Converges from above; bounded by the bit length, so the loop always ends.
  while (y < x) {
    x = y;
    y = (x + n / x) / 2n;
  }
  return x;
}

/** The square-root impact of `quantity` against `volume`, in 1/100 bps, rounded up (against the trader). */
export function impactCentiBps(quantity: Qty, params: RealisticParams): bigint {
  assert(params.dailyVolume > 0n, 'daily volume must be above zero');
  assert(quantity >= 0n && params.impactCoefficientBps >= 0n, 'quantity and coefficient are not negative');
  const sqrtScaled = isqrt((quantity * SQRT_SCALE * SQRT_SCALE) / params.dailyVolume);
  return divRound(params.impactCoefficientBps * 100n * sqrtScaled, SQRT_SCALE, 'up');
}

/** `price` moved by `centiBps` against the trader: up for a buy, down for a sell, rounded the same way. */
export function applySlippage(side: Side, price: Price, centiBps: bigint): Price {
  if (side === 'buy') return divRound(price * (CENTI_BPS_PER_UNIT + centiBps), CENTI_BPS_PER_UNIT, 'up');
  const moved = divRound(price * (CENTI_BPS_PER_UNIT - centiBps), CENTI_BPS_PER_UNIT, 'down');
  // A price never goes to zero or below, however large the impact.
  return moved > 0n ? moved : 1n;
}

/** What the model is asked to execute: the order's side, what is open, what filled before, its limit. */
export interface ModelOrder {
  side: Side;
  /** Shares still open (above zero). */
  remaining: Qty;
  /** Shares this order filled in earlier executions: its impact builds on them (below). */
  filledBefore?: Qty;
  /** The worst price this execution may have (a limit order's limit); null for none. */
  limit?: Price | null;
}

/** Bisection steps to find the largest quantity within a limit: a Qty below 2^64 needs at most 64. */
const LIMIT_SEARCH_STEPS_MAX = 80;

/**
 * An execution of `order` against `quote` under `model`: how much, at what price, and why.
 *
 * - `ideal`: everything open, at the last price (the caller's execution price: the tick that
 *   made the order executable, so a gap through a limit fills at the gap price, as before).
 * - `spread`: everything open, at the touch (a buy at the ask, a sell at the bid) — nothing when
 *   the touch is beyond the limit (a limit fills when the opposite side reaches it).
 * - `realistic`: at most the displayed size, at the touch moved against the trader by the
 *   square-root impact of everything this order has taken (earlier parts included): the liquidity
 *   an order consumed does not come back at the old price, so each later part pays more. With a
 *   limit, the largest quantity whose price stays within it.
 */
export function modelExecution(model: FillModelName, order: ModelOrder, quote: Quote, params?: RealisticParams): FillDecision {
  const { side, remaining } = order;
  assert(remaining > 0n, 'an order to fill has a quantity left');
  const limit = order.limit ?? null;
  const within = (price: Price) => limit === null || (side === 'buy' ? price <= limit : price >= limit);
  const sideName = side === 'buy' ? 'ask' : 'bid';
  if (model === 'ideal') return { quantity: remaining, price: quote.last, slippageCentiBps: 0n, reason: 'ideal: the whole quantity at the last price' };
  const touch = side === 'buy' ? quote.ask : quote.bid;
  if (!within(touch)) return { quantity: 0n, price: touch, slippageCentiBps: 0n, reason: `${model}: the ${sideName} (${formatPrice(touch)}) has not reached the limit` };
  if (model === 'spread') return { quantity: remaining, price: touch, slippageCentiBps: 0n, reason: `spread: the whole quantity at the ${sideName}` };
  assert(params !== undefined, 'the realistic model needs its parameters');
  const displayed = side === 'buy' ? quote.askSize : quote.bidSize;
  const before = order.filledBefore ?? 0n;
  let quantity = remaining < displayed ? remaining : displayed;
  if (quantity === 0n) return { quantity: 0n, price: touch, slippageCentiBps: 0n, reason: `realistic: nothing displayed at the ${sideName}; waiting for the next quote` };
  const priceOf = (q: bigint) => applySlippage(side, touch, impactCentiBps(before + q, params));
  let limited = false;
  if (!within(priceOf(quantity))) {
    // The price grows with the quantity: bisect for the largest quantity still within the limit.
    limited = true;
    let lo = 0n;
    let hi = quantity;
    for (let step = 0; step < LIMIT_SEARCH_STEPS_MAX && hi - lo > 1n; step++) {
      const mid = (lo + hi) / 2n;
      if (within(priceOf(mid))) lo = mid;
      else hi = mid;
    }
    quantity = lo;
    if (quantity === 0n) return { quantity: 0n, price: touch, slippageCentiBps: 0n, reason: 'realistic: the impact of even the smallest part would pass the limit' };
  }
  const impact = impactCentiBps(before + quantity, params);
  const price = applySlippage(side, touch, impact);
  const part = limited ? 'the most the limit allows' : quantity < remaining ? 'the displayed size (the rest waits for the next quote)' : 'the whole quantity';
  const cumulative = before > 0n ? ' (counting the shares it filled before)' : '';
  return {
    quantity,
    price,
    slippageCentiBps: impact,
    reason: `realistic: ${part} at the ${sideName} plus a square-root impact of ${formatCentiBps(impact)} bps${cumulative}`,
  };
}

/** The market order's execution against `quote` under `model` (no limit, nothing filled before). */
export function fillMarket(model: FillModelName, side: Side, remaining: Qty, quote: Quote, params?: RealisticParams): FillDecision {
  return modelExecution(model, { side, remaining }, quote, params);
}

export function formatCentiBps(centiBps: bigint): string {
  const whole = centiBps / 100n;
  const fraction = (centiBps % 100n).toString().padStart(2, '0');
  return `${whole}.${fraction}`;
}

/**
 * A seeded 32-bit generator (mulberry32): the same seed gives the same sequence on every
 * machine, so latencies and other random choices of a run can be replayed exactly.
 */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** The latency between acceptance and execution of the `n`th order of a seeded run: base + jitter in [0, jitterMs]. */
export function latencyMs(seed: number, n: number, baseMs: number, jitterMs: number): number {
  assert(Number.isInteger(n) && n >= 0 && Number.isInteger(baseMs) && baseMs >= 0 && Number.isInteger(jitterMs) && jitterMs >= 0, 'latency settings are whole non-negative numbers');
  // Mixing the order's number into the seed gives each order its own draw, independent of order.
  const next = seededRandom((seed ^ Math.imul(n + 1, 0x9e3779b1)) >>> 0);
  return baseMs + (jitterMs === 0 ? 0 : next() % (jitterMs + 1));
}
