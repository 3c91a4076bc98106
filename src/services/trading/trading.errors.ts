import { AppError } from '../../core/errors.js';

const SERVICE = 'trading';

/** An order could not be executed for a reason that is not a business outcome (a bug, a constraint). */
export class ExecutionFailedError extends AppError {
  constructor(orderId: string, cause?: AppError) {
    super(SERVICE, 'EXECUTION_FAILED', `order ${orderId} could not be executed`, { cause, details: { order_id: orderId } });
  }
}

/**
 * Transient: a step of the fill statement found its row changed by a concurrent transaction
 * after the statement's snapshot (two engines selling from the same holding). The transaction
 * is rolled back and retried with a fresh snapshot.
 */
export class ExecutionConflictError extends AppError {
  constructor(orderId: string) {
    super(SERVICE, 'EXECUTION_CONFLICT', `order ${orderId} met a concurrent change; retry`, { details: { order_id: orderId } });
  }
}
