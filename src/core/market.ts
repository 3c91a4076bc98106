/**
 * The freshness rule of quotes, as a pure function: a quote is usable when it exists, is at most
 * `priceAgeMsMax` old, and is not dated beyond the clock-skew allowance in the future (a feed on
 * another host whose clock runs ahead). Nothing is ever priced from a quote that fails it.
 */

/** A quote dated further in the future than this (clock skew between hosts) is refused too. */
export const PRICE_CLOCK_SKEW_MS_MAX = 2_000;

export type Freshness = 'fresh' | 'missing' | 'stale' | 'future';

export function quoteFreshness(asOfMs: number | undefined, nowMs: number, priceAgeMsMax: number): Freshness {
  if (asOfMs === undefined) return 'missing';
  const ageMs = nowMs - asOfMs;
  if (ageMs > priceAgeMsMax) return 'stale';
  if (ageMs < -PRICE_CLOCK_SKEW_MS_MAX) return 'future';
  return 'fresh';
}
