/**
 * One execution of an order, planned: how much fills now, at what price, what it costs with its
 * commission, what part of the hold it spends and what stays held, and why — everything the
 * engine writes for a fill, decided here without I/O. The fill model (fill-models.ts) says how
 * much and at what price; this module adds the money: the commission increment (commissions.ts),
 * the hold split (partial-fills.ts) and the final check.
 *
 * The final check, for any part of any order: the cash the execution takes (a buy's cost, the
 * commission) must fit in what it brings (its part of the hold, a sell's proceeds). So available
 * cash never falls below what it was, and an order can never spend more than it held.
 */
import { commissionIncrement, type CommissionSchedule } from './commissions.js';
import { assert } from './errors.js';
import { FILL_MODEL_VERSION, modelExecution, type FillModelName, type Quote as ModelQuote, type RealisticParams } from './fill-models.js';
import { buyCost, divRound, sellProceeds, type Cash, type Price, type Qty } from './money.js';
import type { Side, TimeInForce } from './order-terms.js';
import { splitHold } from './partial-fills.js';

/** Why an execution was refused; stable strings (orders.ts re-exports them as reject reasons). */
export const EXECUTION_REFUSALS = {
  priceMovedBeyondReservation: 'PRICE_MOVED_BEYOND_RESERVATION',
  valueRoundsToZero: 'VALUE_ROUNDS_TO_ZERO',
  /** A sell whose commission is more than its proceeds and what it held for the commission. */
  commissionExceedsProceeds: 'COMMISSION_EXCEEDS_PROCEEDS',
} as const;
export type ExecutionRefusal = (typeof EXECUTION_REFUSALS)[keyof typeof EXECUTION_REFUSALS];

/** What an order brings to an execution: its terms, what filled before, what it holds. */
export interface ExecutableOrder {
  side: Side;
  timeInForce: TimeInForce;
  quantity: Qty;
  filledQuantity: Qty;
  /** Σ quantity × price of its earlier fills (scale QTY_SCALE + PRICE_SCALE). */
  filledValue: bigint;
  /** Its hold now (the open part's): a buy's cost and commission, a sell's commission. */
  reservedAmount: Cash;
  commissionCharged: Cash;
  commissionSchedule: CommissionSchedule | null;
  /** The worst price it may fill at (a limit, a triggered stop_limit's limit); null for none. */
  limitPrice: Price | null;
}

/** The quote an execution meets: the last price (the execution price under `ideal`), the touch, when. */
export interface ExecutionQuote extends ModelQuote {
  asOfMs: number;
}

/** Why a fill got its price and size: stored with the fill, returned by GET /orders/{id}/fills. */
export interface Explanation {
  model: FillModelName;
  modelVersion: number;
  /** The realistic model's parameters; null for the others. */
  params: RealisticParams | null;
  quote: ExecutionQuote;
  /** How old the quote was when the execution was decided (ms; never negative). */
  quoteAgeMs: number;
  /** The price's distance from the model's reference (the touch; the last under `ideal`), in 1/100 bps. */
  slippageCentiBps: bigint;
  reason: string;
}

export type ExecutionPlan =
  | {
      kind: 'fill';
      quantity: Qty;
      price: Price;
      /** quantity × price, exact. */
      value: bigint;
      /** A buy's cost (rounded up) or a sell's proceeds (rounded down). */
      amount: Cash;
      commission: Cash;
      /** The part of the hold this execution releases (it pays the cost and commission from it). */
      heldReleased: Cash;
      /** The hold left on the open part (0 when this execution completes the order). */
      reservedAfter: Cash;
      /** The order is whole after it. */
      complete: boolean;
      /** The average price of all its fills after this one (half-up to the price scale). */
      averagePrice: Price;
      explanation: Explanation;
    }
  /** Nothing executes now (the touch beyond the limit, nothing displayed, a fok not whole). */
  | { kind: 'none'; reason: string }
  | { kind: 'refuse'; reason: ExecutionRefusal };

export interface ModelSettings {
  model: FillModelName;
  /** The realistic model's parameters for this order's instrument. */
  params: RealisticParams;
}

/** Plans the next execution of `order` against `quote` at `nowMs`. Pure. */
export function planExecution(order: ExecutableOrder, settings: ModelSettings, quote: ExecutionQuote, nowMs: number): ExecutionPlan {
  const remaining = order.quantity - order.filledQuantity;
  assert(remaining > 0n, 'an order to execute has shares open');
  const { model } = settings;
  const params = model === 'realistic' ? settings.params : undefined;
  const d = modelExecution(model, { side: order.side, remaining, filledBefore: order.filledQuantity, limit: order.limitPrice }, quote, params);
  if (d.quantity === 0n) return { kind: 'none', reason: d.reason };
  if (order.timeInForce === 'fok' && d.quantity < remaining) return { kind: 'none', reason: `fok: only part of the quantity is available at once (${d.reason})` };
  const value = d.quantity * d.price;
  const amount = order.side === 'buy' ? buyCost(d.quantity, d.price) : sellProceeds(d.quantity, d.price);
  if (order.side === 'sell' && amount === 0n) return { kind: 'refuse', reason: EXECUTION_REFUSALS.valueRoundsToZero };
  const commission = commissionIncrement(order.commissionSchedule, order.filledQuantity, order.filledValue, order.commissionCharged, d.quantity, value);
  const { forExecution, keep } = splitHold(order.reservedAmount, remaining, d.quantity);
  if (order.side === 'buy' && amount + commission > forExecution) return { kind: 'refuse', reason: EXECUTION_REFUSALS.priceMovedBeyondReservation };
  if (order.side === 'sell' && commission > forExecution + amount) return { kind: 'refuse', reason: EXECUTION_REFUSALS.commissionExceedsProceeds };
  const filledAfter = order.filledQuantity + d.quantity;
  return {
    kind: 'fill',
    quantity: d.quantity,
    price: d.price,
    value,
    amount,
    commission,
    heldReleased: forExecution,
    reservedAfter: keep,
    complete: filledAfter === order.quantity,
    averagePrice: divRound(order.filledValue + value, filledAfter, 'half-up'),
    explanation: {
      model,
      modelVersion: FILL_MODEL_VERSION,
      params: params ?? null,
      quote,
      quoteAgeMs: Math.max(0, nowMs - quote.asOfMs),
      slippageCentiBps: d.slippageCentiBps,
      reason: d.reason,
    },
  };
}
