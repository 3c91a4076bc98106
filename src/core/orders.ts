/**
 * The order state machine and the engine's pricing decisions, as pure functions.
 *
 *   PENDING -> FILLED | REJECTED | CANCELED      (terminal states never change)
 */
import { quoteFreshness } from './market.js';
import { buyCost, notionalAtLeast, reservationFor, sellProceeds, type Cash, type Price, type Qty } from './money.js';

export const ORDER_STATUSES = ['PENDING', 'FILLED', 'REJECTED', 'CANCELED'] as const;
export type OrderStatus = (typeof ORDER_STATUSES)[number];
export const ORDER_SIDES = ['buy', 'sell'] as const;
export type OrderSide = (typeof ORDER_SIDES)[number];
export const ORDER_TYPES = ['market'] as const;
export type OrderType = (typeof ORDER_TYPES)[number];

/** Why an order ended REJECTED; stable strings clients may match on. */
export const REJECT_REASONS = {
  priceMovedBeyondReservation: 'PRICE_MOVED_BEYOND_RESERVATION',
  priceUnavailable: 'PRICE_UNAVAILABLE',
  deliveryAttemptsExceeded: 'DELIVERY_ATTEMPTS_EXCEEDED',
  /** A sell whose proceeds at the execution price round down to 0.00: no shares leave for nothing. */
  valueRoundsToZero: 'VALUE_ROUNDS_TO_ZERO',
} as const;
export type RejectReason = (typeof REJECT_REASONS)[keyof typeof REJECT_REASONS];

export function isTerminal(status: OrderStatus): boolean {
  return status !== 'PENDING';
}

export function canTransition(from: OrderStatus, to: OrderStatus): boolean {
  return from === 'PENDING' && to !== 'PENDING';
}

/** Cash to hold when a market buy is accepted: quantity × quote × (1 + buffer), rounded up. */
export function buyReservation(quantity: Qty, quote: Price, bufferBps: bigint): Cash {
  return reservationFor(quantity, quote, bufferBps);
}

export type Execution =
  | { outcome: 'fill'; price: Price; amount: Cash }
  | { outcome: 'reject'; reason: RejectReason };

/**
 * The engine's final check for a buy (the seed: "$1520 <= $1575 -> OK"): it fills when the cost
 * at the execution price fits in the reservation, else it is rejected and the hold released.
 * The cost is rounded up to the cent, so it is never 0.00 for a non-zero quantity.
 */
export function executeBuy(quantity: Qty, price: Price, reserved: Cash): Execution {
  const cost = buyCost(quantity, price);
  if (cost > reserved) return { outcome: 'reject', reason: REJECT_REASONS.priceMovedBeyondReservation };
  return { outcome: 'fill', price, amount: cost };
}

/**
 * A sell of reserved shares fills at the market; the proceeds round down to the cent. Proceeds
 * of 0.00 (dust at a low price) would move shares for nothing: the sell is rejected instead.
 */
export function executeSell(quantity: Qty, price: Price): Execution {
  const proceeds = sellProceeds(quantity, price);
  if (proceeds === 0n) return { outcome: 'reject', reason: REJECT_REASONS.valueRoundsToZero };
  return { outcome: 'fill', price, amount: proceeds };
}

/**
 * The minimum-notional rule at acceptance: an order's value at the quote (quantity × price,
 * exact) must reach `minimum`. One exception keeps small positions from being stuck: a sell of
 * a whole position may be smaller, as long as its proceeds are not 0.00.
 */
export function meetsMinimumNotional(
  order: { side: OrderSide; quantity: Qty },
  quote: Price,
  minimum: Cash,
  heldQuantity: Qty | undefined,
): boolean {
  if (notionalAtLeast(order.quantity, quote, minimum)) return true;
  return order.side === 'sell' && heldQuantity === order.quantity && sellProceeds(order.quantity, quote) > 0n;
}

/** What the engine does with a PENDING order now. */
export type Decision =
  | { kind: 'fill'; price: Price; amount: Cash }
  | { kind: 'reject'; reason: RejectReason }
  /** No fresh price yet: the order stays PENDING and is looked at again later. */
  | { kind: 'wait' };

export interface DecisionLimits {
  /** A quote older than this is no price. */
  priceAgeMsMax: number;
  /** An order that found no fresh price for this long after it was placed is rejected. */
  priceWaitMsMax: number;
}

/**
 * The engine's decision for a market order, given the quote it can see (or none) and the time:
 * fill at the quote (the buy's final check included), reject, or wait for a price. Pure: the
 * same order, quote and time always give the same decision.
 */
export function decideMarketOrder(
  order: { side: OrderSide; quantity: Qty; reservedAmount: Cash; createdAtMs: number },
  quote: { price: Price; asOfMs: number } | undefined,
  nowMs: number,
  limits: DecisionLimits,
): Decision {
  if (quoteFreshness(quote?.asOfMs, nowMs, limits.priceAgeMsMax) !== 'fresh') {
    return nowMs - order.createdAtMs > limits.priceWaitMsMax ? { kind: 'reject', reason: REJECT_REASONS.priceUnavailable } : { kind: 'wait' };
  }
  const price = quote!.price;
  const execution = order.side === 'buy' ? executeBuy(order.quantity, price, order.reservedAmount) : executeSell(order.quantity, price);
  return execution.outcome === 'fill' ? { kind: 'fill', price, amount: execution.amount } : { kind: 'reject', reason: execution.reason };
}
