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
import * as accounts from '../accounts/accounts.service.js';
import * as portfolios from '../portfolios/portfolios.service.js';
import * as ordersRepo from '../orders/orders.repository.js';
import { releaseHold, toOrder, type Order } from '../orders/orders.service.js';

export type Outcome = { order: Order; applied: true } | { order: Order; applied: false };

/** Decides and applies the execution of one order at `price`. */
export async function executeOrder(trx: Executor, order: Order, price: Price): Promise<Outcome> {
  const execution: Execution =
    order.side === 'buy' ? executeBuy(order.quantity, price, order.reservedAmount) : executeSell(order.quantity, price);
  if (execution.outcome === 'reject') return rejectOrder(trx, order, execution.reason);

  const row = await ordersRepo.markFilled(trx, order.id, priceToSql(price));
  if (!row) return { order, applied: false };
  const amount = execution.amount;
  if (order.side === 'buy') {
    // A fill worth less than half a cent moves no cash: the hold is simply returned.
    if (amount > 0n) await accounts.settleBuy(trx, order.userId, order.reservedAmount, amount, order.id);
    else await accounts.releaseFunds(trx, order.userId, order.reservedAmount);
    await portfolios.applyBuy(trx, order.userId, order.ticker, order.quantity, price);
  } else {
    await portfolios.applySell(trx, order.userId, order.ticker, order.quantity);
    if (amount > 0n) await accounts.settleSell(trx, order.userId, amount, order.id);
  }
  await ordersRepo.insertFill(trx, {
    orderId: order.id,
    price: priceToSql(price),
    quantity: qtyToSql(order.quantity),
    amount: cashToSql(amount),
  });
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
