import { AppError } from '../../core/errors.js';

const SERVICE = 'portfolios';

/** Refusal: the user does not hold enough unreserved shares of the ticker. */
export class InsufficientHoldingsError extends AppError {
  constructor(userId: string, ticker: string, requested: string, available: string) {
    super(SERVICE, 'INSUFFICIENT_HOLDINGS', `${available} ${ticker} available, ${requested} required`, {
      details: { user_id: userId, ticker, requested, available },
    });
  }
}
