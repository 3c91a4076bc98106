/**
 * Commission schedules: a fee per order, per share and in basis points of the fill's value,
 * with a minimum and a maximum, as brokers publish them. Pure bigint: the commission of a fill
 * is its exact value rounded up to the cent (a fee is charged, never shaved), then held within
 * [minimum, maximum]. A schedule of zeros charges nothing; the class rule
 * `commission_per_order` is the schedule with only `perOrder` set.
 */
import { assert } from './errors.js';
import { divRound, PRICE_SCALE, QTY_SCALE, CASH_SCALE, type Cash, type Price, type Qty } from './money.js';

export interface CommissionSchedule {
  /** Cash charged once per fill. */
  perOrder: Cash;
  /** Cash per share, at price scale (4 decimals: $0.0050 a share is 50n). */
  perShare: Price;
  /** Basis points of the fill's value (quantity × price). */
  bps: bigint;
  /** The least a charged fill costs (cash), when the schedule charges anything. */
  minimum: Cash;
  /** The most a fill costs (cash); null for no cap. */
  maximum: Cash | null;
}

export const NO_COMMISSION: CommissionSchedule = { perOrder: 0n, perShare: 0n, bps: 0n, minimum: 0n, maximum: null };

/** qty (scale 6) × price (scale 4) is at scale 10; × bps adds 4 more for the 1/10,000. */
const VALUE_TO_CASH = 10n ** BigInt(QTY_SCALE + PRICE_SCALE - CASH_SCALE);

/** The commission of one fill of `quantity` at `price` under `schedule`. */
export function commissionFor(schedule: CommissionSchedule, quantity: Qty, price: Price): Cash {
  assert(quantity > 0n && price > 0n, 'a fill has a quantity and a price');
  assert(schedule.perOrder >= 0n && schedule.perShare >= 0n && schedule.bps >= 0n && schedule.minimum >= 0n, 'a schedule charges, never pays');
  assert(schedule.maximum === null || schedule.maximum >= schedule.minimum, 'the maximum is not below the minimum');
  // Every part at scale 10 + 4 (cash × 10^12), summed exactly, rounded up to the cent once.
  const exact = schedule.perOrder * VALUE_TO_CASH * 10_000n + quantity * schedule.perShare * 10_000n + quantity * price * schedule.bps;
  if (exact === 0n) return 0n;
  let charged = divRound(exact, VALUE_TO_CASH * 10_000n, 'up');
  if (charged < schedule.minimum) charged = schedule.minimum;
  if (schedule.maximum !== null && charged > schedule.maximum) charged = schedule.maximum;
  return charged;
}
