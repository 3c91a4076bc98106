/**
 * The batch executor: orders in, outcomes out. It reads the orders from PostgreSQL (the state;
 * whoever calls only says "look at these"), asks core/orders what to do with each and applies
 * the decisions in ONE transaction. Three kinds of work arrive:
 *
 * - orders just accepted (PENDING), from the delivery loop: priced from the quote store and
 *   decided on arrival — fill, reject, wait for a price, rest OPEN, or cancel (ioc, fok);
 * - resting orders a tick made executable, from the resting watcher: filled at that tick's
 *   price (the buy's final check still applies);
 * - session events (open, close), from the resting watcher: opg, cls, day and waiting orders.
 *
 * A transaction that fails on a deadlock or a serialization conflict is retried; one that fails
 * for another reason is split, each order retried alone, so one bad order cannot hold the
 * others back. A failure to reach PostgreSQL is not the orders' fault: it is reported as such
 * and the caller tries the whole batch again later.
 */
import type { Counter, Histogram, Registry } from 'prom-client';
import { planExecution, type ExecutionQuote } from '../../core/executions.js';
import { latencyMs, type RealisticParams } from '../../core/fill-models.js';
import { TIER_PARAMS, touchOrDefault, type LiquidityTier } from '../../core/liquidity.js';
import { CANCEL_REASONS, decideOnArrival, type CancelReason, type Decision, type DecisionLimits, type Execute, type RejectReason } from '../../core/orders.js';
import { initialState } from '../../core/order-terms.js';
import type { Price } from '../../core/money.js';
import { sleep } from '../../infra/sleep.js';
import type { Channel } from '../../infra/channel.js';
import { counter, histogram } from '../../infra/metrics.js';
import type { Logger } from '../../infra/logger.js';
import { isTransientPgError, type Db } from '../../infra/postgres.js';
import { isUnavailableError } from '../../infra/unavailable.js';
import type { Quote, QuoteStore } from '../market-data/quote-store.js';
import type { EventBus, EventRecord } from '../events/event-log.js';
import { publishEvents } from '../events/events.service.js';
import { announce } from '../orders/order-updates.js';
import * as ordersRepo from '../orders/orders.repository.js';
import { holdForCost, termsOf, toOrder, type Order } from '../orders/orders.service.js';
import { ExecutionConflictError } from './trading.errors.js';
import { appendOutcomeEvents, applyDecisions, executableOf, rejectOrder, type Decisions, type Outcome } from './trading.service.js';

/** Attempts of one batch transaction that failed on a deadlock or serialization conflict. */
export const BATCH_ATTEMPTS_MAX = 3;

/** Whether the market is open at an instant (the market clock). */
export interface MarketSession {
  isOpen(nowMs: number): boolean;
}

export interface BatchExecutorDeps {
  db: Db;
  quotes: Pick<QuoteStore, 'getMany'>;
  session: MarketSession;
  orderUpdates: Channel;
  /** Where the events of committed batches are announced. */
  eventBus: EventBus;
  logger: Logger;
  limits: DecisionLimits;
  fills?: FillSettings;
  metrics?: Registry;
  now?: () => number;
}

/**
 * What the fill models need beyond an order and its quote: each instrument's liquidity tier
 * (its realistic parameters), and the seeded latency realistic orders wait between acceptance
 * and execution.
 */
export interface FillSettings {
  tierOf(ticker: string): LiquidityTier;
  latency: FillLatency;
}

export interface FillLatency {
  seed: number;
  /** Every realistic order waits at least this long after acceptance (ms). */
  baseMs: number;
  /** Plus a seeded draw in [0, jitterMs] of its own. */
  jitterMs: number;
}

export const NO_LATENCY: FillLatency = { seed: 0, baseMs: 0, jitterMs: 0 };
/** The longest latency a batch waits for (a bound on a setting's effect on the engine). */
export const FILL_LATENCY_MS_MAX = 10_000;

/** The realistic model's parameters of a tier. */
export function realisticParams(tier: LiquidityTier): RealisticParams {
  const t = TIER_PARAMS[tier];
  return { impactCoefficientBps: t.impactCoefficientBps, dailyVolume: t.dailyVolume };
}

/**
 * The number a seeded draw is made for: FNV-1a of the client's order id when it gave one (so a
 * bot that replays the same orders with the same seed meets the same latencies), else the id.
 */
export function drawNumber(order: Pick<Order, 'id' | 'clientOrderId'>): number {
  const text = order.clientOrderId ?? order.id;
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** The order's latency under `latency` (0 for a model that has none: ideal and spread fill at once). */
export function orderLatencyMs(order: Pick<Order, 'id' | 'clientOrderId' | 'fillModel'>, latency: FillLatency): number {
  if (order.fillModel !== 'realistic' || (latency.baseMs === 0 && latency.jitterMs === 0)) return 0;
  return Math.min(FILL_LATENCY_MS_MAX, latencyMs(latency.seed, drawNumber(order) % 0x7fffffff, latency.baseMs, latency.jitterMs));
}


/** What happens to an order the model found nothing to execute for, now. */
type OnNothing = () => Decision;

export interface ExecutionReport {
  /** What this batch did with each order: a terminal status, or OPEN for one that came to rest. */
  outcomes: Outcome[];
  /** The events the batch's transactions appended (published by run, after the commits). */
  events: EventRecord[];
  /** Orders that failed on their own (not an outage): their deliveries stay unsettled. */
  failed: Set<string>;
  /** Set when PostgreSQL (or the quote store) could not be reached: nothing was done; retry later. */
  unavailable?: unknown;
  /**
   * executeAt: OPEN orders the model found nothing to execute for at their tick (the touch
   * beyond the limit, nothing displayed): they stay OPEN and go back to the index as they are.
   */
  waiting?: Set<string>;
}

/** A resting order a tick made executable: at the tick's price, with the tick's whole quote. */
export interface ExecuteAtItem {
  orderId: string;
  price: Price;
  triggered: boolean;
  quote?: Quote;
}

type Work = { -readonly [K in keyof Decisions]: Decisions[K][number][] };

const emptyWork = (): Work => ({ fills: [], rejects: [], cancels: [], expiries: [], rests: [] });

/** Adds an order's decision to the work of a batch (a wait adds nothing: the order stays). */
function addDecision(work: Work, order: Order, decision: Decision | { kind: 'expire' }): void {
  switch (decision.kind) {
    case 'execute':
      work.fills.push({ order, plan: decision.plan, triggered: decision.triggered, ...(decision.thenCancel ? { thenCancel: decision.thenCancel } : {}) });
      break;
    case 'fill':
      // core/orders' whole-quantity fill: the engine always passes its model's execution instead.
      throw new Error(`order ${order.id}: a fill decision without an execution plan`);
    case 'reject':
      work.rejects.push({ order, reason: decision.reason, triggered: decision.triggered === true });
      break;
    case 'cancel':
      work.cancels.push({ order, reason: decision.reason });
      break;
    case 'expire':
      work.expiries.push({ order });
      break;
    case 'rest':
      work.rests.push({ order, state: decision.state });
      break;
    case 'wait':
      break;
  }
}

/** One lock order for every engine (user, then ticker, then order), and rounds keep it. */
function byUserTickerId(a: Order, b: Order): number {
  return cmp(a.userId, b.userId) || cmp(a.ticker, b.ticker) || cmp(a.id, b.id);
}

export class BatchExecutor {
  private readonly executed: Counter;
  private readonly batchSeconds: Histogram;
  private readonly now: () => number;

  constructor(private readonly deps: BatchExecutorDeps) {
    this.now = deps.now ?? Date.now;
    this.executed = counter(deps.metrics, 'papertrade_engine_orders_total', 'Orders the engine executed, by the status it left them in (OPEN: came to rest)', ['status']);
    this.batchSeconds = histogram(deps.metrics, 'papertrade_engine_batch_seconds', 'Time to execute one batch of orders', [
      0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1,
    ]);
  }

  /**
   * Executes the PENDING orders among `orderIds` (orders already past PENDING are left alone).
   * Orders without a fresh price wait: they stay PENDING and the reconciler brings them back.
   */
  async execute(orderIds: readonly string[]): Promise<ExecutionReport> {
    return this.run(orderIds.length, async () => {
      const pending = (await ordersRepo.getOrders(this.deps.db, orderIds)).filter((r) => r.status === 'PENDING').map(toOrder);
      await this.waitForLatency(pending);
      const quotes = await this.deps.quotes.getMany([...new Set(pending.map((o) => o.ticker))]);
      const now = this.now();
      const open = this.deps.session.isOpen(now);
      const work = emptyWork();
      for (const order of pending.sort(byUserTickerId)) {
        // A replacement carries the state of the order it replaced (stored on its row by the OMS).
        const prior = order.replaces === null ? undefined : { extreme: order.hwm, triggered: order.triggeredAt !== null };
        const terms = termsOf(order);
        const arriving = { terms, reservedAmount: holdForCost(order), createdAtMs: order.createdAt.getTime(), prior };
        const quote = quotes.get(order.ticker);
        // Nothing executable under the model now (the touch beyond a limit, a fok not whole):
        // ioc and fok end; a limit rests for its price; a market order waits for the next quote.
        const onNothing = (price: Price, triggered: boolean): Decision => {
          if (terms.timeInForce === 'ioc' || terms.timeInForce === 'fok') return { kind: 'cancel', reason: CANCEL_REASONS.notMarketable };
          if (terms.type === 'limit' || terms.type === 'stop_limit') {
            return { kind: 'rest', state: { ...initialState(terms, price, prior), triggered: terms.type === 'stop_limit' && triggered } };
          }
          return { kind: 'wait' };
        };
        const execute: Execute = (price, triggered) => this.executeWithModel(order, price, triggered, quote, now, () => onNothing(price, triggered));
        addDecision(work, order, decideOnArrival(arriving, quote, now, open, this.deps.limits, execute));
      }
      return work;
    });
  }

  /**
   * The decision for `order` executable at `price` (core/orders found it so) under its fill
   * model, meeting `quote` (its touch; a quote without one is read as bid = ask = price).
   * A refused execution rejects an order with nothing filled, and cancels the rest of one that
   * has fills (they stand).
   */
  executeWithModel(order: Order, price: Price, triggered: boolean, quote: Quote | undefined, nowMs: number, onNothing: OnNothing): Decision {
    const tier = this.deps.fills?.tierOf(order.ticker) ?? 'large';
    const touch = touchOrDefault(quote ?? { price }, tier);
    const met: ExecutionQuote = { last: price, ...touch, asOfMs: quote?.asOfMs ?? nowMs };
    const plan = planExecution(executableOf(order), { model: order.fillModel, params: realisticParams(tier) }, met, nowMs);
    if (plan.kind === 'none') return onNothing();
    if (plan.kind === 'refuse') {
      return order.filledQuantity > 0n ? { kind: 'cancel', reason: plan.reason } : { kind: 'reject', reason: plan.reason, ...(triggered ? { triggered } : {}) };
    }
    const latency = orderLatencyMs(order, this.deps.fills?.latency ?? NO_LATENCY);
    if (latency > 0 && order.filledQuantity === 0n) plan.explanation.reason += `; executed after a seeded latency of ${latency} ms`;
    const tif = order.timeInForce;
    const thenCancel: CancelReason | undefined =
      plan.complete ? undefined : tif === 'ioc' ? CANCEL_REASONS.notMarketable : tif === 'opg' || tif === 'cls' ? CANCEL_REASONS.notFilledAtSession : undefined;
    return { kind: 'execute', plan, triggered, ...(thenCancel ? { thenCancel } : {}) };
  }

  /**
   * Waits until every realistic order of the batch has waited its seeded latency since it was
   * accepted (bounded by FILL_LATENCY_MS_MAX): the quote it then meets is the one it executes at.
   */
  private async waitForLatency(orders: readonly Order[]): Promise<void> {
    const latency = this.deps.fills?.latency ?? NO_LATENCY;
    if (latency.baseMs === 0 && latency.jitterMs === 0) return;
    let dueMs = 0;
    for (const o of orders) if (o.fillModel === 'realistic') dueMs = Math.max(dueMs, o.createdAt.getTime() + orderLatencyMs(o, latency));
    const waitMs = Math.min(dueMs - this.now(), FILL_LATENCY_MS_MAX);
    if (waitMs > 0) await sleep(waitMs);
  }

  /**
   * Executes OPEN orders a tick made executable, each at its tick's price (a stop that
   * triggered records it). An order that is no longer OPEN (canceled, replaced, filled by
   * another engine) is left alone: one outcome per order, whoever asks twice.
   */
  async executeAt(items: readonly ExecuteAtItem[]): Promise<ExecutionReport> {
    const waiting = new Set<string>();
    const report = await this.run(items.length, async () => {
      const at = new Map(items.map((i) => [i.orderId, i]));
      const open = (await ordersRepo.getOrders(this.deps.db, [...at.keys()])).filter((r) => r.status === 'OPEN').map(toOrder);
      const now = this.now();
      const work = emptyWork();
      for (const order of open.sort(byUserTickerId)) {
        const item = at.get(order.id)!;
        // An order meets each quote at most once: a part filled at this quote already took
        // what it displayed (a tick replayed to an order re-added after its execution).
        const quoteAtMs = item.quote?.asOfMs;
        if (order.lastFillQuoteAt !== null && quoteAtMs !== undefined && quoteAtMs <= order.lastFillQuoteAt.getTime()) {
          waiting.add(order.id);
          continue;
        }
        const decision = this.executeWithModel(order, item.price, item.triggered, item.quote, now, () => ({ kind: 'wait' }));
        if (decision.kind === 'wait') waiting.add(order.id);
        addDecision(work, order, decision);
      }
      return work;
    });
    return { ...report, waiting };
  }

  /**
   * Applies decisions made elsewhere (session events) to OPEN orders the caller has just read
   * (undefined: the order is not concerned). Reading them again here would add nothing: every
   * change is guarded by the order still being live, so one canceled meanwhile is left alone.
   */
  async decideOpen(orders: readonly Order[], decide: (order: Order) => Decision | { kind: 'expire' } | undefined): Promise<ExecutionReport> {
    return this.run(orders.length, () => {
      const work = emptyWork();
      for (const order of [...orders].sort(byUserTickerId)) {
        const decision = decide(order);
        if (decision) addDecision(work, order, decision);
      }
      return Promise.resolve(work);
    });
  }

  /** Rejects one live order with `reason` (a dead-lettered delivery); true when it applied. */
  async rejectAlone(orderId: string, reason: RejectReason): Promise<boolean> {
    const row = await ordersRepo.getOrder(this.deps.db, orderId);
    if (!row || (row.status !== 'PENDING' && row.status !== 'OPEN')) return false;
    const { outcome, events } = await this.deps.db.transaction().execute(async (trx) => {
      const outcome = await rejectOrder(trx, toOrder(row), reason);
      return { outcome, events: await appendOutcomeEvents(trx, [outcome]) };
    });
    if (outcome.applied) {
      this.executed.inc({ status: outcome.order.status });
      await publishEvents(this.deps.eventBus, events, this.deps.logger);
      await announce(this.deps.orderUpdates, [outcome.order], () => undefined);
    }
    return outcome.applied;
  }

  /** Decides (reading orders and quotes), applies, counts and announces one batch. */
  private async run(size: number, decide: () => Promise<Work>): Promise<ExecutionReport> {
    if (size === 0) return { outcomes: [], events: [], failed: new Set() };
    const started = process.hrtime.bigint();
    let work: Work;
    try {
      work = await decide();
    } catch (err) {
      if (isUnavailableError(err)) return { outcomes: [], events: [], failed: new Set(), unavailable: err };
      throw err;
    }
    const report = await this.apply(work);
    await publishEvents(this.deps.eventBus, report.events, this.deps.logger);
    if (!report.unavailable) {
      const applied = report.outcomes.filter((o) => o.applied).map((o) => o.order);
      for (const o of applied) this.executed.inc({ status: o.status });
      await announce(this.deps.orderUpdates, applied, (err) => this.deps.logger.debug({ err }, 'order update announcement failed'));
    }
    this.batchSeconds.observe(Number(process.hrtime.bigint() - started) / 1e9);
    return report;
  }

  private async apply(work: Work): Promise<ExecutionReport> {
    const all = [...work.fills, ...work.rejects, ...work.cancels, ...work.expiries, ...work.rests];
    if (all.length === 0) return { outcomes: [], events: [], failed: new Set() };
    let lastError: unknown;
    for (let attempt = 1; attempt <= BATCH_ATTEMPTS_MAX; attempt++) {
      try {
        const { outcomes, events } = await this.deps.db.transaction().execute((trx) => applyDecisions(trx, work));
        return { outcomes, events, failed: new Set() };
      } catch (err) {
        lastError = err;
        if (isUnavailableError(err)) return { outcomes: [], events: [], failed: new Set(), unavailable: err };
        if (!(isTransientPgError(err) || err instanceof ExecutionConflictError)) break;
      }
    }
    if (all.length === 1) {
      this.deps.logger.error({ err: lastError, order_id: all[0]!.order.id }, 'order execution failed; left for redelivery');
      return { outcomes: [], events: [], failed: new Set([all[0]!.order.id]) };
    }
    // The batch failed as a whole: each order alone, so only the bad one stays behind.
    const outcomes: Outcome[] = [];
    const events: EventRecord[] = [];
    const failed = new Set<string>();
    for (const key of Object.keys(work) as (keyof Work)[]) {
      for (const item of work[key]) {
        const single = await this.apply({ ...emptyWork(), [key]: [item] });
        outcomes.push(...single.outcomes);
        events.push(...single.events);
        for (const id of single.failed) failed.add(id);
        // An outage in the middle of the singles: that order stays unsettled, to be tried again.
        if (single.unavailable) failed.add(item.order.id);
      }
    }
    return { outcomes, events, failed };
  }
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
