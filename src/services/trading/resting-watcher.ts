/**
 * The resting-order watcher: one engine of the deployment (the holder of a lease) watches every
 * OPEN order. It keeps them in an in-memory index (rebuilt from PostgreSQL when it takes the
 * lead, kept current from the order-update channel and a periodic catch-up), reads every price
 * tick from the tick log (not from pub/sub, which may drop a tick), and hands the orders a tick
 * makes executable to the batch executor, which fills each at that tick's price — once, whoever
 * asks twice (the OPEN guard). It also runs the session events: at the open, opg orders and
 * market orders waiting for it; at the close, cls orders, then the expiry of day orders.
 *
 * PostgreSQL holds the state: the index is only a view of it. An engine that dies leaves its
 * lease to expire, and another engine takes over within the lease's TTL, rebuilds the index and
 * resumes the tick log where the last watcher saved its position. An order added to the index
 * late (its notification missed, or read during a takeover) first replays the recent ticks of
 * its ticker since it was placed, so no tick that reached the log can be missed by it.
 */
import type { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { quoteFreshness } from '../../core/market.js';
import { CANCEL_REASONS, decideOnSession, type Decision } from '../../core/orders.js';
import { onTick as applyTick, type RestingState } from '../../core/order-terms.js';
import { priceToSql, PRICE_MAX, type Price } from '../../core/money.js';
import type { Channel, Unsubscribe } from '../../infra/channel.js';
import type { LeaseLock } from '../../infra/lease.js';
import type { Logger } from '../../infra/logger.js';
import { counter, gauge, histogram } from '../../infra/metrics.js';
import { sleep } from '../../infra/sleep.js';
import type { Db } from '../../infra/postgres.js';
import { TICK_LOG_START, type Quote, type QuoteStore, type TickLog } from '../market-data/quote-store.js';
import type { EventBus } from '../events/event-log.js';
import * as eventsRepo from '../events/events.repository.js';
import { publishEvents } from '../events/events.service.js';
import { orderEvent } from '../orders/order-events.js';
import * as ordersRepo from '../orders/orders.repository.js';
import { holdForCost, termsOf, toOrder, type Order } from '../orders/orders.service.js';
import type { BatchExecutor, ExecuteAtItem } from './batch-executor.js';
import { RestingIndex, restsOnPrice, type RestingOrder } from './resting-index.js';

/** The watcher's name as a tick-log reader (one watcher leads at a time). */
export const TICK_READER = 'resting-watcher';
/** Tick batches read from the log at once, and how long a read waits for the first. */
export const TICK_READ_BATCH_MAX = 200;
export const TICK_READ_BLOCK_MS = 500;
/** OPEN orders read per page when the index is rebuilt. */
export const INDEX_PAGE_SIZE = 5_000;
/** How often the watcher catches up with OPEN orders it was not told about. */
export const CATCH_UP_INTERVAL_MS = 1_000;
/** How far back a catch-up reads (clock skew between processes, commit latency). */
export const CATCH_UP_OVERLAP_MS = 5_000;
/** How often the index drops orders that are no longer OPEN (a lost cancel notification). */
export const PRUNE_INTERVAL_MS = 30_000;
/** Ids checked per prune query. */
export const PRUNE_CHUNK = 5_000;
/** Pages of OPEN ids one prune reads at most (a bound on its loop: 5 million orders). */
export const PRUNE_PAGES_MAX = 1_000;
/** How often trailing levels and stop_limit triggers are written back for readers of the orders. */
export const STATE_SAVE_INTERVAL_MS = 1_000;
/** Orders whose state one UPDATE writes at most. */
export const STATE_SAVE_CHUNK = 5_000;
/** How often the clock is looked at for a session open or close. */
export const CLOCK_INTERVAL_MS = 250;
/** Recent ticks kept per ticker, for orders added late. */
export const RECENT_TICKS_MAX = 512;
/** Orders executed per executor call at most. */
export const EXECUTE_BATCH_MAX = 500;

/** A session the engine opened (closedAt null while it is open). */
export interface RecordedSession {
  openedAt: Date;
  closedAt: Date | null;
}

export interface SessionClock {
  isOpen(nowMs: number): boolean;
  /** The latest session the engine acted on, and records a new open or close. */
  latestSession(): Promise<RecordedSession | undefined>;
  recordEvent(event: 'open' | 'close', at: Date): Promise<void>;
  /** The most recent calendar close at or before `nowMs` (undefined when the override holds it open). */
  calendarLastClose(nowMs: number): number | undefined;
}

export interface RestingWatcherDeps {
  /** A quote older than this is no price (the session's orders and the current-price checks). */
  priceAgeMsMax: number;
  db: Db;
  ticks: TickLog;
  quotes: Pick<QuoteStore, 'getMany'>;
  orderUpdates: Channel;
  /** Where the order.triggered events of stop_limit triggers are announced. */
  eventBus: EventBus;
  executor: BatchExecutor;
  clock: SessionClock;
  /** The lease that makes one engine of the deployment the watcher. */
  lease: LeaseLock;
  logger: Logger;
  metrics?: Registry;
}

type RecentTick = Quote;

export function toResting(o: Order): RestingOrder {
  // An order that has executed in part has met its price (or triggered): its rest executes at
  // every tick from now on, within its limit if it has one. The index watches it as a limit at
  // its own limit, or at the farthest price (a buy at PRICE_MAX, a sell at one tick): reached
  // by any tick. Ticks up to the quote of its last execution are behind it (it took what that
  // quote displayed), so they count as older than the order.
  const partial = o.filledQuantity > 0n;
  const terms = termsOf(o);
  const limit = terms.type === 'limit' || terms.type === 'stop_limit' ? terms.limitPrice! : terms.side === 'buy' ? PRICE_MAX : 1n;
  const restingTerms = partial ? { ...terms, type: 'limit' as const, limitPrice: limit, stopPrice: null, trailPrice: null, trailPercent: null } : terms;
  const afterMs = o.lastFillQuoteAt === null ? 0 : o.lastFillQuoteAt.getTime() + 1;
  return {
    id: o.id,
    userId: o.userId,
    ticker: o.ticker,
    terms: restingTerms,
    state: partial ? { triggered: false, extreme: null, stopLevel: null } : { triggered: o.triggeredAt !== null, extreme: o.hwm, stopLevel: o.stopLevel },
    createdAtMs: Math.max(o.createdAt.getTime(), afterMs),
  };
}

export class RestingWatcher {
  private stopping = false;
  /** Aborted by stop(): wakes every sleeping loop. */
  private readonly stopped = new AbortController();
  /** Aborted when the current term ends (stop, or the lease lost): wakes the term's loops. */
  private term = new AbortController();
  private loop: Promise<void> | undefined;
  private index = new RestingIndex();
  private leading = false;
  private readonly recent = new Map<string, RecentTick[]>();
  private readonly toAdd = new Set<string>();
  /** OPEN orders an execution left as they were (nothing to execute at their tick): back into the index without a replay. */
  private readonly toReindex = new Set<string>();
  private readonly triggers: Counter;
  private readonly tickEvalSeconds: Histogram;
  private readonly restingGauge: Gauge;
  /** Serialises what changes the index and executes: ticks, adds, session events. */
  private work: Promise<unknown> = Promise.resolve();

  constructor(private readonly deps: RestingWatcherDeps) {
    this.triggers = counter(deps.metrics, 'papertrade_resting_executions_total', 'Resting orders a tick or a session made executable');
    // The index's own cost per tick (what scales with the resting orders), not the executions.
    this.tickEvalSeconds = histogram(
      deps.metrics,
      'papertrade_resting_tick_eval_seconds',
      'Time the resting-order index takes to evaluate one tick (finding what it makes executable)',
      [1e-6, 2e-6, 5e-6, 1e-5, 2e-5, 5e-5, 1e-4, 1e-3, 1e-2, 0.1],
    );
    this.restingGauge = gauge(deps.metrics, 'papertrade_resting_orders', 'OPEN orders in the resting-order index of this engine (0 unless it leads the watch)');
  }

  /** True while this engine leads the watch (tests and metrics). */
  isLeader(): boolean {
    return this.leading && this.deps.lease.isHeld();
  }

  /** Orders in the index (while leading). */
  get watched(): number {
    return this.index.size;
  }

  start(): void {
    this.loop ??= this.run();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.stopped.abort();
    this.term.abort();
    await this.deps.ticks.closeReader().catch(() => undefined);
    await this.loop;
  }

  private async run(): Promise<void> {
    const { lease, logger } = this.deps;
    while (!this.stopping) {
      let acquired = false;
      try {
        acquired = await lease.tryAcquire();
      } catch (err) {
        logger.warn({ err }, 'resting watcher cannot reach its lease');
      }
      if (!acquired) {
        await sleep(Math.max(50, Math.floor(lease.ttlMs / 3)), this.stopped.signal);
        continue;
      }
      try {
        await this.lead();
      } catch (err) {
        logger.error({ err }, 'resting watcher failed; retrying');
        await sleep(1_000, this.stopped.signal);
      } finally {
        this.leading = false;
        if (lease.isHeld()) await lease.release().catch(() => undefined);
      }
    }
  }

  /** One term as the watcher: until stopping or the lease is lost. */
  private async lead(): Promise<void> {
    const { lease, logger, orderUpdates } = this.deps;
    this.leading = true;
    this.term = new AbortController();
    if (this.stopping) this.term.abort();
    this.index = new RestingIndex();
    this.recent.clear();
    this.session = undefined;
    this.unsaved.clear();
    this.appliedCursor = this.savedCursor = undefined;
    const unsubscribe: Unsubscribe = await orderUpdates.subscribe((message) => this.onOrderUpdate(message));
    try {
      const loaded = await this.rebuild();
      logger.info({ resting: loaded }, 'resting watcher leading; index built');
      const term = this.term.signal;
      const stillLeading = () => !this.stopping && !term.aborted && lease.isHeld();
      // The term's loops end together: the first that fails ends the term for all of them (a
      // loop left running could save a position past a tick the failure left undone).
      const loops = [
        this.keepLease(stillLeading),
        this.readTicks(stillLeading),
        this.every(CATCH_UP_INTERVAL_MS, stillLeading, () => this.catchUp()),
        this.every(PRUNE_INTERVAL_MS, stillLeading, () => this.prune()),
        this.every(STATE_SAVE_INTERVAL_MS, stillLeading, () => this.saveStates()),
        this.every(CLOCK_INTERVAL_MS, stillLeading, () => this.watchClock()),
      ].map((loop) =>
        loop.catch((err: unknown) => {
          this.term.abort();
          throw err;
        }),
      );
      const ended = await Promise.allSettled(loops);
      await this.work;
      const failure = ended.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failure) throw failure.reason;
      // A term that ends well (a stop, the lease passed on) leaves its states and position saved.
      await this.saveStates().catch(() => undefined);
    } finally {
      await unsubscribe();
      this.restingGauge.set(0);
      logger.info('resting watcher no longer leading');
    }
  }

  private async keepLease(stillLeading: () => boolean): Promise<void> {
    const { lease, logger } = this.deps;
    while (stillLeading()) {
      await sleep(Math.max(50, Math.floor(lease.ttlMs / 3)), this.term.signal);
      if (this.stopping) break;
      try {
        if (!(await lease.renew())) logger.warn('resting watcher lost its lease to another engine');
      } catch (err) {
        logger.warn({ err }, 'resting watcher lease renewal failed');
      }
    }
    // Wake the term's other loops and a waiting tick read, so the term ends at once.
    this.term.abort();
    await this.deps.ticks.closeReader().catch(() => undefined);
  }

  private async every(ms: number, stillLeading: () => boolean, task: () => Promise<unknown>): Promise<void> {
    while (stillLeading()) {
      await sleep(ms, this.term.signal);
      if (!stillLeading()) return;
      await this.serial(task).catch((err: unknown) => this.deps.logger.warn({ err }, 'resting watcher task failed'));
    }
  }

  /**
   * Runs `task` after whatever changes the index now, one at a time. A task queued in a term
   * that has ended does not run (it resolves undefined): the next term starts from PostgreSQL.
   */
  private serial<T>(task: () => Promise<T>): Promise<T | undefined> {
    const term = this.term.signal;
    const guarded = () => (term.aborted ? Promise.resolve(undefined) : task());
    const next = this.work.then(guarded, guarded);
    this.work = next.catch(() => undefined);
    return next;
  }

  /** Loads every OPEN order into a fresh index. */
  private async rebuild(): Promise<number> {
    let after: string | undefined;
    let count = 0;
    for (;;) {
      const rows = await ordersRepo.listOpenOrders(this.deps.db, after, INDEX_PAGE_SIZE);
      for (const row of rows) this.index.add(toResting(toOrder(row)));
      count += rows.length;
      if (rows.length < INDEX_PAGE_SIZE) return count;
      after = rows[rows.length - 1]!.id;
    }
  }

  private onOrderUpdate(message: string): void {
    let update: { order_id?: unknown; status?: unknown };
    try {
      update = JSON.parse(message) as typeof update;
    } catch {
      return;
    }
    if (typeof update.order_id !== 'string') return;
    if (update.status === 'OPEN') this.toAdd.add(update.order_id);
    else if (update.status !== 'PENDING') this.index.remove(update.order_id);
  }

  /** Reads the tick log from the saved position and applies each tick, in order. */
  private async readTicks(stillLeading: () => boolean): Promise<void> {
    const { ticks, logger } = this.deps;
    let cursor = await ticks.loadCursor(TICK_READER);
    // No position to resume from (the first term ever, or Redis lost it): replay all the log
    // holds — an order meets only ticks not older than itself, so old ticks change nothing — and,
    // once caught up, meet the current prices too (the log may have lost what moved meanwhile).
    let checkWhenCaughtUp = cursor === undefined;
    cursor ??= TICK_LOG_START;
    this.appliedCursor = this.savedCursor = cursor;
    while (stillLeading()) {
      let read;
      try {
        read = await ticks.readTicks(cursor, TICK_READ_BATCH_MAX, TICK_READ_BLOCK_MS);
      } catch (err) {
        if (!stillLeading()) return;
        logger.warn({ err }, 'cannot read the tick log; retrying');
        await sleep(200, this.term.signal);
        continue;
      }
      if (read.gap) logger.warn({ cursor }, 'the tick log no longer holds every tick since the last position; resting orders are checked against the current prices');
      await this.serial(async () => {
        await this.addPending();
        for (const entry of read.entries) {
          for (const q of entry.batch.quotes) await this.applyTick(q);
        }
        const caughtUp = read.entries.length < TICK_READ_BATCH_MAX;
        if (read.gap || (checkWhenCaughtUp && caughtUp)) await this.checkCurrentPrices();
        if (caughtUp) checkWhenCaughtUp = false;
        if (read.cursor !== undefined) this.appliedCursor = read.cursor;
      });
      if (read.cursor !== undefined) cursor = read.cursor;
    }
  }

  /** One tick: the orders it makes executable go to the executor at its price. */
  private async applyTick(quote: Quote): Promise<void> {
    const { ticker, price, asOfMs } = quote;
    // A closed market executes nothing on price; the open checks the prices it finds.
    if (!this.deps.clock.isOpen(asOfMs)) return;
    const ring = this.recent.get(ticker) ?? [];
    ring.push(quote);
    if (ring.length > RECENT_TICKS_MAX) ring.splice(0, ring.length - RECENT_TICKS_MAX);
    this.recent.set(ticker, ring);
    const started = process.hrtime.bigint();
    const executable = this.index.onTick(ticker, price, asOfMs);
    this.tickEvalSeconds.observe(Number(process.hrtime.bigint() - started) / 1e9);
    if (executable.length > 0) await this.execute(executable.map((t) => ({ orderId: t.order.id, price: t.price, triggered: t.triggered, quote })));
  }

  private async execute(items: ExecuteAtItem[]): Promise<void> {
    for (let i = 0; i < items.length; i += EXECUTE_BATCH_MAX) {
      const chunk = items.slice(i, i + EXECUTE_BATCH_MAX);
      const report = await this.deps.executor.executeAt(chunk);
      this.triggers.inc(chunk.length);
      // PostgreSQL (or the quote store) unreachable: nothing was executed. The term ends here,
      // before its tick log position passes this tick; the next term rebuilds the index from
      // PostgreSQL and replays the tick, which makes these orders executable again.
      if (report.unavailable) throw report.unavailable;
      // An order that failed on its own is still OPEN: it goes back through addPending, which
      // re-reads it and replays its ticker's recent ticks (the one that made it executable too).
      const failed = chunk.filter((item) => report.failed.has(item.orderId));
      for (const item of failed) this.toAdd.add(item.orderId);
      for (const id of report.waiting ?? []) this.toReindex.add(id);
      if (failed.length > 0) this.deps.logger.warn({ orders: failed.length }, 'resting orders failed to execute; retried');
    }
  }

  /** Adds the orders notifications announced OPEN (read from PostgreSQL: the state). */
  private async addPending(): Promise<void> {
    if (this.toReindex.size > 0) {
      const ids = [...this.toReindex].slice(0, INDEX_PAGE_SIZE);
      const rows = (await ordersRepo.getOrders(this.deps.db, ids)).filter((r) => r.status === 'OPEN');
      for (const id of ids) this.toReindex.delete(id);
      for (const row of rows) if (!this.index.has(row.id)) this.index.add(toResting(toOrder(row)));
    }
    if (this.toAdd.size === 0) return;
    const ids = [...this.toAdd].slice(0, INDEX_PAGE_SIZE);
    // Taken off the list only once read: an outage keeps them for the next try.
    const rows = (await ordersRepo.getOrders(this.deps.db, ids)).filter((r) => r.status === 'OPEN');
    for (const id of ids) this.toAdd.delete(id);
    await this.addLate(rows.map((r) => toResting(toOrder(r))));
  }

  /**
   * Adds orders the index did not have, each first replayed over its ticker's recent ticks since
   * it was placed: one that a tick already made executable is executed at that tick's price.
   */
  private async addLate(orders: RestingOrder[]): Promise<void> {
    const due: ExecuteAtItem[] = [];
    for (const order of orders) {
      if (this.index.has(order.id)) continue;
      let state: RestingState = order.state;
      let executable: { price: Price; triggered: boolean; quote: Quote } | undefined;
      if (restsOnPrice(order.terms)) {
        for (const tick of this.recent.get(order.ticker) ?? []) {
          if (tick.asOfMs < order.createdAtMs) continue;
          const outcome = applyTick(order.terms, state, tick.price);
          if (outcome.kind === 'execute') {
            executable = { price: outcome.price, triggered: outcome.triggered, quote: tick };
            break;
          }
          state = outcome.state;
        }
      }
      if (executable) due.push({ orderId: order.id, ...executable });
      else this.index.add({ ...order, state });
    }
    if (due.length > 0) await this.execute(due);
  }

  /** OPEN orders changed lately that the index does not have (a missed notification). */
  private async catchUp(): Promise<void> {
    await this.addPending();
    const since = new Date(Date.now() - CATCH_UP_OVERLAP_MS);
    const rows = await ordersRepo.listOpenChangedSince(this.deps.db, since, INDEX_PAGE_SIZE);
    const missing = rows.filter((r) => !this.index.has(r.id)).map((r) => toResting(toOrder(r)));
    if (missing.length > 0) await this.addLate(missing);
  }

  /**
   * The index against PostgreSQL, both ways: drops entries whose orders are no longer OPEN (a
   * missed notification) and puts back OPEN orders it lacks (a missed notification, or one whose
   * execution failed) through addPending, which replays their recent ticks.
   */
  private async prune(): Promise<void> {
    // Ids only: materialising 100,000 orders from the index's columns every prune cost the event
    // loop hundreds of milliseconds and the heap tens of megabytes.
    const ids = this.index.ids();
    for (let i = 0; i < ids.length; i += PRUNE_CHUNK) {
      const chunk = ids.slice(i, i + PRUNE_CHUNK);
      const open = await ordersRepo.stillOpen(this.deps.db, chunk);
      for (const id of chunk) if (!open.has(id)) this.index.remove(id);
    }
    let after: string | undefined;
    for (let page = 0; page < PRUNE_PAGES_MAX; page++) {
      const open = await ordersRepo.listOpenIds(this.deps.db, after, PRUNE_CHUNK);
      for (const id of open) if (!this.index.has(id)) this.toAdd.add(id);
      if (open.length < PRUNE_CHUNK) break;
      after = open[open.length - 1];
    }
    await this.addPending();
  }

  /**
   * Writes trailing levels and stop_limit triggers back to the orders, then the tick log position
   * they were computed up to. The position is saved only after the states it stands for: a new
   * watcher (after a crash) replays the ticks since, and re-applying a tick changes nothing that
   * was already applied (a level only follows the best price; an executed order is not OPEN).
   * States a failed write left unsaved are written with the next ones.
   */
  private async saveStates(): Promise<void> {
    this.restingGauge.set(this.leading ? this.index.size : 0);
    const cursor = this.appliedCursor;
    for (const { id, state } of this.index.drainStateChanges()) this.unsaved.set(id, state);
    const batch = [...this.unsaved];
    for (let i = 0; i < batch.length; i += STATE_SAVE_CHUNK) {
      const chunk = batch.slice(i, i + STATE_SAVE_CHUNK);
      // A stop_limit that triggered (and rests on as a limit) is an order.triggered event,
      // appended in the transaction that records the trigger.
      const events = await this.deps.db.transaction().execute(async (trx) => {
        const triggered = await ordersRepo.saveRestingState(
          trx,
          chunk.map(([id, state]) => ({
            id,
            hwm: state.extreme === null ? null : priceToSql(state.extreme),
            stopLevel: state.stopLevel === null ? null : priceToSql(state.stopLevel),
            triggered: state.triggered,
          })),
        );
        return eventsRepo.appendEvents(trx, triggered.map((row) => orderEvent('order.triggered', toOrder(row))));
      });
      await publishEvents(this.deps.eventBus, events, this.deps.logger);
      for (const [id] of chunk) this.unsaved.delete(id);
    }
    if (cursor !== undefined && cursor !== this.savedCursor) {
      await this.deps.ticks.saveCursor(TICK_READER, cursor);
      this.savedCursor = cursor;
    }
  }

  /** The prices of `tickers` that are fresh now (a stale price is no price for a session's orders). */
  private async freshQuotes(tickers: string[]): Promise<Map<string, Quote>> {
    const nowMs = Date.now();
    const fresh = new Map<string, Quote>();
    for (const q of (await this.deps.quotes.getMany(tickers)).values()) {
      if (quoteFreshness(q.asOfMs, nowMs, this.deps.priceAgeMsMax) === 'fresh') fresh.set(q.ticker, q);
    }
    return fresh;
  }

  /** Applies the current prices as ticks (after a gap in the log, and at the open). */
  private async checkCurrentPrices(): Promise<void> {
    const tickers = this.index.tickers();
    if (tickers.length === 0) return;
    // Only fresh prices: a resting order never executes at a price the feed no longer stands by.
    const quotes = await this.freshQuotes(tickers);
    // As a tick of now: a current price an order has not met yet (its quote may predate the order).
    for (const quote of quotes.values()) await this.applyTick({ ...quote, asOfMs: Date.now() });
  }

  /** The tick log position every tick before which is in the index (and the one saved). */
  private appliedCursor: string | undefined;
  private savedCursor: string | undefined;
  /** States drained from the index and not yet written (a write failed). */
  private readonly unsaved = new Map<string, RestingState>();

  /** The latest session as recorded (undefined: not read yet this term; null: none ever). */
  private session: RecordedSession | null | undefined;

  /**
   * Runs a session's open or close when the clock turns. A close the calendar had after the
   * recorded open comes first, at its own time: a night the engine was down, or the midnight of
   * the always-open calendar (whose market never shows closed: one day's session ends as the
   * next begins).
   */
  private async watchClock(): Promise<void> {
    const { clock } = this.deps;
    const now = Date.now();
    if (this.session === undefined) this.session = (await clock.latestSession()) ?? null;
    let recordedOpen = this.session !== null && this.session.closedAt === null;
    const calendarClose = clock.calendarLastClose(now);
    if (recordedOpen && calendarClose !== undefined && calendarClose > this.session!.openedAt.getTime()) {
      await this.sessionEvent('close', calendarClose);
      recordedOpen = false;
    }
    const open = clock.isOpen(now);
    if (open && !recordedOpen) await this.sessionEvent('open', now);
    else if (!open && recordedOpen) await this.sessionEvent('close', now);
  }

  /**
   * The open: opg orders and market orders waiting for it execute at the current price (an opg
   * limit not reached is canceled), then resting orders meet the current prices. The close: cls
   * orders execute (or are canceled), then day orders placed before it expire.
   */
  private async sessionEvent(event: 'open' | 'close', atMs: number): Promise<void> {
    const { executor, logger, clock, db } = this.deps;
    // The orders come from PostgreSQL, not the index: an order placed a moment ago may not have
    // reached the index yet, and the session must not miss it.
    let handled = 0;
    let afterId: string | undefined;
    for (let round = 0; round < SESSION_ROUNDS_MAX; round++) {
      const rows = await ordersRepo.listOpenForSession(db, event, new Date(atMs), EXECUTE_BATCH_MAX, afterId);
      if (rows.length === 0) break;
      afterId = rows[rows.length - 1]!.id;
      const concerned = rows.map(toOrder);
      const quotes = await this.freshQuotes([...new Set(concerned.map((o) => o.ticker))]);
      const decide = (order: Order): Decision | { kind: 'expire' } | undefined => {
        const state = this.index.get(order.id)?.state ?? toResting(order).state;
        const quote = quotes.get(order.ticker);
        const sessionOrder = order.timeInForce === 'opg' || order.timeInForce === 'cls';
        // Nothing to execute under the model at the session's price: an opg or cls order missed
        // its auction; a market order waiting for the open meets the ticks from now on.
        const onNothing = (): Decision => (sessionOrder ? { kind: 'cancel', reason: CANCEL_REASONS.notFilledAtSession } : { kind: 'wait' });
        return decideOnSession(
          { terms: termsOf(order), reservedAmount: holdForCost(order), createdAtMs: order.createdAt.getTime(), state },
          event,
          quote?.price,
          (price, triggered) => executor.executeWithModel(order, price, triggered, quote, Date.now(), onNothing),
        );
      };
      // cls orders execute at the close before the day orders the close expires.
      const runsFirst = (o: Order) => event === 'open' || o.timeInForce === 'cls';
      for (const orders of [concerned.filter(runsFirst), concerned.filter((o) => !runsFirst(o))]) {
        if (orders.length === 0) continue;
        const report = await executor.decideOpen(orders, decide);
        if (report.unavailable) throw report.unavailable;
        for (const o of orders) this.index.remove(o.id);
      }
      handled += rows.length;
      if (rows.length < EXECUTE_BATCH_MAX) break;
    }
    await clock.recordEvent(event, new Date(atMs));
    this.session = event === 'open' ? { openedAt: new Date(atMs), closedAt: null } : { openedAt: this.session?.openedAt ?? new Date(atMs), closedAt: new Date(atMs) };
    logger.info({ event, orders: handled }, `market ${event === 'open' ? 'opened' : 'closed'}: session orders handled`);
    if (event === 'open') {
      await this.addPending();
      await this.checkCurrentPrices();
    }
  }
}

/** Rounds of EXECUTE_BATCH_MAX orders one session event handles at most (a bound on the loop). */
export const SESSION_ROUNDS_MAX = 1_000;
