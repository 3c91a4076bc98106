import { AppError } from '../../core/errors.js';

const SERVICE = 'resets';

/** The codes this service raises (src/http/errors.ts gives each its status). */
export type ResetsErrorCode = 'RESET_CONTENDED';

/**
 * A reset lost its race with the account's own trading every time it tried (an order accepted
 * while it ran, each time): nothing changed; the client may try again.
 */
export class ResetRetriesExhaustedError extends AppError<ResetsErrorCode> {
  constructor(userId: string, tries: number) {
    super(SERVICE, 'RESET_CONTENDED', `the reset of user ${userId} raced new orders ${tries} times and changed nothing; try again`, {
      details: { user_id: userId, tries, retry_after_s: 1 },
    });
  }
}
