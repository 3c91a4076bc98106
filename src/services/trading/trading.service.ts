/**
 * Trade execution: applies the engine's decisions — fills, rejections, cancellations, expiries
 * and orders coming to rest — with every effect (cash, holds, holdings, the fill and the ledger
 * rows) inside the caller's transaction. Every change is guarded by the order still being live
 * (`status IN ('PENDING', 'OPEN')`), so an order executed twice (a redelivered pipe entry, a
 * trigger seen twice, a cancel that won the race) has its effects applied once.
 */
import { sql } from 'kysely';
import { assert } from '../../core/errors.js';
import { planExecution, type ExecutableOrder, type ExecutionPlan, type ExecutionQuote } from '../../core/executions.js';
import { formatCentiBps, type RealisticParams } from '../../core/fill-models.js';
import { cashToSql, formatCash, formatFixed, formatPrice, formatQty, priceToSql, PRICE_SCALE, qtyFromDb, qtyToSql, QTY_SCALE, type Price } from '../../core/money.js';
import type { CancelReason, RejectReason } from '../../core/orders.js';
import type { RestingState } from '../../core/order-terms.js';
import type { Executor } from '../../infra/postgres.js';
import { runSteps, type Step } from '../../infra/statements.js';
import * as accounts from '../accounts/accounts.service.js';
import * as portfolios from '../portfolios/portfolios.service.js';
import type { EventRecord, EventType } from '../events/event-log.js';
import * as eventsRepo from '../events/events.repository.js';
import { orderEvent } from '../orders/order-events.js';
import * as ordersRepo from '../orders/orders.repository.js';
import { releaseHold, toOrder, type Order } from '../orders/orders.service.js';
import { ExecutionConflictError } from './trading.errors.js';

/** An applied outcome carries its event (appended when the transaction's work is done). */
export type Outcome = { order: Order; applied: true; event: eventsRepo.NewEvent } | { order: Order; applied: false };

/** What a batch's transaction did: each order's outcome, and the events it appended. */
export interface Applied {
  outcomes: Outcome[];
  events: EventRecord[];
}

const EVENT_BY_STATUS: Partial<Record<Order['status'], EventType>> = {
  OPEN: 'order.open',
  FILLED: 'order.fill',
  CANCELED: 'order.canceled',
  EXPIRED: 'order.expired',
  REJECTED: 'order.rejected',
};

/** The outcome of an order whose transition applied, with its event. */
function applied(order: Order, extra?: Record<string, unknown>): Outcome {
  const type = EVENT_BY_STATUS[order.status];
  assert(type !== undefined, `an applied outcome leaves the order in a status with an event (${order.status})`);
  return { order, applied: true, event: orderEvent(type, order, extra) };
}

/** An execution core/executions planned: its part, price, cash, commission, hold and explanation. */
export type FillPlan = Extract<ExecutionPlan, { kind: 'fill' }>;

export interface FillDecision {
  order: Order;
  plan: FillPlan;
  /** A stop (or trailing stop) that triggered to fill: its trigger time is recorded. */
  triggered?: boolean;
  /**
   * The part left open after this execution ends at once with this reason (an ioc's rest, an
   * opg or cls order's rest after its auction), in the same transaction.
   */
  thenCancel?: CancelReason;
}

export interface RejectDecision {
  order: Order;
  reason: RejectReason;
  /** A stop that triggered and then failed its final check: its triggered_at is recorded. */
  triggered?: boolean;
}

/** What a batch does with its orders, decided by core/orders; applied in one transaction. */
export interface Decisions {
  fills: readonly FillDecision[];
  rejects: readonly RejectDecision[];
  cancels: readonly { order: Order; reason: CancelReason }[];
  expiries: readonly { order: Order }[];
  rests: readonly { order: Order; state: RestingState }[];
}

export const NO_DECISIONS: Decisions = { fills: [], rejects: [], cancels: [], expiries: [], rests: [] };

/** What an order brings to core/executions: its terms, what it filled and holds, its limit. */
export function executableOf(order: Order): ExecutableOrder {
  const limited = order.type === 'limit' || order.type === 'stop_limit';
  return {
    side: order.side,
    timeInForce: order.timeInForce,
    quantity: order.quantity,
    filledQuantity: order.filledQuantity,
    filledValue: order.filledValue,
    reservedAmount: order.reservedAmount,
    commissionCharged: order.commissionCharged,
    commissionSchedule: order.commissionSchedule,
    limitPrice: limited ? order.limitPrice : null,
  };
}

/**
 * The whole open quantity of `order` at `price` under the ideal model — the engine's execution
 * when the order's model is ideal and its hold covers it (tests and tools that fill by hand).
 * Throws when the final check refuses it.
 */
export function wholeFillAt(order: Order, price: Price, triggered = false): FillDecision {
  const plan = planExecution(
    { ...executableOf(order), limitPrice: null },
    { model: 'ideal', params: { impactCoefficientBps: 0n, dailyVolume: 1n } },
    { last: price, bid: price, ask: price, bidSize: 0n, askSize: 0n, asOfMs: Date.now() },
    Date.now(),
  );
  if (plan.kind !== 'fill') throw new Error(`order ${order.id} cannot fill whole at ${formatPrice(price)}: ${plan.kind === 'refuse' ? plan.reason : plan.reason}`);
  return { order, plan, triggered };
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
 * Rejections, cancellations and expiries are applied one by one (they are rare); they release
 * holds, touching rows outside the fill statements' own lock order, so a batch with any of them
 * first locks all of its rows in the one global order — orders, then balances by user, then
 * holdings by (user, ticker) — and can never deadlock with an accept batch or a cancel. Orders
 * that rest become OPEN with their watch state (trailing hwm and level).
 *
 * The events of every applied outcome are appended last, in one statement (the counters are
 * the transaction's last locks: see the events migration).
 */
export async function applyDecisions(trx: Executor, d: Decisions): Promise<Applied> {
  const releasing = [...d.rejects, ...d.cancels, ...d.expiries].map((x) => x.order);
  if (releasing.length > 0) {
    const orders = [...d.fills.map((f) => f.order), ...releasing];
    await ordersRepo.lockLiveOrders(trx, orders.map((o) => o.id));
    await accounts.lockBalances(trx, orders.map((o) => o.userId));
    await portfolios.lockHoldings(trx, orders.map((o) => ({ userId: o.userId, ticker: o.ticker })));
  }
  const outcomes: Outcome[] = [];
  for (const r of d.rejects) outcomes.push(await rejectOrder(trx, r.order, r.reason, r.triggered));
  for (const c of d.cancels) outcomes.push(await endOrder(trx, c.order, () => ordersRepo.markCanceled(trx, c.order.id, { reason: c.reason })));
  for (const e of d.expiries) outcomes.push(await endOrder(trx, e.order, () => ordersRepo.markExpired(trx, e.order.id)));
  if (d.rests.length > 0) {
    const rows = await ordersRepo.markOpen(
      trx,
      d.rests.map((r) => ({
        id: r.order.id,
        hwm: r.state.extreme === null ? null : priceToSql(r.state.extreme),
        stopLevel: r.state.stopLevel === null ? null : priceToSql(r.state.stopLevel),
        triggered: r.state.triggered,
      })),
    );
    const rested = new Map(rows.map((row) => [row.id, toOrder(row)]));
    for (const r of d.rests) {
      const done = rested.get(r.order.id);
      outcomes.push(done ? applied(done) : { order: r.order, applied: false });
    }
  }
  for (const round of rounds(d.fills)) outcomes.push(...(await fillRound(trx, round)));
  // The rest of an order that may not rest (ioc, opg, cls) ends with its execution. Its rows are
  // locked by the fill statement already, so this adds no lock the batch did not hold.
  const cancelAfter = new Map(d.fills.flatMap((f) => (f.thenCancel === undefined ? [] : [[f.order.id, f.thenCancel] as const])));
  if (cancelAfter.size > 0) {
    for (const o of [...outcomes]) {
      const reason = cancelAfter.get(o.order.id);
      if (!o.applied || reason === undefined || o.order.status !== 'OPEN') continue;
      const rest = o.order;
      outcomes.push(await endOrder(trx, rest, () => ordersRepo.markCanceled(trx, rest.id, { reason })));
    }
  }
  return { outcomes, events: await appendOutcomeEvents(trx, outcomes) };
}

/** Appends the events of the applied outcomes, in their order (the transaction's last statement). */
export async function appendOutcomeEvents(trx: Executor, outcomes: readonly Outcome[]): Promise<EventRecord[]> {
  return eventsRepo.appendEvents(
    trx,
    outcomes.flatMap((o) => (o.applied ? [o.event] : [])),
  );
}

/** Ends a live order with `mark` (cancel, expiry) and releases its hold, if it was still live. */
async function endOrder(trx: Executor, order: Order, mark: () => Promise<ordersRepo.OrderRow | undefined>): Promise<Outcome> {
  const row = await mark();
  if (!row) return { order, applied: false };
  await releaseHold(trx, order);
  return applied(toOrder(row));
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
    ordersRepo.markExecutedManyStep(
      'filled',
      round.map(({ order, plan, triggered }) => ({
        id: order.id,
        filledBefore: qtyToSql(order.filledQuantity),
        quantity: qtyToSql(plan.quantity),
        value: valueToSql(plan.value),
        averagePrice: priceToSql(plan.averagePrice),
        reservedAfter: cashToSql(plan.reservedAfter),
        commission: cashToSql(plan.commission),
        complete: plan.complete,
        triggered: triggered ?? false,
        quoteAt: new Date(plan.explanation.quote.asOfMs),
      })),
    ),
    ...accounts.settlementManySteps(
      'settle',
      // The execution releases its part of the hold and pays its cost and commission from it (a
      // sell: from its proceeds too). The commission is a ledger row of its own, after the trade's.
      round.flatMap(({ order, plan }) => [
        order.side === 'buy'
          ? accounts.buySettlement(order.userId, plan.heldReleased, plan.amount, order.id)
          : accounts.sellSettlement(order.userId, plan.amount, order.id, plan.heldReleased),
        ...(plan.commission > 0n ? [accounts.commissionCharge(order.userId, plan.commission, order.id)] : []),
      ]),
      'filled',
    ),
    ...portfolios.fillManySteps(
      'shares',
      round.map(({ order, plan }) => ({ orderId: order.id, side: order.side, userId: order.userId, ticker: order.ticker, quantity: plan.quantity, price: plan.price })),
      'filled',
      // Balances are locked before holdings: the one lock order (see lockBalancesStep).
      'settle_lock',
    ),
    ordersRepo.insertFillsStep(
      'fill',
      round.map(({ order, plan }) => fillRow(order.id, plan)),
      'filled',
    ),
  ];
  const rows = await runSteps<ordersRepo.OrderRow & { position_quantity: string; cash_moved: number; sells_moved: number; buys_moved: number; fills: number }>(
    trx,
    steps,
    // The position each fill leaves: a round moves each holding once, so it is the holding's
    // quantity after this statement (none: a sell of the whole holding deleted it).
    sql`SELECT f.*,
               coalesce((SELECT a.quantity FROM shares_added a WHERE a.user_id = f.user_id AND a.ticker = f.ticker),
                        (SELECT r.quantity FROM shares_reduced r WHERE r.order_id = f.id), '0') AS position_quantity,
               (SELECT count(*) FROM settle_cash)::int AS cash_moved,
               (SELECT count(*) FROM shares_added)::int AS buys_moved,
               ((SELECT count(*) FROM shares_deleted) + (SELECT count(*) FROM shares_reduced))::int AS sells_moved,
               (SELECT count(*) FROM fill)::int AS fills
          FROM filled f`,
  );
  if (rows.length === 0) return round.map(({ order }) => ({ order, applied: false }));
  const filled = rows.map(toOrder);
  const positions = new Map(rows.map((r) => [r.id, qtyFromDb(r.position_quantity)]));
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
  return round.map(({ order, plan }) => {
    const done = byId.get(order.id);
    if (!done) return { order, applied: false };
    assert(done.status === (plan.complete ? 'FILLED' : 'OPEN'), 'an executed order reads FILLED, or OPEN with its rest');
    return applied(done, { fill: fillEventBody(plan), position_quantity: formatQty(positions.get(done.id)!) });
  });
}

/** quantity × price at its exact scale, as SQL text. */
function valueToSql(value: bigint): string {
  return formatFixed(value, QTY_SCALE + PRICE_SCALE);
}

/** The fill row of an execution, with its explanation (the fills table's columns). */
function fillRow(orderId: string, plan: FillPlan): ordersRepo.NewFillRow {
  const e = plan.explanation;
  return {
    orderId,
    price: priceToSql(plan.price),
    quantity: qtyToSql(plan.quantity),
    amount: cashToSql(plan.amount),
    commission: cashToSql(plan.commission),
    model: e.model,
    modelVersion: e.modelVersion,
    modelParams: e.params === null ? null : JSON.stringify(modelParamsJson(e.params)),
    quote: JSON.stringify(quoteJson(e.quote)),
    quoteAgeMs: Math.min(e.quoteAgeMs, QUOTE_AGE_MS_STORED_MAX),
    slippageBps: formatCentiBps(e.slippageCentiBps),
    reason: e.reason.slice(0, 500),
  };
}

/** A quote age above this is stored as this (the column is an integer; such a quote is long stale). */
const QUOTE_AGE_MS_STORED_MAX = 2_000_000_000;

export function quoteJson(q: ExecutionQuote) {
  return {
    bid: formatPrice(q.bid),
    ask: formatPrice(q.ask),
    last: formatPrice(q.last),
    bid_size: formatQty(q.bidSize),
    ask_size: formatQty(q.askSize),
    as_of: new Date(q.asOfMs).toISOString(),
  };
}

export function modelParamsJson(p: RealisticParams) {
  return { impact_coefficient_bps: p.impactCoefficientBps.toString(), daily_volume: formatQty(p.dailyVolume) };
}

/** What an order.fill event says of its execution (GET /orders/{id}/fills has the rest). */
function fillEventBody(plan: FillPlan) {
  return {
    price: formatPrice(plan.price),
    quantity: formatQty(plan.quantity),
    amount: formatCash(plan.amount),
    commission: formatCash(plan.commission),
    model: plan.explanation.model,
    slippage_bps: formatCentiBps(plan.explanation.slippageCentiBps),
    reason: plan.explanation.reason,
  };
}

/** Rejects a live order with a reason and releases its hold. */
export async function rejectOrder(trx: Executor, order: Order, reason: RejectReason, triggered = false): Promise<Outcome> {
  return endOrder(trx, order, () => ordersRepo.markRejected(trx, order.id, reason, triggered));
}
