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
 * Nothing here is wired into the engine yet; the engine's fill path uses `ideal` semantics.
 */
import { assert } from './errors.js';
import { divRound, type Price, type Qty } from './money.js';
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

/** The market order's execution against `quote` under `model`. */
export function fillMarket(model: FillModelName, side: Side, remaining: Qty, quote: Quote, params?: RealisticParams): FillDecision {
  assert(remaining > 0n, 'an order to fill has a quantity left');
  if (model === 'ideal') return { quantity: remaining, price: quote.last, slippageCentiBps: 0n, reason: 'ideal: the whole quantity at the last price' };
  const touch = side === 'buy' ? quote.ask : quote.bid;
  if (model === 'spread') {
    return { quantity: remaining, price: touch, slippageCentiBps: 0n, reason: `spread: the whole quantity at the ${side === 'buy' ? 'ask' : 'bid'}` };
  }
  assert(params !== undefined, 'the realistic model needs its parameters');
  const displayed = side === 'buy' ? quote.askSize : quote.bidSize;
  const quantity = remaining < displayed ? remaining : displayed;
  if (quantity === 0n) return { quantity: 0n, price: touch, slippageCentiBps: 0n, reason: 'realistic: nothing displayed on this side; waiting for the next quote' };
  const impact = impactCentiBps(quantity, params);
  const price = applySlippage(side, touch, impact);
  const part = quantity < remaining ? 'the displayed size (the rest waits for the next quote)' : 'the whole quantity';
  return {
    quantity,
    price,
    slippageCentiBps: impact,
    reason: `realistic: ${part} at the ${side === 'buy' ? 'ask' : 'bid'} plus a square-root impact of ${formatCentiBps(impact)} bps`,
  };
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
