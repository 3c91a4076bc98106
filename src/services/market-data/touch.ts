/**
 * Quotes from prices: the bid and ask a feed publishes around each last price. A tick that
 * brings its own touch (a replay file with bid and ask columns, an admin's explicit quote) keeps
 * it; any other gets half its tier's spread on each side (FEED_SPREAD_BPS, defaults in
 * core/liquidity.ts) and displayed sizes drawn from a hash of the seed, the ticker and the price.
 *
 * The draws are a pure function of (seed, ticker, price), not of a generator's position: the
 * same seed and the same price path give the same quotes, whichever feed instance published
 * them and however often a price was republished.
 */
import { displayedSize, spreadAround, TIER_PARAMS, type LiquidityTier } from '../../core/liquidity.js';
import type { Quote } from './quote-store.js';

export type SpreadBpsByTier = Readonly<Record<LiquidityTier, bigint>>;

export const DEFAULT_SPREAD_BPS: SpreadBpsByTier = { large: TIER_PARAMS.large.spreadBps, mid: TIER_PARAMS.mid.spreadBps, small: TIER_PARAMS.small.spreadBps };

export interface TouchSettings {
  spreadBps: SpreadBpsByTier;
  seed: number;
}

export const DEFAULT_TOUCH: TouchSettings = { spreadBps: DEFAULT_SPREAD_BPS, seed: 42 };

/** FNV-1a (32 bits) of the text: a stable, well-spread draw without state. */
function draw(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** The quote published for `last`: its own bid and ask when it has both, else the tier's. */
export function withTouch<T extends Quote>(quote: T, tier: LiquidityTier, settings: TouchSettings): T {
  const params = TIER_PARAMS[tier];
  // A touch given without sizes displays the tier's least size on each side.
  if (quote.bid !== undefined && quote.ask !== undefined) {
    return { ...quote, bidSize: quote.bidSize ?? params.displayedSizeMin, askSize: quote.askSize ?? params.displayedSizeMin };
  }
  const key = `${settings.seed}|${quote.ticker}|${quote.price}`;
  return {
    ...quote,
    ...spreadAround(quote.price, settings.spreadBps[tier]),
    bidSize: quote.bidSize ?? displayedSize(params, draw(`${key}|bid`)),
    askSize: quote.askSize ?? displayedSize(params, draw(`${key}|ask`)),
  };
}

/** Applies `withTouch` to a batch, each ticker with its tier (unknown tickers: large). */
export function touchAll<T extends Quote>(quotes: readonly T[], tierOf: (ticker: string) => LiquidityTier | undefined, settings: TouchSettings): T[] {
  return quotes.map((q) => withTouch(q, tierOf(q.ticker) ?? 'large', settings));
}
