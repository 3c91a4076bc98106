/**
 * The arithmetic of partial fills, pure: what part of a buy's hold one execution may spend,
 * what stays held for the remainder, the average price across executions. Everything is exact
 * in bigint and conserves value: the parts of a hold always add up to the hold, so no sequence
 * of partial fills can release more cash than was held, or strand any.
 *
 * executions.ts plans each part with them: a market order's remainder keeps its proportional
 * share of the hold (splitHold); a limit buy's keeps what its shares can cost at the limit.
 */
import { assert } from './errors.js';
import { buyCost, divRound, weightedAvgCost, type Cash, type Price, type Qty } from './money.js';

export interface HoldSplit {
  /** The part of the hold this execution may spend (its cost must fit in it). */
  forExecution: Cash;
  /** What stays held for the quantity still open. */
  keep: Cash;
}

/**
 * Splits the hold `reserved` of an order with `remaining` shares open when `executed` of them
 * execute now: the remainder keeps its proportional share rounded UP (a resting remainder is
 * never under-held), the execution gets the rest. `forExecution + keep === reserved` always.
 */
export function splitHold(reserved: Cash, remaining: Qty, executed: Qty): HoldSplit {
  assert(reserved >= 0n && remaining > 0n && executed > 0n && executed <= remaining, 'a split of a hold by a quantity within what is open');
  const keep = executed === remaining ? 0n : divRound(reserved * (remaining - executed), remaining, 'up');
  return { forExecution: reserved - keep, keep };
}

export type PartialBuy =
  | { outcome: 'fill'; cost: Cash; released: Cash; keep: Cash }
  | { outcome: 'reject' };

/**
 * One execution of a buy: its cost (quantity × price, rounded up) must fit in its part of the
 * hold, else it is refused (the engine rejects or waits, as for a whole order). What the
 * execution does not spend returns to available cash; `keep` stays held.
 */
export function executePartialBuy(reserved: Cash, remaining: Qty, executed: Qty, price: Price): PartialBuy {
  const { forExecution, keep } = splitHold(reserved, remaining, executed);
  const cost = buyCost(executed, price);
  if (cost > forExecution) return { outcome: 'reject' };
  return { outcome: 'fill', cost, released: forExecution - cost, keep };
}

/**
 * The average fill price after another execution, weighted by quantity, rounded half-up to
 * the price scale (a display value: the cash moved is each execution's own cost). The same
 * arithmetic as a position's average cost.
 */
export function averageFillPrice(filledQty: Qty, averagePrice: Price, executed: Qty, price: Price): Price {
  assert(executed > 0n, 'an execution adds a quantity');
  return weightedAvgCost(filledQty, averagePrice, executed, price);
}
