import { AppError } from '../../core/errors.js';

const SERVICE = 'portfolios';

/** The codes this service raises (src/http/errors.ts gives each its status). */
export type PortfoliosErrorCode = 'INSUFFICIENT_HOLDINGS';

/** Refusal: the user does not hold enough unreserved shares of the ticker. */
export class InsufficientHoldingsError extends AppError<PortfoliosErrorCode> {
  constructor(userId: string, ticker: string, requested: string, available: string) {
    super(SERVICE, 'INSUFFICIENT_HOLDINGS', `${available} ${ticker} available, ${requested} required`, {
      details: { user_id: userId, ticker, requested, available },
    });
  }
}
