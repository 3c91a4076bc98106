/**
 * Instruments and the ticker rule. A listed ticker is uppercase: a letter, then up to nine
 * letters, digits or dots (`BRK.B`). Clients may write it in any case: every HTTP edge turns
 * input into the listed form with `normalizeTicker` and answers that form. Services look up
 * exactly; anything that is not a listed instrument is UNKNOWN_TICKER (404).
 */
import type { LiquidityTier } from '../../core/liquidity.js';
import type { Price } from '../../core/money.js';

export const TICKER_PATTERN = /^[A-Z][A-Z0-9.]{0,9}$/;
/** Longest ticker accepted as input anywhere (route params, request bodies). */
export const TICKER_INPUT_LENGTH_MAX = 32;

export interface Instrument {
  ticker: string;
  name: string;
  /** Where the simulator starts when it has no cached price and no stored bar. */
  referencePrice: Price;
  /** Annualized volatility of the simulated walk, as a fraction (0.25 = 25 % a year). */
  annualVolatility: number;
  /** How wide its spread, how large its displayed size and how deep its market (core/liquidity.ts). */
  liquidityTier: LiquidityTier;
}

/** The canonical form of a ticker typed by a person (trimmed, uppercased), or undefined if malformed. */
export function normalizeTicker(raw: string): string | undefined {
  if (raw.length > TICKER_INPUT_LENGTH_MAX) return undefined;
  const ticker = raw.trim().toUpperCase();
  return TICKER_PATTERN.test(ticker) ? ticker : undefined;
}

