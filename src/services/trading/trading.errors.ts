import { AppError } from '../../core/errors.js';

const SERVICE = 'trading';

/** An order could not be executed for a reason that is not a business outcome (a bug, a constraint). */
export class ExecutionFailedError extends AppError {
  constructor(orderId: string, cause?: AppError) {
    super(SERVICE, 'EXECUTION_FAILED', `order ${orderId} could not be executed`, { cause, details: { order_id: orderId } });
  }
}
