/**
 * Trade execution: applies the engine's decisions — fills and rejections of PENDING orders —
 * with every effect (cash, holds, holdings, the fill and the ledger rows) inside the caller's
 * transaction. Every change is guarded by `status = 'PENDING'`, so an order executed twice (a
 * redelivered pipe entry, a cancel that won the race) has its effects applied once.
 */
import { sql } from 'kysely';
import { assert } from '../../core/errors.js';
import { cashToSql, priceToSql, qtyToSql, type Cash, type Price } from '../../core/money.js';
import type { RejectReason } from '../../core/orders.js';
import type { Executor } from '../../infra/postgres.js';
import { runSteps, type Step } from '../../infra/statements.js';
import * as accounts from '../accounts/accounts.service.js';
import * as portfolios from '../portfolios/portfolios.service.js';
import * as ordersRepo from '../orders/orders.repository.js';
import { releaseHold, toOrder, type Order } from '../orders/orders.service.js';
import { ExecutionConflictError } from './trading.errors.js';

export type Outcome = { order: Order; applied: true } | { order: Order; applied: false };

export interface FillDecision {
  order: Order;
  price: Price;
  /** The cash the fill moves (core/orders decided it: a buy's cost, a sell's proceeds). */
  amount: Cash;
}

export interface RejectDecision {
  order: Order;
  reason: RejectReason;
}

/**
 * Applies a batch's decisions inside the caller's transaction. The fills go set-based — ONE
 * statement per round, composed of each service's batch step: the PENDING guard and FILLED
 * transition (orders), the settlements and ledger rows (accounts), the shares (portfolios) and
 * the fill rows. A holding may be touched once per statement, so the fills are split into rounds
 * with at most one order per (user, ticker), kept in the given order (the engine sorts by user,
 * ticker, id); the result is the same as executing the orders one by one, ledger ids and
 * balances included.
 *
 * Rejections are applied one by one (they are rare). Because they touch rows outside the fill
 * statements' own lock order, a batch with rejections first locks all of its rows in the one
 * global order — orders, then balances by user, then holdings by (user, ticker) — so it can
 * never deadlock with an accept batch or a cancel.
 */
export async function applyDecisions(
  trx: Executor,
  fills: readonly FillDecision[],
  rejects: readonly RejectDecision[],
): Promise<Outcome[]> {
  if (rejects.length > 0) {
    const orders = [...fills, ...rejects].map((d) => d.order);
    await ordersRepo.lockPendingOrders(trx, orders.map((o) => o.id));
    await accounts.lockBalances(trx, orders.map((o) => o.userId));
    await portfolios.lockHoldings(trx, orders.map((o) => ({ userId: o.userId, ticker: o.ticker })));
  }
  const outcomes: Outcome[] = [];
  for (const r of rejects) outcomes.push(await rejectOrder(trx, r.order, r.reason));
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

async function fillRound(trx: Executor, round: readonly FillDecision[]): Promise<Outcome[]> {
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
  // The sell steps (delete the row at zero, else reduce it) test the holding as of the
  // statement's snapshot; a concurrent fill of the same holding committed after that snapshot
  // makes both miss. Not a refusal: the caller retries with a fresh snapshot.
  if (counts.sells_moved < sells.length) throw new ExecutionConflictError(sells[0]!.id);
  // A fill that moved no cash or no shares otherwise means an account is missing: a bug, not an
  // outcome. Throwing aborts the transaction; the orders stay for redelivery.
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
