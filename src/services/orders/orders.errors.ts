import { AppError } from '../../core/errors.js';

const SERVICE = 'orders';

/** A business rule of a lower layer refused the order; the cause says which. */
export class OrderRejectedError extends AppError {
  constructor(cause: AppError) {
    super(SERVICE, 'ORDER_REJECTED', `order rejected: ${cause.message}`, { cause });
  }
}

export class OrderNotFoundError extends AppError {
  constructor(orderId: string) {
    super(SERVICE, 'ORDER_NOT_FOUND', `no order ${orderId}`, { details: { order_id: orderId } });
  }
}

export class OrderNotCancelableError extends AppError {
  constructor(orderId: string, status: string) {
    super(SERVICE, 'ORDER_NOT_CANCELABLE', `order ${orderId} is ${status} and can no longer be canceled`, {
      details: { order_id: orderId, status },
    });
  }
}

export class IdempotencyKeyReusedError extends AppError {
  constructor(clientOrderId: string) {
    super(SERVICE, 'IDEMPOTENCY_KEY_REUSED', `client_order_id ${clientOrderId} was already used for a different order`, {
      details: { client_order_id: clientOrderId },
    });
  }
}

/**
 * Refusal: the order is worth less than the minimum notional at the quote. Orders this small
 * exist only to probe rounding (a fill of a few millionths of a share), so they are refused.
 */
export class NotionalTooSmallError extends AppError {
  constructor(details: { ticker: string; quantity: string; price: string; value: string; minimum: string }) {
    super(
      SERVICE,
      'NOTIONAL_TOO_SMALL',
      `the order is worth ${details.value} (${details.quantity} x ${details.price}), below the minimum of ${details.minimum} per order; ` +
        'only a sell of a whole position may be smaller',
      { details },
    );
  }
}
