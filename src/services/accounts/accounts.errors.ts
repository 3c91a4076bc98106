import { AppError } from '../../core/errors.js';

const SERVICE = 'accounts';

/** The codes this service raises (src/http/errors.ts gives each its status). */
export type AccountsErrorCode = 'ACCOUNT_NOT_FOUND' | 'INSUFFICIENT_FUNDS' | 'IDEMPOTENCY_KEY_REUSED';

export class AccountNotFoundError extends AppError<AccountsErrorCode> {
  constructor(userId: string) {
    super(SERVICE, 'ACCOUNT_NOT_FOUND', `no account for user ${userId}`, { details: { user_id: userId } });
  }
}

/** Refusal: the amount exceeds the cash that is neither spent nor held for pending buys. */
export class InsufficientFundsError extends AppError<AccountsErrorCode> {
  constructor(userId: string, requested: string, available: string | undefined) {
    super(SERVICE, 'INSUFFICIENT_FUNDS', `available cash ${available ?? 'is'} below the ${requested} required`, {
      details: { user_id: userId, requested, ...(available !== undefined ? { available } : {}) },
    });
  }
}

/** An Idempotency-Key seen before with a different request (another amount, or a withdrawal). */
export class IdempotencyKeyReusedError extends AppError<AccountsErrorCode> {
  constructor(key: string) {
    super(SERVICE, 'IDEMPOTENCY_KEY_REUSED', `Idempotency-Key ${key} was already used for a different request`, {
      details: { idempotency_key: key },
    });
  }
}
