/**
 * Runs a price feed as the single active producer of prices: takes the leader lock (or waits
 * as a standby), starts the feed where prices stand, publishes each tick batch into the quote
 * store (which announces it to tick subscribers), aggregates 1-minute bars and writes them in
 * the background. A leader whose lease lapses or whose renewal is refused stops emitting at once and
 * goes back to standby; a graceful stop writes the last bars and releases the lock, so a standby
 * takes over within one polling period instead of one TTL.
 *
 * Failures of the quote store or PostgreSQL never stop the feed: a tick that cannot be published is
 * dropped (the next one supersedes it), bars that cannot be written are kept and retried.
 */
import { Gauge, type Counter, type Registry } from 'prom-client';
import type { Price } from '../../core/money.js';
import { counter } from '../../infra/metrics.js';
import type { Logger } from '../../infra/logger.js';
import { BarAggregator } from './bars.js';
import { sleep, TICK_BATCH_SIZE_MAX, type EmitFn, type PriceFeed, type Tick } from './feed.js';
import type { Instrument } from './instruments.js';
import type { LiquidityTier } from '../../core/liquidity.js';
import { DEFAULT_TOUCH, touchAll, type TouchSettings } from './touch.js';
import { LeaseLock, type LeaseStore } from '../../infra/lease.js';
import type { MarketDataService } from './market-data.service.js';
import type { QuoteStore, TickSource } from './quote-store.js';

/** How often the current bars are written while ticks flow (and at every minute rollover). */
export const BAR_FLUSH_MS = 2_000;
/** A feed quiet for this long gets its latest prices re-published, so quotes stay fresh. */
export const QUIET_REFRESH_MS = 1_000;
/** Pause before a leader whose feed failed tries again. */
export const FEED_RESTART_DELAY_MS = 1_000;
/** Repeated failures of one kind are logged at most this often. */
export const FAILURE_LOG_INTERVAL_MS = 10_000;
/** How often a feed held by a closed market looks at the clock again. */
export const CLOSED_POLL_MS = 250;

export interface FeedRunnerDeps {
  /** Where the leader lease lives, and its key: one feed leads the whole deployment. */
  leases: LeaseStore;
  leaderKey: string;
  logger: Logger;
  market: MarketDataService;
  quotes: QuoteStore;
  /** The market clock: while it says closed, prices stand still (kept fresh, not moved). */
  session?: { isOpen(nowMs: number): boolean };
  metrics?: Registry;
}

export interface FeedRunnerOptions {
  leaderTtlMs: number;
  /** Lease renewal period, also the standby's polling period; a third of the TTL by default. */
  renewMs?: number;
  barFlushMs?: number;
  quietRefreshMs?: number;
  /** The lock token, also the `feed_id` of published ticks; unique per process by default. */
  token?: string;
  /** Builds the feed when leadership is taken, from the instruments and where each price starts. */
  createFeed(instruments: Instrument[], startPrices: Map<string, Price>): PriceFeed;
  /** How a tick without a bid and an ask gets them (per tier spread, seeded sizes); defaults apply. */
  touch?: TouchSettings;
}

interface FeedMetrics {
  ticks: Counter;
  publishErrors: Counter;
  leader: Gauge;
}

function feedMetrics(registry: Registry | undefined): FeedMetrics | undefined {
  if (!registry) return undefined;
  // Several runners may share one registry (tests): reuse what the first one registered.
  const leaderName = 'papertrade_feed_leader';
  return {
    ticks: counter(registry, 'papertrade_feed_ticks_total', 'Price ticks published'),
    publishErrors: counter(registry, 'papertrade_feed_publish_errors_total', 'Tick batches that could not be published'),
    leader:
      (registry.getSingleMetric(leaderName) as Gauge | undefined) ??
      new Gauge({ name: leaderName, help: '1 while this process is the active feed', registers: [registry] }),
  };
}

export class FeedRunner {
  readonly lock: LeaseLock;
  readonly renewMs: number;
  private readonly stopping = new AbortController();
  private readonly metrics: FeedMetrics | undefined;
  private readonly lastFailureLogMs = new Map<string, number>();
  private loop: Promise<void> | undefined;
  private leading = false;

  constructor(
    private readonly deps: FeedRunnerDeps,
    private readonly options: FeedRunnerOptions,
  ) {
    this.lock = new LeaseLock(deps.leases, deps.leaderKey, options.leaderTtlMs, options.token);
    this.renewMs = options.renewMs ?? Math.max(1, Math.floor(options.leaderTtlMs / 3));
    this.metrics = feedMetrics(deps.metrics);
  }

  get feedId(): string {
    return this.lock.token;
  }

  /** True while this runner leads and its lease is valid. */
  isLeader(): boolean {
    return this.leading && this.lock.isHeld();
  }

  start(): void {
    this.loop ??= this.runLoop();
  }

  /** Stops emitting, writes the pending bars and releases the lock (when still held). */
  async stop(): Promise<void> {
    this.stopping.abort();
    await this.loop;
  }

  private async runLoop(): Promise<void> {
    const stopSignal = this.stopping.signal;
    while (!stopSignal.aborted) {
      let acquired = false;
      try {
        acquired = await this.lock.tryAcquire();
      } catch (err) {
        this.logFailure('lock', err, 'cannot reach Redis for the feed leader lock');
      }
      if (!acquired) {
        await sleep(this.renewMs, stopSignal);
        continue;
      }
      try {
        await this.lead();
      } catch (err) {
        this.deps.logger.error({ err, feed_id: this.feedId }, 'feed failed; retrying');
        await sleep(FEED_RESTART_DELAY_MS, stopSignal);
      }
    }
  }

  /** One term as leader: returns when stopping, when the lease is lost, or throws if the feed fails. */
  private async lead(): Promise<void> {
    const stopSignal = this.stopping.signal;
    const session = new AbortController();
    const onStop = () => session.abort();
    stopSignal.addEventListener('abort', onStop, { once: true });
    // A stop that came while the lock was being taken has already fired: an aborted signal
    // does not call listeners added later, and the term would run on after the process stopped.
    if (stopSignal.aborted) session.abort();
    this.leading = true;
    this.metrics?.leader.set(1);
    this.deps.logger.info({ feed_id: this.feedId }, 'feed leadership acquired');
    const keeper = this.keepLease(session);
    let term: LeaderTerm | undefined;
    try {
      const instruments = await this.deps.market.refreshInstruments();
      const startPrices = await this.startPrices(instruments);
      if (session.signal.aborted) return;
      const feed = this.options.createFeed(instruments, startPrices);
      term = new LeaderTerm(
        {
          deps: this.deps,
          lock: this.lock,
          metrics: this.metrics,
          source: { feed: feed.kind, feedId: this.feedId },
          barFlushMs: this.options.barFlushMs ?? BAR_FLUSH_MS,
          quietRefreshMs: this.options.quietRefreshMs ?? QUIET_REFRESH_MS,
          tierOf: tierLookup(instruments),
          touch: this.options.touch ?? DEFAULT_TOUCH,
          logFailure: (kind, err, message) => this.logFailure(kind, err, message),
        },
        feed,
        session,
      );
      await term.run();
    } finally {
      session.abort();
      stopSignal.removeEventListener('abort', onStop);
      await keeper;
      if (term) await term.finish();
      if (this.lock.isHeld()) {
        await this.lock.release().catch((err: unknown) => this.deps.logger.warn({ err }, 'feed lock release failed'));
      }
      this.leading = false;
      this.metrics?.leader.set(0);
      this.deps.logger.info({ feed_id: this.feedId }, 'feed leadership ended');
    }
  }

  /** Renews the lease every renewMs; ends the term when the lock is refused or the lease lapses. */
  private async keepLease(session: AbortController): Promise<void> {
    while (!session.signal.aborted) {
      await sleep(this.renewMs, session.signal);
      if (session.signal.aborted) return;
      try {
        if (!(await this.lock.renew())) {
          this.deps.logger.warn({ feed_id: this.feedId }, 'feed leadership lost to another instance');
          session.abort();
          return;
        }
      } catch (err) {
        this.logFailure('renew', err, 'feed lease renewal failed');
      }
      if (!this.lock.isHeld()) {
        this.deps.logger.warn({ feed_id: this.feedId }, 'feed lease lapsed; standing down');
        session.abort();
        return;
      }
    }
  }

  /**
   * Where each price starts, so a restart does not jump: the cached price if any (whatever its
   * age), else the close of the latest stored bar, else the instrument's reference price.
   */
  private async startPrices(instruments: readonly Instrument[]): Promise<Map<string, Price>> {
    const cached = await this.deps.quotes.getMany(instruments.map((i) => i.ticker));
    const needBars = instruments.some((i) => !cached.has(i.ticker));
    const closes = needBars ? await this.deps.market.lastCloses() : new Map<string, Price>();
    const counts = { cache: 0, bars: 0, reference: 0 };
    const start = new Map<string, Price>();
    for (const i of instruments) {
      const fromCache = cached.get(i.ticker)?.price;
      const fromBars = closes.get(i.ticker);
      counts[fromCache !== undefined ? 'cache' : fromBars !== undefined ? 'bars' : 'reference'] += 1;
      start.set(i.ticker, fromCache ?? fromBars ?? i.referencePrice);
    }
    this.deps.logger.info({ resumed_from: counts }, 'feed starting prices');
    return start;
  }

  /** Logs a repeated failure at most once per FAILURE_LOG_INTERVAL_MS per kind. */
  private logFailure(kind: string, err: unknown, message: string): void {
    const now = Date.now();
    if (now - (this.lastFailureLogMs.get(kind) ?? 0) < FAILURE_LOG_INTERVAL_MS) return;
    this.lastFailureLogMs.set(kind, now);
    this.deps.logger.warn({ err, feed_id: this.feedId }, message);
  }
}

interface TermContext {
  deps: FeedRunnerDeps;
  lock: LeaseLock;
  metrics: FeedMetrics | undefined;
  source: TickSource;
  barFlushMs: number;
  quietRefreshMs: number;
  tierOf(ticker: string): LiquidityTier | undefined;
  touch: TouchSettings;
  logFailure(kind: string, err: unknown, message: string): void;
}

function tierLookup(instruments: readonly Instrument[]): (ticker: string) => LiquidityTier | undefined {
  const tiers = new Map(instruments.map((i) => [i.ticker, i.liquidityTier]));
  return (ticker) => tiers.get(ticker);
}

/** The state of one leadership term: the feed, its bars, the last prices, the publish chain. */
class LeaderTerm {
  private readonly bars = new BarAggregator();
  private readonly lastPrices = new Map<string, Price>();
  /** Publishes run one after another, so a refresh can never overtake a newer tick. */
  private chain: Promise<void> = Promise.resolve();
  private flushing: Promise<void> | undefined;
  private lastEmitMs = Date.now();
  private lastFlushMs = Date.now();
  private feedRunning = true;
  private emitted = false;

  constructor(
    private readonly ctx: TermContext,
    private readonly feed: PriceFeed,
    private readonly session: AbortController,
  ) {}

  /** Runs the feed until the term ends. A finished feed (a replay without loop) keeps the lock. */
  async run(): Promise<void> {
    const signal = this.session.signal;
    const refresher = this.refreshWhileQuiet();
    try {
      await this.feed.run(this.emit, signal);
    } finally {
      this.feedRunning = false;
    }
    await refresher;
    if (!signal.aborted) {
      this.ctx.deps.logger.info({ feed: this.feed.kind }, 'feed finished; holding the lock until stopped');
      this.startFlush();
      // Holding on means a standby does not start the same replay over.
      await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    }
  }

  /** After the term: waits for in-flight work, then writes the last bars if still the leader. */
  async finish(): Promise<void> {
    this.feedRunning = false;
    await this.chain;
    await this.flushing;
    await this.flushBars();
  }

  readonly emit: EmitFn = (ticks: Tick[]): Promise<void> => {
    const next = this.chain.then(async () => {
      // The first batch of a term says where prices stand and is always published (a market
      // that is closed still has prices); after it, a closed market holds the feed: its emit
      // waits for the open, so the walk (or the replay) does not move while nothing trades.
      if (this.emitted) await this.untilOpen();
      this.emitted = true;
      for (let start = 0; start < ticks.length; start += TICK_BATCH_SIZE_MAX) {
        await this.publish(ticks.slice(start, start + TICK_BATCH_SIZE_MAX));
      }
    });
    // The feed sees a failure (and the term restarts); the chain itself stays usable.
    this.chain = next.catch(() => {});
    return next;
  };

  private async publish(priced: Tick[]): Promise<void> {
    if (priced.length === 0) return;
    const { deps, metrics, lock, source } = this.ctx;
    // Every published quote has a touch: the feed's own, or its tier's around the last price.
    const ticks = touchAll(priced, this.ctx.tierOf, this.ctx.touch);
    if (!lock.isHeld()) {
      // The lease lapsed (a renewal is late or refused): another instance may lead by now.
      this.session.abort();
      return;
    }
    try {
      await deps.quotes.publish(ticks, source);
    } catch (err) {
      metrics?.publishErrors.inc();
      this.ctx.logFailure('publish', err, 'cannot publish price ticks');
      return;
    }
    metrics?.ticks.inc(ticks.length);
    const now = Date.now();
    this.lastEmitMs = now;
    for (const t of ticks) this.lastPrices.set(t.ticker, t.price);
    this.bars.add(ticks);
    if (this.bars.hasFinished() || now - this.lastFlushMs >= this.ctx.barFlushMs) this.startFlush();
  }

  /** Waits while the market is closed (the prices are kept fresh by refreshWhileQuiet meanwhile). */
  private async untilOpen(): Promise<void> {
    const session = this.ctx.deps.session;
    const signal = this.session.signal;
    while (session && !signal.aborted && !session.isOpen(Date.now())) await sleep(CLOSED_POLL_MS, signal);
  }

  /**
   * Keeps the latest prices fresh while the feed is quiet (replay gaps, a closed market, the
   * manual feed): their as_of moves, their price does not — and a price set meanwhile by someone
   * else (the admin) is never overwritten (QuoteStore.refresh keeps whatever price it finds).
   */
  private async refreshWhileQuiet(): Promise<void> {
    const signal = this.session.signal;
    const { quietRefreshMs } = this.ctx;
    while (!signal.aborted && this.feedRunning) {
      await sleep(quietRefreshMs, signal);
      if (signal.aborted || !this.feedRunning || this.lastPrices.size === 0) continue;
      if (Date.now() - this.lastEmitMs < quietRefreshMs) continue;
      if (!this.ctx.lock.isHeld()) continue;
      try {
        await this.ctx.deps.quotes.refresh([...this.lastPrices.keys()], Date.now(), this.ctx.source);
      } catch (err) {
        this.ctx.logFailure('refresh', err, 'cannot keep quiet prices fresh');
      }
    }
  }

  /** Starts a bar write in the background unless one is running: ticks never wait for PostgreSQL. */
  private startFlush(): void {
    if (this.flushing) return;
    this.flushing = this.flushBars().finally(() => {
      this.flushing = undefined;
    });
  }

  private async flushBars(): Promise<void> {
    const { deps, lock } = this.ctx;
    this.lastFlushMs = Date.now();
    // A deposed leader's bars are dropped: the new leader's (merged) bars are the record.
    if (!lock.isHeld()) return;
    const bars = this.bars.drain();
    if (bars.length === 0) return;
    try {
      await deps.market.saveBars(bars);
    } catch (err) {
      this.bars.requeue(bars);
      this.ctx.logFailure('bars', err, 'cannot write price bars; will retry');
    }
    if (this.bars.droppedBars > 0) {
      deps.logger.warn({ dropped: this.bars.droppedBars }, 'price bars dropped while PostgreSQL was unreachable');
      this.bars.droppedBars = 0;
    }
  }
}
