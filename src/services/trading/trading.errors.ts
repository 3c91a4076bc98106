import { AppError } from '../../core/errors.js';

const SERVICE = 'trading';

/**
 * The codes this service raises (src/http/errors.ts gives each its status). The engine retries
 * EXECUTION_CONFLICT itself; it is in the HTTP table only so that nothing is ever unmapped.
 */
export type TradingErrorCode = 'EXECUTION_CONFLICT';

/**
 * Transient: a step of the fill statement found its row changed by a concurrent transaction
 * after the statement's snapshot (two engines selling from the same holding). The transaction
 * is rolled back and retried with a fresh snapshot.
 */
export class ExecutionConflictError extends AppError<TradingErrorCode> {
  constructor(orderId: string) {
    super(SERVICE, 'EXECUTION_CONFLICT', `order ${orderId} met a concurrent change; retry`, { details: { order_id: orderId } });
  }
}
