import { AppError } from '../../core/errors.js';

const SERVICE = 'market-data';

/** The codes this service raises (src/http/errors.ts gives each its status). */
export type MarketDataErrorCode = 'UNKNOWN_TICKER' | 'PRICE_UNAVAILABLE' | 'REPLAY_FILE_INVALID';

/** Refusal: the ticker is not a listed instrument (whatever its shape; see instruments.ts). */
export class UnknownTickerError extends AppError<MarketDataErrorCode> {
  constructor(ticker: string) {
    // The echo is bounded: the ticker may be arbitrary client input.
    const shown = ticker.slice(0, 32);
    super(SERVICE, 'UNKNOWN_TICKER', `unknown ticker ${JSON.stringify(shown)}`, { details: { ticker: shown } });
  }
}

/**
 * Transient: there is no quote for a listed ticker, or it is older than the maximum age (or
 * dated in the future beyond the clock-skew allowance). Worth a retry once the feed ticks.
 */
export class PriceUnavailableError extends AppError<MarketDataErrorCode> {
  constructor(ticker: string, reason: 'no_price' | 'stale' | 'future', ageMs?: number) {
    const message =
      reason === 'no_price'
        ? `no price for ${ticker} yet`
        : reason === 'stale'
          ? `the price of ${ticker} is ${ageMs} ms old, older than allowed`
          : `the price of ${ticker} is dated ${ageMs === undefined ? '' : `${-ageMs} ms `}in the future`;
    super(SERVICE, 'PRICE_UNAVAILABLE', message, {
      details: { ticker, reason, ...(ageMs !== undefined ? { age_ms: ageMs } : {}) },
    });
  }
}

/** A replay file that cannot be used: too large, malformed, or with no usable rows. */
export class ReplayFileInvalidError extends AppError<MarketDataErrorCode> {
  constructor(message: string, details?: Record<string, unknown>) {
    super(SERVICE, 'REPLAY_FILE_INVALID', message, { details });
  }
}

/** True for market data refusals worth retrying later (the price may become available). */
export function isTransientMarketDataError(err: unknown): boolean {
  return err instanceof PriceUnavailableError;
}
