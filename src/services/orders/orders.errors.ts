import { AppError } from '../../core/errors.js';

const SERVICE = 'orders';

/** The codes this service raises (src/http/errors.ts gives each its status). */
export type OrdersErrorCode =
  | 'ORDER_REJECTED'
  | 'ORDER_NOT_FOUND'
  | 'ORDER_NOT_CANCELABLE'
  | 'ORDER_NOT_REPLACEABLE'
  | 'IDEMPOTENCY_KEY_REUSED'
  | 'NOTIONAL_TOO_SMALL'
  | 'SERVICE_UNAVAILABLE';

/** A business rule of a lower layer refused the order; the cause says which. */
export class OrderRejectedError extends AppError<OrdersErrorCode> {
  constructor(cause: AppError) {
    super(SERVICE, 'ORDER_REJECTED', `order rejected: ${cause.message}`, { cause });
  }
}

export class OrderNotFoundError extends AppError<OrdersErrorCode> {
  constructor(orderId: string, by: 'id' | 'client_order_id' = 'id') {
    super(SERVICE, 'ORDER_NOT_FOUND', by === 'id' ? `no order ${orderId}` : `no order with client_order_id ${orderId}`, {
      details: by === 'id' ? { order_id: orderId } : { client_order_id: orderId },
    });
  }
}

export class OrderNotCancelableError extends AppError<OrdersErrorCode> {
  constructor(orderId: string, status: string) {
    super(SERVICE, 'ORDER_NOT_CANCELABLE', `order ${orderId} is ${status} and can no longer be canceled`, {
      details: { order_id: orderId, status },
    });
  }
}

export class IdempotencyKeyReusedError extends AppError<OrdersErrorCode> {
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
export class NotionalTooSmallError extends AppError<OrdersErrorCode> {
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

/** The api process has more orders waiting for an accept statement than it queues: try again. */
export class AcceptQueueFullError extends AppError<OrdersErrorCode> {
  constructor(queueMax: number) {
    super(SERVICE, 'SERVICE_UNAVAILABLE', `more than ${queueMax} orders are waiting to be accepted; retry in a moment`, {
      details: { queue_max: queueMax, retry_after_s: 1 },
    });
  }
}

/** Only an OPEN order that is not a market order can be replaced (PATCH /orders/{id}). */
export class OrderNotReplaceableError extends AppError<OrdersErrorCode> {
  constructor(orderId: string, status: string, type: string) {
    super(
      SERVICE,
      'ORDER_NOT_REPLACEABLE',
      type === 'market'
        ? `order ${orderId} is a market order; only resting (limit, stop, stop_limit, trailing_stop) orders can be replaced`
        : `order ${orderId} is ${status}; only an OPEN order can be replaced`,
      { details: { order_id: orderId, status, type } },
    );
  }
}
