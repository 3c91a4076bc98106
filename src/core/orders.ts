/**
 * The order state machine and the engine's decisions, as pure functions.
 *
 *   PENDING -> OPEN | FILLED | REJECTED | CANCELED | EXPIRED
 *   OPEN    -> FILLED | REJECTED | CANCELED | EXPIRED | REPLACED
 *
 * PENDING is an order accepted and on its way to execution; OPEN one that rests, waiting for its
 * price (a limit, a stop, a trailing stop) or its session (opg, cls, a market order placed while
 * the market is closed). Terminal statuses never change.
 */
import type { ExecutionPlan } from './executions.js';
import { quoteFreshness } from './market.js';
import { buyCost, notionalAtLeast, reservationFor, sellProceeds, type Cash, type Price, type Qty } from './money.js';
import { initialState, onTick, type OrderTerms, type PriorState, type RestingState } from './order-terms.js';

export { ORDER_TYPES, TIMES_IN_FORCE, type OrderType, type TimeInForce } from './order-terms.js';

export const ORDER_STATUSES = ['PENDING', 'OPEN', 'FILLED', 'CANCELED', 'EXPIRED', 'REJECTED', 'REPLACED'] as const;
export type OrderStatus = (typeof ORDER_STATUSES)[number];
/**
 * The status clients see: an OPEN order with shares filled is PARTIALLY_FILLED. The database
 * keeps it OPEN — it rests, waits and can be canceled exactly as any open order — so every
 * "still live" guard stays one comparison; only the view tells the two apart.
 */
export type OrderViewStatus = OrderStatus | 'PARTIALLY_FILLED';
export function viewStatus(status: OrderStatus, filledQuantity: Qty): OrderViewStatus {
  return status === 'OPEN' && filledQuantity > 0n ? 'PARTIALLY_FILLED' : status;
}
/** What `status=open` and `status=closed` mean in a list. */
export const OPEN_STATUSES = ['PENDING', 'OPEN'] as const satisfies readonly OrderStatus[];
export const CLOSED_STATUSES = ['FILLED', 'CANCELED', 'EXPIRED', 'REJECTED', 'REPLACED'] as const satisfies readonly OrderStatus[];
export const ORDER_SIDES = ['buy', 'sell'] as const;
export type OrderSide = (typeof ORDER_SIDES)[number];

/** Why an order ended REJECTED; stable strings clients may match on. */
export const REJECT_REASONS = {
  priceMovedBeyondReservation: 'PRICE_MOVED_BEYOND_RESERVATION',
  priceUnavailable: 'PRICE_UNAVAILABLE',
  deliveryAttemptsExceeded: 'DELIVERY_ATTEMPTS_EXCEEDED',
  /** A sell whose proceeds at the execution price round down to 0.00: no shares leave for nothing. */
  valueRoundsToZero: 'VALUE_ROUNDS_TO_ZERO',
  /** A sell whose commission is more than its proceeds and what it held for the commission. */
  commissionExceedsProceeds: 'COMMISSION_EXCEEDS_PROCEEDS',
} as const satisfies Record<string, string>;
export type RejectReason = (typeof REJECT_REASONS)[keyof typeof REJECT_REASONS];

/** Why an order ended CANCELED when nobody asked for it. */
export const CANCEL_REASONS = {
  /** ioc or fok that could not execute at once. */
  notMarketable: 'NOT_MARKETABLE',
  /** ioc or fok placed while the market is closed. */
  marketClosed: 'MARKET_CLOSED',
  /** opg or cls that did not execute at its open or close. */
  notFilledAtSession: 'NOT_FILLED_AT_SESSION',
  /** Its account was reset: every live order of the account ends with it. */
  accountReset: 'ACCOUNT_RESET',
} as const;
/**
 * A partly filled order whose next execution fails its final check ends CANCELED (not
 * REJECTED: its fills stand), with the refusal as its cancel reason.
 */
export type CancelReason = (typeof CANCEL_REASONS)[keyof typeof CANCEL_REASONS] | RejectReason;

export function isTerminal(status: OrderStatus): boolean {
  return status !== 'PENDING' && status !== 'OPEN';
}

const TRANSITIONS: Record<OrderStatus, readonly OrderStatus[]> = {
  PENDING: ['OPEN', 'FILLED', 'REJECTED', 'CANCELED', 'EXPIRED'],
  OPEN: ['FILLED', 'REJECTED', 'CANCELED', 'EXPIRED', 'REPLACED'],
  FILLED: [],
  CANCELED: [],
  EXPIRED: [],
  REJECTED: [],
  REPLACED: [],
};

export function canTransition(from: OrderStatus, to: OrderStatus): boolean {
  return TRANSITIONS[from].includes(to);
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
  | { kind: 'fill'; price: Price; amount: Cash; triggered: boolean }
  /**
   * An execution a fill model planned (core/executions): part or all of what is open.
   * `thenCancel`: the rest may not rest (an ioc's, an opg or cls order's after its auction).
   */
  | { kind: 'execute'; plan: Extract<ExecutionPlan, { kind: 'fill' }>; triggered: boolean; thenCancel?: CancelReason }
  /** `triggered`: a stop that triggered, then failed its final check. */
  | { kind: 'reject'; reason: RejectReason; triggered?: boolean }
  /** No fresh price yet: the order stays PENDING and is looked at again later. */
  | { kind: 'wait' }
  /** It rests OPEN, with the state its price watch starts from. */
  | { kind: 'rest'; state: RestingState }
  | { kind: 'cancel'; reason: CancelReason };

export interface DecisionLimits {
  /** A quote older than this is no price. */
  priceAgeMsMax: number;
  /** An order that found no fresh price for this long after it was placed is rejected. */
  priceWaitMsMax: number;
}

/** A fill at `price`, or the reason it cannot be: the buy's final check, a sell worth 0.00. */
export function fillAt(order: { side: OrderSide; quantity: Qty; reservedAmount: Cash }, price: Price, triggered: boolean): Decision {
  const execution = order.side === 'buy' ? executeBuy(order.quantity, price, order.reservedAmount) : executeSell(order.quantity, price);
  return execution.outcome === 'fill' ? { kind: 'fill', price, amount: execution.amount, triggered } : { kind: 'reject', reason: execution.reason, ...(triggered ? { triggered } : {}) };
}

export interface ArrivingOrder {
  terms: OrderTerms;
  reservedAmount: Cash;
  createdAtMs: number;
  /** A replacement: what it carries over from the order it replaced. */
  prior?: PriorState;
}

function fillable(order: ArrivingOrder) {
  return { side: order.terms.side, quantity: order.terms.quantity, reservedAmount: order.reservedAmount };
}

/**
 * The engine's decision for an order it has just been handed (PENDING), given the quote it can
 * see (or none), whether the market is open, and the time. Pure: the same inputs always give
 * the same decision.
 *
 * - Market closed: ioc and fok are canceled (they cannot execute at once); everything else rests
 *   for the session (market orders wait for the open).
 * - opg and cls rest for the session's open or close.
 * - No fresh price: wait (rejected after priceWaitMsMax) — except orders that rest on a price
 *   anyway (limit, stop, stop_limit, trailing_stop with day or gtc): they rest and the ticks decide.
 * - Otherwise the current quote is the order's first tick: it executes (fill, or the final
 *   check's rejection), or it rests — or, ioc and fok, is canceled as not marketable.
 */
/**
 * How an executable order becomes a decision: by default the whole quantity at the execution
 * price with the buy's final check (fillAt); the engine passes its fill model's instead.
 */
export type Execute = (price: Price, triggered: boolean) => Decision;

export function decideOnArrival(
  order: ArrivingOrder,
  quote: { price: Price; asOfMs: number } | undefined,
  nowMs: number,
  marketOpen: boolean,
  limits: DecisionLimits,
  execute: Execute = (price, triggered) => fillAt(fillable(order), price, triggered),
): Decision {
  const { terms } = order;
  const immediate = terms.timeInForce === 'ioc' || terms.timeInForce === 'fok';
  if (!marketOpen) {
    if (immediate) return { kind: 'cancel', reason: CANCEL_REASONS.marketClosed };
    return { kind: 'rest', state: initialState(terms, quote?.price, order.prior) };
  }
  if (terms.timeInForce === 'opg' || terms.timeInForce === 'cls') return { kind: 'rest', state: initialState(terms, quote?.price, order.prior) };
  const fresh = quoteFreshness(quote?.asOfMs, nowMs, limits.priceAgeMsMax) === 'fresh';
  if (!fresh) {
    if (terms.type !== 'market' && !immediate) return { kind: 'rest', state: initialState(terms, undefined, order.prior) };
    return nowMs - order.createdAtMs > limits.priceWaitMsMax ? { kind: 'reject', reason: REJECT_REASONS.priceUnavailable } : { kind: 'wait' };
  }
  const price = quote!.price;
  const outcome = onTick(terms, initialState(terms, price, order.prior), price);
  if (outcome.kind === 'execute') return execute(outcome.price, outcome.triggered);
  if (immediate) return { kind: 'cancel', reason: CANCEL_REASONS.notMarketable };
  return { kind: 'rest', state: outcome.state };
}

/**
 * A session event for a resting order: at the open, opg orders and market orders waiting for it
 * execute at the opening price (an opg limit not reached is canceled); at the close, cls orders
 * execute at the closing price (or are canceled) and day orders expire. Undefined: the event
 * does not concern the order (the ticks keep deciding).
 */
export function decideOnSession(
  order: ArrivingOrder & { state: RestingState },
  event: 'open' | 'close',
  price: Price | undefined,
  execute: Execute = (p, triggered) => fillAt(fillable(order), p, triggered),
): Decision | { kind: 'expire' } | undefined {
  const { terms } = order;
  const sessionOrder = (event === 'open' && terms.timeInForce === 'opg') || (event === 'close' && terms.timeInForce === 'cls');
  const waitingForOpen = event === 'open' && terms.type === 'market' && terms.timeInForce !== 'cls';
  if (sessionOrder || waitingForOpen) {
    // No fresh price at the session: an opg or cls order missed its auction; a market order that
    // waited for the open is rejected as any market order without a price is.
    if (price === undefined) return sessionOrder ? { kind: 'cancel', reason: CANCEL_REASONS.notFilledAtSession } : { kind: 'reject', reason: REJECT_REASONS.priceUnavailable };
    const outcome = onTick(terms, order.state, price);
    if (outcome.kind === 'execute') return execute(outcome.price, outcome.triggered);
    return { kind: 'cancel', reason: CANCEL_REASONS.notFilledAtSession };
  }
  if (event === 'close' && terms.timeInForce === 'day') return { kind: 'expire' };
  return undefined;
}
