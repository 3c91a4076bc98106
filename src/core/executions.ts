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
import { commissionForValue, commissionIncrement, type CommissionSchedule } from './commissions.js';
import { assert } from './errors.js';
import { FILL_MODEL_VERSION, modelExecution, type FillModelName, type Quote as ModelQuote, type RealisticParams } from './fill-models.js';
import { CASH_SCALE, divRound, PRICE_SCALE, QTY_SCALE, type Cash, type Price, type Qty } from './money.js';
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

/** Exact value (quantity × price, scale 10) per cent. */
const VALUE_PER_CENT = 10n ** BigInt(QTY_SCALE + PRICE_SCALE - CASH_SCALE);

/**
 * The cash of a value brought to the cent against the account: a buy pays it rounded up, a
 * sell receives it rounded down.
 */
function valueToCash(side: Side, value: bigint): Cash {
  return divRound(value, VALUE_PER_CENT, side === 'buy' ? 'up' : 'down');
}

/**
 * What one part moves in cash: the order's whole filled value so far brought to the cent, less
 * what its earlier parts moved. The parts of an order therefore add up to its total value rounded
 * once (against the account), however many there are: splitting an order into parts neither
 * costs nor earns a cent. An order's first part, and a whole fill, is quantity × price rounded.
 */
export function partAmount(side: Side, filledValueBefore: bigint, value: bigint): Cash {
  return valueToCash(side, filledValueBefore + value) - valueToCash(side, filledValueBefore);
}

/**
 * What a buy keeps held for the shares still open after this part. With a limit, exactly what
 * they can cost at worst — every remaining share at the limit, in the cumulative rounding, and
 * the commission the schedule would then charge on top of what it has charged — so a hold of
 * quantity × limit (a limit buy's) always covers every part at prices within the limit. Without
 * one (a market order's hold at the quote with a buffer), the hold's proportional share,
 * rounded up so the remainder is never under-held. Never more than the hold.
 */
function keepForRest(order: ExecutableOrder, remaining: Qty, executed: Qty, valueAfter: bigint, chargedAfter: Cash): Cash {
  const rest = remaining - executed;
  if (rest === 0n) return 0n;
  if (order.side !== 'buy' || order.limitPrice === null) return splitHold(order.reservedAmount, remaining, executed).keep;
  const worstValue = valueAfter + rest * order.limitPrice;
  const cost = valueToCash('buy', worstValue) - valueToCash('buy', valueAfter);
  const commissionMax = order.commissionSchedule === null ? 0n : commissionForValue(order.commissionSchedule, order.quantity, worstValue) - chargedAfter;
  const keep = cost + (commissionMax > 0n ? commissionMax : 0n);
  return keep < order.reservedAmount ? keep : order.reservedAmount;
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
  const amount = partAmount(order.side, order.filledValue, value);
  // A part that moves no cash is refused either way: a sell worth less than a cent, or a buy part
  // whose value the cent its earlier parts rounded up to already paid (sub-cent parts only).
  if (amount === 0n) return { kind: 'refuse', reason: EXECUTION_REFUSALS.valueRoundsToZero };
  const commission = commissionIncrement(order.commissionSchedule, order.filledQuantity, order.filledValue, order.commissionCharged, d.quantity, value);
  const keep = keepForRest(order, remaining, d.quantity, order.filledValue + value, order.commissionCharged + commission);
  const forExecution = order.reservedAmount - keep;
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
