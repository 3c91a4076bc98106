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

/**
 * Executes many orders, each at its own price, inside the caller's transaction: the rules of
 * core/orders decide each one (fill or reject), rejections are applied one by one (rare), and
 * the fills go set-based — ONE statement for a whole batch, composed of each service's batch
 * step: the PENDING guard and FILLED transition (orders), the settlements and ledger rows
 * (accounts), the shares (portfolios) and the fill rows. That is the SQL floor's shape: a
 * batch of 200 costs one round trip and holds its row locks for one statement, not 200.
 *
 * A holding must be touched once per statement, so the fills are split into rounds with at most
 * one order per (user, ticker), kept in the given order (the engine sorts by user, ticker, id);
 * the result is the same as executing the orders one by one, ledger ids and balances included.
 */
export async function executeOrders(trx: Executor, items: readonly { order: Order; price: Price }[]): Promise<Outcome[]> {
  const outcomes: Outcome[] = [];
  const fills: { order: Order; price: Price; amount: bigint }[] = [];
  for (const { order, price } of items) {
    const execution: Execution =
      order.side === 'buy' ? executeBuy(order.quantity, price, order.reservedAmount) : executeSell(order.quantity, price);
    if (execution.outcome === 'reject') outcomes.push(await rejectOrder(trx, order, execution.reason));
    else fills.push({ order, price, amount: execution.amount });
  }
  for (const round of rounds(fills)) outcomes.push(...(await fillRound(trx, round)));
  return outcomes;
}

/** Splits fills into rounds holding at most one order per (user, ticker), keeping their order. */
function rounds<T extends { order: Order }>(fills: readonly T[]): T[][] {
  const out: T[][] = [];
  const depth = new Map<string, number>();
  for (const f of fills) {
    const key = `${f.order.userId}/${f.order.ticker}`;
    const i = depth.get(key) ?? 0;
    depth.set(key, i + 1);
    (out[i] ??= []).push(f);
  }
  return out;
}

async function fillRound(trx: Executor, round: readonly { order: Order; price: Price; amount: bigint }[]): Promise<Outcome[]> {
  const steps: Step[] = [
    ordersRepo.markFilledManyStep('filled', round.map((f) => ({ id: f.order.id, price: priceToSql(f.price) }))),
    ...accounts.settlementManySteps(
      'settle',
      round.map(({ order, amount }) =>
        order.side === 'buy'
          ? accounts.buySettlement(order.userId, order.reservedAmount, amount, order.id)
          : accounts.sellSettlement(order.userId, amount, order.id),
      ),
      'filled',
    ),
    ...portfolios.fillManySteps(
      'shares',
      round.map(({ order, price }) => ({ orderId: order.id, side: order.side, userId: order.userId, ticker: order.ticker, quantity: order.quantity, price })),
      'filled',
      // Balances are locked before holdings: the one lock order (see lockBalancesStep).
      'settle_lock',
    ),
    ordersRepo.insertFillsStep(
      'fill',
      round.map(({ order, price, amount }) => ({
        orderId: order.id,
        price: priceToSql(price),
        quantity: qtyToSql(order.quantity),
        amount: cashToSql(amount),
      })),
      'filled',
    ),
  ];
  const rows = await runSteps<ordersRepo.OrderRow & { cash_moved: number; sells_moved: number; buys_moved: number; fills: number }>(
    trx,
    steps,
    sql`SELECT f.*, (SELECT count(*) FROM settle_cash)::int AS cash_moved,
               (SELECT count(*) FROM shares_added)::int AS buys_moved,
               ((SELECT count(*) FROM shares_deleted) + (SELECT count(*) FROM shares_reduced))::int AS sells_moved,
               (SELECT count(*) FROM fill)::int AS fills
          FROM filled f`,
  );
  if (rows.length === 0) return round.map(({ order }) => ({ order, applied: false }));
  const filled = rows.map(toOrder);
  const counts = rows[0]!;
  const sells = filled.filter((o) => o.side === 'sell');
  // As in executeOrder: a concurrent fill of the same holding, committed after this statement's
  // snapshot, makes the sell steps miss. Not a refusal: the caller retries with a fresh snapshot.
  if (counts.sells_moved < sells.length) throw new ExecutionConflictError(sells[0]!.id);
  assert(
    counts.cash_moved === new Set(filled.map((o) => o.userId)).size &&
      counts.buys_moved === filled.length - sells.length &&
      counts.sells_moved === sells.length &&
      counts.fills === filled.length,
    `fill of ${filled.length} orders settled cash and shares of each`,
  );
  const byId = new Map(filled.map((o) => [o.id, o]));
  return round.map(({ order }) => {
    const done = byId.get(order.id);
    if (!done) return { order, applied: false };
    assert(done.status === 'FILLED', 'a filled order reads FILLED');
    return { order: done, applied: true };
  });
}

/** Rejects a pending order with a reason and releases its hold. */
export async function rejectOrder(trx: Executor, order: Order, reason: RejectReason): Promise<Outcome> {
  const row = await ordersRepo.markRejected(trx, order.id, reason);
  if (!row) return { order, applied: false };
  await releaseHold(trx, order);
  return { order: toOrder(row), applied: true };
}
