/**
 * The batch executor: orders in, outcomes out. Given the ids of orders to execute, it reads
 * them from PostgreSQL (the state; the pipe only said "look at these"), prices them from the
 * quote store, asks core/orders what to do with each (fill, reject, or wait for a price) and
 * applies the decisions in ONE transaction. It knows nothing of how the ids arrived: the
 * delivery loop feeds it from the order pipe, and resting orders will feed it from their index.
 *
 * A transaction that fails on a deadlock or a serialization conflict is retried; one that fails
 * for another reason is split, each order retried alone, so one bad order cannot hold the
 * others back. A failure to reach PostgreSQL is not the orders' fault: it is reported as such
 * and the caller tries the whole batch again later.
 */
import type { Counter, Histogram, Registry } from 'prom-client';
import { decideMarketOrder, type DecisionLimits, type RejectReason } from '../../core/orders.js';
import type { Channel } from '../../infra/channel.js';
import { counter, histogram } from '../../infra/metrics.js';
import type { Logger } from '../../infra/logger.js';
import { isTransientPgError, type Db } from '../../infra/postgres.js';
import { isUnavailableError } from '../../infra/unavailable.js';
import type { QuoteStore } from '../market-data/quote-store.js';
import { announce } from '../orders/order-updates.js';
import * as ordersRepo from '../orders/orders.repository.js';
import { toOrder } from '../orders/orders.service.js';
import { ExecutionConflictError } from './trading.errors.js';
import { applyDecisions, rejectOrder, type FillDecision, type Outcome, type RejectDecision } from './trading.service.js';

/** Attempts of one batch transaction that failed on a deadlock or serialization conflict. */
export const BATCH_ATTEMPTS_MAX = 3;

export interface BatchExecutorDeps {
  db: Db;
  quotes: Pick<QuoteStore, 'getMany'>;
  orderUpdates: Channel;
  logger: Logger;
  limits: DecisionLimits;
  metrics?: Registry;
  now?: () => number;
}

export interface ExecutionReport {
  /** Orders brought to a terminal status by this batch. */
  outcomes: Outcome[];
  /** Orders that failed on their own (not an outage): their deliveries stay unsettled. */
  failed: Set<string>;
  /** Set when PostgreSQL (or the quote store) could not be reached: nothing was done; retry later. */
  unavailable?: unknown;
}

interface Work {
  fills: FillDecision[];
  rejects: RejectDecision[];
}

export class BatchExecutor {
  private readonly executed: Counter;
  private readonly batchSeconds: Histogram;
  private readonly now: () => number;

  constructor(private readonly deps: BatchExecutorDeps) {
    this.now = deps.now ?? Date.now;
    this.executed = counter(deps.metrics, 'papertrade_engine_orders_total', 'Orders brought to a terminal status by the engine', ['status']);
    this.batchSeconds = histogram(deps.metrics, 'papertrade_engine_batch_seconds', 'Time to execute one batch of orders', [
      0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1,
    ]);
  }

  /**
   * Executes the PENDING orders among `orderIds`. Orders already terminal are left alone, and
   * orders without a fresh price wait (they stay PENDING; the reconciler brings them back).
   */
  async execute(orderIds: readonly string[]): Promise<ExecutionReport> {
    if (orderIds.length === 0) return { outcomes: [], failed: new Set() };
    const started = process.hrtime.bigint();
    let work: Work;
    try {
      work = await this.decide(orderIds);
    } catch (err) {
      if (isUnavailableError(err)) return { outcomes: [], failed: new Set(), unavailable: err };
      throw err;
    }
    const report = await this.apply(work);
    if (!report.unavailable) {
      const applied = report.outcomes.filter((o) => o.applied).map((o) => o.order);
      for (const o of applied) this.executed.inc({ status: o.status });
      await announce(this.deps.orderUpdates, applied, (err) => this.deps.logger.debug({ err }, 'order update announcement failed'));
    }
    this.batchSeconds.observe(Number(process.hrtime.bigint() - started) / 1e9);
    return report;
  }

  /** Rejects one PENDING order with `reason` (a dead-lettered delivery); true when it applied. */
  async rejectAlone(orderId: string, reason: RejectReason): Promise<boolean> {
    const row = await ordersRepo.getOrder(this.deps.db, orderId);
    if (!row || row.status !== 'PENDING') return false;
    const outcome = await this.deps.db.transaction().execute((trx) => rejectOrder(trx, toOrder(row), reason));
    if (outcome.applied) {
      this.executed.inc({ status: outcome.order.status });
      await announce(this.deps.orderUpdates, [outcome.order], () => undefined);
    }
    return outcome.applied;
  }

  /** Reads the orders and their quotes and decides each one (core/orders: pure). */
  private async decide(orderIds: readonly string[]): Promise<Work> {
    const rows = await ordersRepo.getOrders(this.deps.db, orderIds);
    const pending = rows.filter((r) => r.status === 'PENDING').map(toOrder);
    const quotes = await this.deps.quotes.getMany([...new Set(pending.map((o) => o.ticker))]);
    const now = this.now();
    const work: Work = { fills: [], rejects: [] };
    // One lock order for every engine (user, then ticker, then order): batches never deadlock
    // each other on the same account rows, and rounds keep a user's orders in this order.
    pending.sort((a, b) => cmp(a.userId, b.userId) || cmp(a.ticker, b.ticker) || cmp(a.id, b.id));
    for (const order of pending) {
      const decision = decideMarketOrder(
        { side: order.side, quantity: order.quantity, reservedAmount: order.reservedAmount, createdAtMs: order.createdAt.getTime() },
        quotes.get(order.ticker),
        now,
        this.deps.limits,
      );
      if (decision.kind === 'fill') work.fills.push({ order, price: decision.price, amount: decision.amount });
      else if (decision.kind === 'reject') work.rejects.push({ order, reason: decision.reason });
    }
    return work;
  }

  private async apply(work: Work): Promise<ExecutionReport> {
    const orders = [...work.fills, ...work.rejects].map((d) => d.order.id);
    if (orders.length === 0) return { outcomes: [], failed: new Set() };
    let lastError: unknown;
    for (let attempt = 1; attempt <= BATCH_ATTEMPTS_MAX; attempt++) {
      try {
        const outcomes = await this.deps.db.transaction().execute((trx) => applyDecisions(trx, work.fills, work.rejects));
        return { outcomes, failed: new Set() };
      } catch (err) {
        lastError = err;
        if (isUnavailableError(err)) return { outcomes: [], failed: new Set(), unavailable: err };
        if (!(isTransientPgError(err) || err instanceof ExecutionConflictError)) break;
      }
    }
    if (orders.length === 1) {
      this.deps.logger.error({ err: lastError, order_id: orders[0] }, 'order execution failed; left for redelivery');
      return { outcomes: [], failed: new Set(orders) };
    }
    // The batch failed as a whole: each order alone, so only the bad one stays behind.
    const outcomes: Outcome[] = [];
    const failed = new Set<string>();
    for (const f of work.fills) merge(f.order.id, await this.apply({ fills: [f], rejects: [] }));
    for (const r of work.rejects) merge(r.order.id, await this.apply({ fills: [], rejects: [r] }));
    return { outcomes, failed };

    function merge(orderId: string, single: ExecutionReport) {
      outcomes.push(...single.outcomes);
      for (const id of single.failed) failed.add(id);
      // An outage in the middle of the singles: that order stays unsettled, to be tried again.
      if (single.unavailable) failed.add(orderId);
    }
  }
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
