/**
 * Trade execution: moves a PENDING order to its terminal status together with every effect —
 * cash, holds, holdings, the fill and the ledger rows — inside the caller's transaction. The
 * first statement of each order is the `status = 'PENDING'` guard, so an order executed twice
 * (a redelivered stream entry, a cancel that won the race) has its effects applied once.
 */
import { assert } from '../../core/errors.js';
import { cashToSql, priceToSql, qtyToSql, type Price } from '../../core/money.js';
import { executeBuy, executeSell, type Execution, type RejectReason } from '../../core/orders.js';
import type { Executor } from '../../infra/postgres.js';
import { exists, runSteps, type Step } from '../../infra/statements.js';
import { sql } from 'kysely';
import * as accounts from '../accounts/accounts.service.js';
import { ExecutionConflictError } from './trading.errors.js';
import * as portfolios from '../portfolios/portfolios.service.js';
import * as ordersRepo from '../orders/orders.repository.js';
import { releaseHold, toOrder, type Order } from '../orders/orders.service.js';

export type Outcome = { order: Order; applied: true } | { order: Order; applied: false };

/**
 * Decides and applies the execution of one order at `price`. A fill is one statement composed
 * of each service's step — the PENDING guard and FILLED transition (orders), the settlement
 * with its ledger row (accounts), the shares (portfolios), the fill row — every step guarded by
 * the first, so a redelivered order changes nothing. One round trip per order.
 */
export async function executeOrder(trx: Executor, order: Order, price: Price): Promise<Outcome> {
  const execution: Execution =
    order.side === 'buy' ? executeBuy(order.quantity, price, order.reservedAmount) : executeSell(order.quantity, price);
  if (execution.outcome === 'reject') return rejectOrder(trx, order, execution.reason);

  const amount = execution.amount;
  const guard = exists('filled_order');
  const steps: Step[] = [ordersRepo.markFilledStep('filled_order', order.id, priceToSql(price))];
  let sharesMoved;
  if (order.side === 'buy') {
    steps.push(...accounts.settlementSteps('settle', accounts.buySettlement(order.userId, order.reservedAmount, amount, order.id), guard));
    steps.push(...portfolios.buySteps('shares', order.userId, order.ticker, order.quantity, price, guard));
    sharesMoved = sql`(SELECT count(*) FROM shares)`;
  } else {
    steps.push(...portfolios.sellSteps('shares', order.userId, order.ticker, order.quantity, guard));
    steps.push(...accounts.settlementSteps('settle', accounts.sellSettlement(order.userId, amount, order.id), guard));
    sharesMoved = sql`(SELECT count(*) FROM shares_deleted) + (SELECT count(*) FROM shares_reduced)`;
  }
  steps.push(
    ordersRepo.insertFillStep('fill', { orderId: order.id, price: priceToSql(price), quantity: qtyToSql(order.quantity), amount: cashToSql(amount) }, guard),
  );
  const rows = await runSteps<ordersRepo.OrderRow & { cash_moved: number; shares_moved: number }>(
    trx,
    steps,
    sql`SELECT f.*, (SELECT count(*) FROM settle_cash)::int AS cash_moved, (${sharesMoved})::int AS shares_moved FROM filled_order f`,
  );
  const row = rows[0];
  if (!row) return { order, applied: false };
  // The sell steps (delete the row at zero, else reduce it) test the holding as of the
  // statement's snapshot; a concurrent fill of the same holding committed after that snapshot
  // makes both miss. Not a refusal: retried with a fresh snapshot (see the engine).
  if (row.shares_moved === 0 && order.side === 'sell') throw new ExecutionConflictError(order.id);
  // A fill that moved no cash or no shares otherwise means an account is missing: a bug, not an
  // outcome. Throwing aborts the transaction; the order stays for redelivery.
  assert(row.cash_moved === 1 && row.shares_moved === 1, `fill of order ${order.id} settled cash and shares`);
  const filled = toOrder(row);
  assert(filled.status === 'FILLED', 'a filled order reads FILLED');
  return { order: filled, applied: true };
}

/** Rejects a pending order with a reason and releases its hold. */
export async function rejectOrder(trx: Executor, order: Order, reason: RejectReason): Promise<Outcome> {
  const row = await ordersRepo.markRejected(trx, order.id, reason);
  if (!row) return { order, applied: false };
  await releaseHold(trx, order);
  return { order: toOrder(row), applied: true };
}
