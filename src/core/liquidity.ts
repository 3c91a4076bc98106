/**
 * Liquidity tiers: how wide an instrument's spread is, how many shares its quote displays, how
 * much trades in a day, and how hard a large order moves its price. Feeds use the first two to
 * publish a bid and an ask around the last price; the `realistic` fill model uses the volume and
 * the impact coefficient. Pure constants and arithmetic (bigint fixed point).
 *
 * The numbers are round, plausible figures for US equities, not calibrated to any one stock:
 *
 * | tier  | spread | displayed size (each side) | daily volume | impact coefficient |
 * |-------|--------|----------------------------|--------------|--------------------|
 * | large | 2 bps  | 5,000 to 15,000 shares     | 20,000,000   | 100 bps            |
 * | mid   | 10 bps | 5,000 to 15,000 shares     | 1,000,000    | 300 bps            |
 * | small | 40 bps | 1,000 to 3,000 shares      | 200,000      | 800 bps            |
 *
 * The impact coefficient is the cost, in basis points, of an order as large as the day's whole
 * volume (see fill-models.ts: impact = coefficient × sqrt(quantity / daily volume)).
 */
import { assert } from './errors.js';
import { divRound, QTY_SCALE, type Price, type Qty } from './money.js';

export const LIQUIDITY_TIERS = ['large', 'mid', 'small'] as const;
export type LiquidityTier = (typeof LIQUIDITY_TIERS)[number];

const SHARE = 10n ** BigInt(QTY_SCALE);

export interface TierParams {
  /** The full bid-ask spread, in basis points of the last price. */
  spreadBps: bigint;
  /** The least and the most shares a quote displays on each side (whole shares, QTY_SCALE). */
  displayedSizeMin: Qty;
  displayedSizeMax: Qty;
  /** Shares traded in a day (QTY_SCALE). */
  dailyVolume: Qty;
  /** The impact of an order the size of the day's volume, in basis points. */
  impactCoefficientBps: bigint;
}

export const TIER_PARAMS: Readonly<Record<LiquidityTier, TierParams>> = {
  large: { spreadBps: 2n, displayedSizeMin: 5_000n * SHARE, displayedSizeMax: 15_000n * SHARE, dailyVolume: 20_000_000n * SHARE, impactCoefficientBps: 100n },
  mid: { spreadBps: 10n, displayedSizeMin: 5_000n * SHARE, displayedSizeMax: 15_000n * SHARE, dailyVolume: 1_000_000n * SHARE, impactCoefficientBps: 300n },
  small: { spreadBps: 40n, displayedSizeMin: 1_000n * SHARE, displayedSizeMax: 3_000n * SHARE, dailyVolume: 200_000n * SHARE, impactCoefficientBps: 800n },
};

export function isLiquidityTier(value: unknown): value is LiquidityTier {
  return typeof value === 'string' && (LIQUIDITY_TIERS as readonly string[]).includes(value);
}

/** A quote's touch: the best bid and ask with the shares displayed at each. */
export interface Touch {
  bid: Price;
  ask: Price;
  bidSize: Qty;
  askSize: Qty;
}

/**
 * The bid and ask around `last` for a spread of `spreadBps`: the width is the spread rounded up
 * to the tick once (never narrower than asked, less than one tick wider), half of it each side,
 * an odd tick going below (the bid rounded down); the bid stays at least one tick (0.0001) and
 * the ask then keeps the whole width above it.
 */
export function spreadAround(last: Price, spreadBps: bigint): { bid: Price; ask: Price } {
  assert(last > 0n && spreadBps >= 0n, 'a spread around a positive price');
  // Rounding each side outward on its own could make the spread up to two ticks wider than asked.
  const width = divRound(last * spreadBps, 10_000n, 'up');
  const below = divRound(width, 2n, 'up');
  const bid = last - below > 0n ? last - below : 1n;
  const above = last + (width - below);
  return { bid, ask: above > bid + width ? above : bid + width };
}

/**
 * Whole shares displayed on one side, between the tier's least and most, chosen by `draw` (any
 * non-negative integer, e.g. a seeded generator's next value): a feed's displayed size.
 */
export function displayedSize(params: TierParams, draw: number): Qty {
  assert(Number.isInteger(draw) && draw >= 0, 'a draw is a whole non-negative number');
  const min = params.displayedSizeMin / SHARE;
  const span = params.displayedSizeMax / SHARE - min + 1n;
  return (min + (BigInt(draw) % span)) * SHARE;
}

/** The touch a feed publishes for `last` in `tier`, sizes chosen by two draws. */
export function touchFor(last: Price, tier: LiquidityTier, bidDraw: number, askDraw: number): Touch {
  const params = TIER_PARAMS[tier];
  return { ...spreadAround(last, params.spreadBps), bidSize: displayedSize(params, bidDraw), askSize: displayedSize(params, askDraw) };
}

/**
 * The touch of a quote that may not carry one (a feed or a stored value from before quotes had
 * sides, a price an admin set): bid and ask at the last price, the tier's least displayed size.
 * Fills under `ideal` never look at it; `spread` and `realistic` then fill at the last price.
 */
export function touchOrDefault(q: { price: Price; bid?: Price | undefined; ask?: Price | undefined; bidSize?: Qty | undefined; askSize?: Qty | undefined }, tier: LiquidityTier): Touch {
  const params = TIER_PARAMS[tier];
  return {
    bid: q.bid ?? q.price,
    ask: q.ask ?? q.price,
    bidSize: q.bidSize ?? params.displayedSizeMin,
    askSize: q.askSize ?? params.displayedSizeMin,
  };
}
